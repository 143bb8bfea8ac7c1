"""Who may write: open writes, write tokens, device-writable paths, rate limits."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import requests
from _state import TIMEOUT, config, files, put
from conftest import Server, copy_fleet

TOKENS = ("s3cret-operator-token", "second-token-for-ci")
WRONG = "not-a-configured-token"


def _token_file(tmp_path: Path) -> Path:
    path = tmp_path / "tokens"
    path.write_text(f"# write tokens\n\n{TOKENS[0]}\n  {TOKENS[1]}  \n")
    return path


@pytest.fixture
def guarded(launch: Callable[..., Server], tmp_path: Path) -> Server:
    """A server whose writes need a token, logging every refusal."""
    return launch(
        None, "--token-file", str(_token_file(tmp_path)), "--log-level", "debug"
    )


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_writes_without_tokens_are_open_and_logged(
    launch: Callable[..., Server],
) -> None:
    server = launch()
    body = {**config(server, "rack-rpi-02"), "interval": 3}

    response = put(server, "rack-rpi-02", body)

    assert response.status_code == 200
    assert "WARNING layercfg: Writes are open to every client" in server.output()


def test_token_may_change_anything(guarded: Server) -> None:
    body = {**config(guarded, "lab-orin-01"), "device_type": "jetson_xavier"}
    body["port"] = 9200

    response = put(guarded, "lab-orin-01", body, headers=_bearer(TOKENS[1]))

    assert (response.status_code, config(guarded, "lab-orin-01")) == (200, body)
    assert "Writes are open" not in guarded.output()


def test_without_token_only_device_writable_paths_change(guarded: Server) -> None:
    state = guarded.repo / "state"
    before = files(state)
    body = {**config(guarded, "lab-orin-01"), "port": 9200, "device_type": "jetson"}
    body["metrics"] = {**body["metrics"], "jetson_temp_tj_celsius": False}

    response = put(guarded, "lab-orin-01", body)

    assert (response.status_code, response.json()["paths"]) == (
        403,
        ["device_type", "port"],
    )
    assert (response.json()["error"], files(state)) == ("Forbidden", before)


def test_exporter_metric_discovery_needs_no_token(guarded: Server) -> None:
    # The exporter found metrics it had not seen: it adds them as false and
    # sends its whole config back.
    body = config(guarded, "lab-orin-01")
    body["metrics"].update(
        {"jetson_cpu_core12_usage_percent": False, "jetson_gpu_freq1_mhz": False}
    )

    response = put(guarded, "lab-orin-01", body)

    assert (response.status_code, config(guarded, "lab-orin-01")) == (200, body)


def test_wrong_token_is_401_and_never_echoed(guarded: Server) -> None:
    body = {**config(guarded, "lab-orin-01"), "interval": 4}

    response = put(guarded, "lab-orin-01", body, headers=_bearer(WRONG))
    accepted = put(guarded, "lab-orin-01", body, headers=_bearer(TOKENS[0]))
    basic = put(guarded, "lab-orin-01", body, headers={"Authorization": "Basic eA=="})

    assert (response.status_code, basic.status_code, accepted.status_code) == (
        401,
        401,
        200,
    )
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert not any(
        token in text
        for token in (*TOKENS, WRONG)
        for text in (guarded.output(), response.text, accepted.text)
    )


def test_reads_stay_open_with_tokens(guarded: Server) -> None:
    response = requests.get(f"{guarded.url}/config/lab-orin-01", timeout=TIMEOUT)

    assert response.status_code == 200


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        pytest.param({}, 401, id="no-token"),
        pytest.param(_bearer(WRONG), 401, id="wrong-token"),
        pytest.param(_bearer(TOKENS[0]), 200, id="token"),
    ],
)
def test_forced_reload_needs_a_token(
    guarded: Server, headers: dict[str, str], status: int
) -> None:
    response = requests.post(
        guarded.url + "/-/reload", headers=headers, timeout=TIMEOUT
    )

    assert response.status_code == status
    assert ("WWW-Authenticate" in response.headers) == (status == 401)


def test_forced_reload_is_open_without_tokens(launch: Callable[..., Server]) -> None:
    server = launch()

    response = requests.post(server.url + "/-/reload", timeout=TIMEOUT)

    assert (response.status_code, response.json()["status"]) == (200, "reloaded")


def test_tokens_from_the_environment(
    launch: Callable[..., Server], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LAYERCFG_WRITE_TOKENS", f" {TOKENS[0]} ,{TOKENS[1]}")
    server = launch()
    body = {**config(server, "lab-orin-01"), "interval": 4}

    refused = put(server, "lab-orin-01", body)
    accepted = put(server, "lab-orin-01", body, headers=_bearer(TOKENS[1]))

    assert (refused.status_code, accepted.status_code) == (403, 200)


def test_device_writable_paths_are_configurable(
    launch: Callable[..., Server], tmp_path: Path
) -> None:
    server = launch(
        None,
        "--token-file",
        str(_token_file(tmp_path)),
        "--device-writable",
        "interval",
        "--device-writable",
        "ina260.i2c_address",
    )
    served = config(server, "lab-orin-01")
    metrics = {**served["metrics"], "jetson_temp_tj_celsius": False}

    interval = put(server, "lab-orin-01", {**served, "interval": 4})
    address = put(server, "lab-orin-01", {**served, "ina260": {"i2c_address": "0x44"}})
    refused = put(server, "lab-orin-01", {**served, "metrics": metrics})

    assert (interval.status_code, refused.json()["paths"]) == (
        200,
        ["metrics.jetson_temp_tj_celsius"],
    )
    assert address.status_code == 409  # allowed, but the override pins it


def test_registration_without_token_is_forbidden(
    launch: Callable[..., Server], tmp_path: Path
) -> None:
    server = launch(
        None, "--allow-registration", "--token-file", str(_token_file(tmp_path))
    )
    local = {
        "device_type": "shelly",
        "port": 9100,
        "reload_port": 9101,
        "metrics": {"power_total_watts": True},
    }

    refused = put(server, "plug-99", local)
    accepted = put(server, "plug-99", local, headers=_bearer(TOKENS[0]))

    assert (refused.status_code, accepted.status_code) == (403, 200)


def _serve_once(repo: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run `layercfg serve` expecting it to stop before it listens."""
    command = [sys.executable, "-m", "layercfg", "serve", "--repo", str(repo)]
    return subprocess.run(
        [*command, "--host", "127.0.0.1", "--port", "0", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize(
    ("content", "message"),
    [
        pytest.param(
            "# nothing yet\n\n",
            "layercfg: --token-file: expected at least one token in",
            id="empty",
        ),
        pytest.param(None, "layercfg: --token-file: cannot read", id="missing"),
    ],
)
def test_unusable_token_file_stops_start_up(
    tmp_path: Path, content: str | None, message: str
) -> None:
    repo = copy_fleet(tmp_path / "repo")
    tokens = tmp_path / "tokens"
    if content is not None:
        tokens.write_text(content)

    result = _serve_once(repo, "--token-file", str(tokens))

    assert (result.returncode, message in result.stderr) == (2, True)


def test_unusable_write_rate_stops_start_up(tmp_path: Path) -> None:
    result = _serve_once(copy_fleet(tmp_path / "repo"), "--write-rate", "often")
    expected = (
        "layercfg: --write-rate: expected a rate such as '20/minute', found 'often'"
    )

    assert (result.returncode, result.stderr) == (2, expected + "\n")


def test_write_rate_limit_is_429_with_retry_after(
    launch: Callable[..., Server],
) -> None:
    server = launch(None, "--write-rate", "2/minute")
    body = config(server, "rack-rpi-02")

    statuses = [put(server, "rack-rpi-02", body).status_code for _ in range(2)]
    limited = put(server, "rack-rpi-02", body)
    read = requests.get(f"{server.url}/config/rack-rpi-02", timeout=TIMEOUT)

    assert (statuses, limited.status_code, read.status_code) == ([200, 200], 429, 200)
    assert 0 < int(limited.headers["retry-after"]) <= 60
    assert limited.json()["error"] == "Too many requests"
