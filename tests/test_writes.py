"""PUT and PATCH of /config/{id} against a real server: storage, rules and races."""

from __future__ import annotations

import itertools
import json
import signal
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import requests
from _state import (
    TIMEOUT,
    audit,
    config,
    files,
    patch,
    put,
    put_raw,
    stored,
)
from conftest import Server, copy_fleet, start_server

from layercfg import load_fleet

FAST = ("--write-rate", "100000/minute")
# What the exporter falls back to on a device the server does not know.
LOCAL = {
    "device_type": "raspberry_pi",
    "interval": 30,
    "port": 9100,
    "reload_port": 9101,
    "metrics": {"rpi_cpu_temp_celsius": True},
}


@pytest.fixture(scope="module")
def writable(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One server for the tests that leave nothing behind, refused writes."""
    repo = copy_fleet(tmp_path_factory.mktemp("writes") / "repo")
    server = start_server(repo, *FAST)
    yield server
    server.stop()


def _operator_files(repo: Path) -> dict[str, bytes]:
    return {**files(repo / "profiles"), **files(repo / "overrides")}


def files_and_hidden(root: Path) -> dict[str, bytes]:
    """Every file under `root`, lock files included."""
    return {
        str(path.relative_to(root)): path.read_bytes()
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }


def test_put_then_get_returns_the_body(launch: Callable[..., Server]) -> None:
    server = launch()
    body = config(server, "rpi-sensor-01")
    body["interval"] = 7
    body["metrics"]["rpi_fan_rpm"] = True

    response = put(server, "rpi-sensor-01", body)
    after = requests.get(f"{server.url}/config/rpi-sensor-01", timeout=TIMEOUT)

    assert (response.status_code, response.json()) == (
        200,
        {"status": "updated", "device_id": "rpi-sensor-01"},
    )
    assert (after.json(), after.headers["etag"]) == (body, response.headers["etag"])


def test_put_leaves_operator_files_alone(launch: Callable[..., Server]) -> None:
    server = launch()
    before = _operator_files(server.repo)
    body = config(server, "edge-02")
    body["metrics"]["jetson_power_gpu_watts"] = False

    response = put(server, "edge-02", body)

    assert response.status_code == 200
    assert (_operator_files(server.repo), sorted(files(server.repo / "state"))) == (
        before,
        ["audit.log", "devices/edge-02.json"],
    )


def test_put_of_the_served_config_stores_an_empty_patch(
    launch: Callable[..., Server],
) -> None:
    server = launch()

    response = put(server, "lab-orin-01", config(server, "lab-orin-01"))
    document = stored(server.repo, "lab-orin-01")

    assert (response.status_code, document["config"]) == (200, {})
    assert datetime.fromisoformat(document["written_at"]).tzinfo is not None


def test_put_of_a_new_interval_stores_only_the_interval(
    launch: Callable[..., Server],
) -> None:
    server = launch()
    body = config(server, "lab-orin-01")
    body["interval"] = 30

    response = put(server, "lab-orin-01", body)

    assert (response.status_code, stored(server.repo, "lab-orin-01")["config"]) == (
        200,
        {"interval": 30},
    )


def test_profile_edit_reaches_a_device_that_echoed_the_value(
    launch: Callable[..., Server],
) -> None:
    server = launch()
    body = config(server, "lab-orin-01")
    body["metrics"]["jetson_temp_tj_celsius"] = False
    assert put(server, "lab-orin-01", body).status_code == 200
    profile = server.repo / "profiles" / "jetson_orin.yaml"
    profile.write_text(
        profile.read_text().replace(
            "jetson_temp_cpu_celsius: true", "jetson_temp_cpu_celsius: false"
        )
    )

    reloaded = requests.post(f"{server.url}/-/reload", timeout=TIMEOUT)
    metrics = config(server, "lab-orin-01")["metrics"]

    assert reloaded.status_code == 200
    assert (metrics["jetson_temp_cpu_celsius"], metrics["jetson_temp_tj_celsius"]) == (
        False,
        False,
    )


@pytest.mark.parametrize(
    ("device", "change", "file", "keys"),
    [
        pytest.param(
            "edge-01",
            {"enabled_metrics": ["jetson_temp_gpu_celsius"]},
            "overrides/devices/edge-01.yaml",
            ["enabled_metrics"],
            id="pinned-value",
        ),
        pytest.param(
            "lab-orin-02",
            {"ina260": {"i2c_address": "0x40"}},
            "overrides/devices/lab-orin-02.yaml",
            ["ina260"],
            id="removed-key",
        ),
        pytest.param(
            "edge-02",
            {"device_type": "jetson_orin", "interval": 9},
            "overrides/devices/edge-02.yaml",
            ["device_type", "interval"],
            id="pinned-type",
        ),
    ],
)
def test_put_against_an_override_is_409_and_stores_nothing(
    writable: Server, device: str, change: dict[str, Any], file: str, keys: list[str]
) -> None:
    state = writable.repo / "state"
    before = files(state)

    response = put(writable, device, {**config(writable, device), **change})

    assert (response.status_code, response.json()["file"], response.json()["keys"]) == (
        409,
        file,
        keys,
    )
    assert (files(state), response.json()["error"]) == (before, "Conflict")


def test_put_of_an_invalid_config_is_422_with_every_error(writable: Server) -> None:
    state = writable.repo / "state"
    before = files(state)
    body = config(writable, "rpi-sensor-01")
    body.update({"port": "eighty", "interval": 0, "colour": "red"})

    response = put(writable, "rpi-sensor-01", body)
    problems = sorted(
        (p["json_path"], p["rule"], p["value"]) for p in response.json()["problems"]
    )

    assert (response.status_code, response.json()["error"]) == (
        422,
        "Invalid configuration",
    )
    assert problems == [
        ("$.colour", "additionalProperties", "red"),
        ("$.interval", "minimum", 0),
        ("$.port", "type", "eighty"),
    ]
    assert files(state) == before


def test_put_of_clashing_ports_is_422(writable: Server) -> None:
    body = config(writable, "rpi-sensor-01")
    body["reload_port"] = body["port"]

    response = put(writable, "rpi-sensor-01", body)

    assert response.status_code == 422
    assert [(p["json_path"], p["rule"]) for p in response.json()["problems"]] == [
        ("$.port", "distinct-ports"),
        ("$.reload_port", "distinct-ports"),
    ]


def test_put_of_a_type_without_profile_is_422(writable: Server) -> None:
    body = {**config(writable, "lab-orin-01"), "device_type": "toaster"}

    response = put(writable, "lab-orin-01", body)

    assert response.status_code == 422
    assert [(p["json_path"], p["rule"]) for p in response.json()["problems"]] == [
        ("$.device_type", "enum")
    ]


def test_put_with_nulls_serves_those_keys_absent(launch: Callable[..., Server]) -> None:
    server = launch()
    body = {**config(server, "rpi-sensor-01"), "enabled_metrics": None}
    body["metrics"] = {**body["metrics"], "rpi_fan_rpm": None}

    response = put(server, "rpi-sensor-01", body)
    after = config(server, "rpi-sensor-01")

    assert response.status_code == 200
    assert ("enabled_metrics" in after, "rpi_fan_rpm" in after["metrics"]) == (
        False,
        False,
    )


def test_put_for_an_unknown_device_is_404(writable: Server) -> None:
    state = writable.repo / "state"
    before = files(state)

    response = put(writable, "nova-99", LOCAL)

    assert (response.status_code, response.json()) == (
        404,
        {
            "error": "Device not found",
            "device_id": "nova-99",
            "message": "No configuration available for this device",
        },
    )
    assert files(state) == before


def test_registration_makes_an_unknown_device_known(
    launch: Callable[..., Server],
) -> None:
    server = launch(None, "--allow-registration")
    url = f"{server.url}/config/Nova-99"
    missing = requests.get(url, timeout=TIMEOUT)

    response = put(server, "Nova-99", LOCAL)
    listed = requests.get(f"{server.url}/devices", timeout=TIMEOUT).json()["devices"]

    assert (missing.status_code, response.status_code) == (404, 200)
    assert requests.get(url, timeout=TIMEOUT).json() == LOCAL
    assert [d["files"] for d in listed if d["hostname"] == "nova-99"] == [
        ["state/devices/nova-99.json"]
    ]


def test_put_for_a_domain_name_writes_the_short_names_state(
    launch: Callable[..., Server],
) -> None:
    server = launch(None, "--allow-registration")
    body = config(server, "edge-02.lab")
    body["metrics"]["jetson_power_gpu_watts"] = False

    response = put(server, "edge-02.lab", body)

    assert response.status_code == 200
    assert (config(server, "edge-02"), sorted(files(server.repo / "state"))) == (
        body,
        ["audit.log", "devices/edge-02.json"],
    )


def test_if_match_with_a_stale_etag_is_412(writable: Server) -> None:
    state = writable.repo / "state"
    before = files(state)
    body = config(writable, "rpi-sensor-01")

    response = put(writable, "rpi-sensor-01", body, headers={"If-Match": '"stale"'})

    assert (response.status_code, response.json()["error"]) == (
        412,
        "Precondition failed",
    )
    assert files(state) == before


def test_if_match_with_the_current_etag_succeeds(
    launch: Callable[..., Server],
) -> None:
    server = launch()
    current = requests.get(f"{server.url}/config/rpi-sensor-01", timeout=TIMEOUT)
    body = {**current.json(), "interval": 11}

    first = put(
        server, "rpi-sensor-01", body, headers={"If-Match": current.headers["etag"]}
    )
    again = put(
        server, "rpi-sensor-01", body, headers={"If-Match": current.headers["etag"]}
    )
    star = put(server, "rpi-sensor-01", body, headers={"If-Match": "*"})

    assert (first.status_code, again.status_code, star.status_code) == (200, 412, 200)


def test_if_match_star_on_an_unknown_device_is_412(
    launch: Callable[..., Server],
) -> None:
    server = launch(None, "--allow-registration")

    response = put(server, "nova-99", LOCAL, headers={"If-Match": "*"})

    assert (response.status_code, files(server.repo / "state")) == (412, {})


def test_patch_changes_only_what_it_names(launch: Callable[..., Server]) -> None:
    server = launch()
    before = config(server, "rack-rpi-01")

    response = patch(
        server,
        "rack-rpi-01",
        {
            "interval": 9,
            "metrics": {"rpi_load1": False, "rpi_cpu_temp_celsius": None},
        },
    )
    after = config(server, "rack-rpi-01")
    expected = {**before, "interval": 9, "metrics": {**before["metrics"]}}
    expected["metrics"]["rpi_load1"] = False
    del expected["metrics"]["rpi_cpu_temp_celsius"]

    assert (response.status_code, response.headers["etag"]) == (
        200,
        requests.get(f"{server.url}/config/rack-rpi-01", timeout=TIMEOUT).headers[
            "etag"
        ],
    )
    assert after == expected
    assert stored(server.repo, "rack-rpi-01")["config"] == {
        "interval": 9,
        "metrics": {"rpi_load1": False, "rpi_cpu_temp_celsius": None},
    }


def test_patch_accepts_plain_json(writable: Server) -> None:
    response = requests.patch(
        f"{writable.url}/config/rpi-sensor-01",
        json={"interval": "soon"},
        timeout=TIMEOUT,
    )

    assert (response.status_code, response.json()["problems"][0]["json_path"]) == (
        422,
        "$.interval",
    )


def test_accepted_writes_are_audited(launch: Callable[..., Server]) -> None:
    server = launch()
    first = config(server, "rpi-sensor-01")
    old_etag = requests.get(
        f"{server.url}/config/rpi-sensor-01", timeout=TIMEOUT
    ).headers["etag"]

    response = put(server, "rpi-sensor-01", {**first, "interval": 8})
    put(server, "rpi-sensor-01", {**first, "port": "x"})  # refused: not audited
    lines = audit(server.repo)

    assert [
        (
            e["device"],
            e["client"],
            e["method"],
            e["change"],
            e["old_etag"],
            e["new_etag"],
        )
        for e in lines
    ] == [
        (
            "rpi-sensor-01",
            "127.0.0.1",
            "PUT",
            {"interval": 8},
            old_etag,
            response.headers["etag"],
        )
    ]
    assert datetime.fromisoformat(lines[0]["time"]).tzinfo is not None


def _deep(levels: int) -> bytes:
    return b'{"metrics": ' + b'{"a": ' * levels + b"true" + b"}" * (levels + 1)


def _chunks(size: int) -> Iterator[bytes]:
    sent = 0
    while sent < size:
        yield b" " * 4096
        sent += 4096


@pytest.mark.parametrize(
    ("data", "content_type", "status", "error"),
    [
        pytest.param(
            b" " * 70_000,
            "application/json",
            413,
            "Body too large",
            id="content-length-over-limit",
        ),
        pytest.param(
            _chunks(70_000),
            "application/json",
            413,
            "Body too large",
            id="chunked-over-limit",
        ),
        pytest.param(
            b'{"device_type": ', "application/json", 400, "Invalid JSON", id="not-json"
        ),
        pytest.param(
            b'{"interval": NaN}', "application/json", 400, "Invalid JSON", id="nan"
        ),
        pytest.param(
            b'{"interval": 1e999}',
            "application/json",
            400,
            "Invalid JSON",
            id="infinite",
        ),
        pytest.param(
            b'{"interval": 99999999999999999999}',
            "application/json",
            400,
            "Invalid JSON",
            id="integer-over-64-bits",
        ),
        pytest.param(
            b'{"shelly": {"host": "\\ud800"}}',
            "application/json",
            400,
            "Invalid JSON",
            id="lone-surrogate",
        ),
        pytest.param(
            b'{"device_type": "\xff"}',
            "application/json",
            400,
            "Invalid encoding",
            id="not-utf-8",
        ),
        pytest.param(b"[1, 2]", "application/json", 400, "Not an object", id="array"),
        pytest.param(
            _deep(40), "application/json", 400, "Too deeply nested", id="deep"
        ),
        pytest.param(
            b'{"a": ' + b"[" * 30_000 + b"]" * 30_000 + b"}",
            "application/json",
            400,
            "Too deeply nested",
            id="deeper-than-the-parser-goes",
        ),
        pytest.param(
            b'{"interval": ' + b"9" * 5000 + b"}",
            "application/json",
            400,
            "Invalid JSON",
            id="integer-too-long-to-convert",
        ),
        pytest.param(
            b'{"port": 9100, "port": 9102}',
            "application/json",
            400,
            "Duplicate key",
            id="duplicate-key",
        ),
        pytest.param(
            b"{}", "text/plain", 415, "Unsupported media type", id="text-plain"
        ),
        pytest.param(
            b"{}",
            "application/json; charset=latin-1",
            415,
            "Unsupported media type",
            id="latin-1",
        ),
        pytest.param(
            b"{}",
            "application/merge-patch+json",
            415,
            "Unsupported media type",
            id="merge-patch-on-put",
        ),
    ],
)
def test_bad_body_is_refused_with_json(
    writable: Server, data: Any, content_type: str, status: int, error: str
) -> None:
    state = writable.repo / "state"
    before = files(state)

    response = put_raw(writable, "rpi-sensor-01", data, content_type)
    document = response.json()

    assert (response.status_code, document["error"], bool(document["message"])) == (
        status,
        error,
        True,
    )
    assert files(state) == before


def test_put_without_ports_is_422(writable: Server) -> None:
    # the exporter's fallback port differs from the specification's: never
    # serve a config that leaves the choice to the device
    body = {k: v for k, v in config(writable, "rpi-sensor-01").items() if k != "port"}

    response = put(writable, "rpi-sensor-01", body)

    assert response.status_code == 422
    assert [p["rule"] for p in response.json()["problems"]] == ["required"]


def test_unknown_device_leaves_no_file(launch: Callable[..., Server]) -> None:
    server = launch()
    local = {**config(server, "rpi-sensor-01")}

    response = put(server, "junk-7.example.com", local)

    assert response.status_code == 404
    assert files_and_hidden(server.repo / "state") == {}


def test_put_without_content_type_is_415(writable: Server) -> None:
    response = requests.put(
        f"{writable.url}/config/rpi-sensor-01", data=b"{}", timeout=TIMEOUT
    )

    assert (response.status_code, response.json()["error"]) == (
        415,
        "Unsupported media type",
    )


def test_body_limit_follows_max_body_bytes(launch: Callable[..., Server]) -> None:
    server = launch(None, "--max-body-bytes", "100")
    body = config(server, "rpi-sensor-01")

    response = put(server, "rpi-sensor-01", body)
    size = len(json.dumps(body))

    assert (response.status_code, response.json()["message"]) == (
        413,
        f"expected a body of at most 100 bytes, Content-Length is {size}",
    )


def _variants(
    server: Server, devices: list[str], count: int
) -> list[tuple[str, dict[str, Any]]]:
    """`count` distinct bodies spread over `devices`, each one new metric apart."""
    served = {device: config(server, device) for device in devices}
    bodies = []
    for number in range(count):
        device = devices[number % len(devices)]
        body = json.loads(json.dumps(served[device]))
        body["metrics"][f"stress_metric_{number}"] = True
        bodies.append((device, body))
    return bodies


def _put_all(server: Server, bodies: list[tuple[str, dict[str, Any]]]) -> list[int]:
    with ThreadPoolExecutor(max_workers=20) as pool:
        responses = pool.map(lambda item: put(server, *item, timeout=60), bodies)
        return [r.status_code for r in responses]


def _check_serialised(
    repo: Path, bodies: list[tuple[str, dict[str, Any]]], accepted: int
) -> None:
    """Every state file whole, one audit line per 200, no write lost or interleaved."""
    lines = audit(repo)
    assert len(lines) == accepted
    fleet = load_fleet(repo)
    by_device: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for entry in lines:
        by_device[entry["device"]].append(entry)
    for device, entries in by_device.items():
        json.loads((repo / "state" / "devices" / f"{device}.json").read_text())
        chain = [(a["new_etag"], b["old_etag"]) for a, b in itertools.pairwise(entries)]
        assert all(new == old for new, old in chain)
        final = fleet.resolve(device)
        assert final is not None and final.etag == entries[-1]["new_etag"]
        assert final.config in [body for name, body in bodies if name == device]


def test_concurrent_puts_to_one_device_are_serialised(
    launch: Callable[..., Server],
) -> None:
    server = launch(None, *FAST)
    bodies = _variants(server, ["rpi-sensor-01"], 100)

    statuses = _put_all(server, bodies)

    assert statuses == [200] * 100
    _check_serialised(server.repo, bodies, 100)
    assert (
        config(server, "rpi-sensor-01")
        == load_fleet(server.repo).resolve("rpi-sensor-01").config
    )


def test_concurrent_puts_to_many_devices_over_two_workers(
    launch: Callable[..., Server],
) -> None:
    server = launch(None, *FAST, "--workers", "2")
    listing = requests.get(f"{server.url}/devices", timeout=TIMEOUT).json()
    devices = [device["hostname"] for device in listing["devices"]]
    bodies = _variants(server, devices, 100)

    statuses = _put_all(server, bodies)

    assert statuses == [200] * 100
    _check_serialised(server.repo, bodies, 100)


def test_sigkill_during_writes_leaves_every_state_file_whole(
    launch: Callable[..., Server], tmp_path: Path
) -> None:
    repo = copy_fleet(tmp_path / "killed")
    server = launch(repo, *FAST)
    bodies = _variants(server, ["rpi-sensor-01", "lab-orin-01", "edge-02"], 60)
    stop = threading.Event()

    def keep_writing(offset: int) -> None:
        for number in range(offset, offset + 200):
            if stop.is_set():
                return
            try:
                put(server, *bodies[number % len(bodies)], timeout=5)
            except requests.RequestException:
                return

    threads = [threading.Thread(target=keep_writing, args=(i * 7,)) for i in range(8)]
    for thread in threads:
        thread.start()
    log = repo / "state" / "audit.log"
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and (
        not log.exists() or log.read_bytes().count(b"\n") < 30
    ):
        time.sleep(0.01)
    server.stop(signal.SIGKILL)
    stop.set()
    for thread in threads:
        thread.join(timeout=30)

    documents = [
        json.loads(path.read_text())
        for path in (repo / "state" / "devices").glob("*.json")
    ]
    restarted = launch(repo)
    served = {
        d: config(restarted, d) for d in ("rpi-sensor-01", "lab-orin-01", "edge-02")
    }

    assert len(documents) == 3 and all(isinstance(d["config"], dict) for d in documents)
    assert all(body in [b for n, b in bodies if n == d] for d, body in served.items())


def test_put_for_a_name_too_long_to_store_is_400(
    launch: Callable[..., Server],
) -> None:
    server = launch(None, "--allow-registration")
    name = ".".join(["a" * 63, "b" * 63, "c" * 63, "d" * 50])

    response = put(server, name, LOCAL)

    assert (response.status_code, response.json()["error"]) == (
        400,
        "Invalid device id",
    )
    assert files(server.repo / "state") == {}
