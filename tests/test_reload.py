"""Live reload against a real server: edits on disk reach devices by themselves."""

from __future__ import annotations

import os
import shutil
import signal
import threading
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest
import requests
from conftest import Server
from prometheus_client.parser import text_string_to_metric_families

TIMEOUT = 10
PICKUP = 15.0  # seconds an edit may take to be served on a loaded machine


def _get(server: Server, path: str) -> requests.Response:
    return requests.get(server.url + path, timeout=TIMEOUT)


def _config(server: Server, device: str) -> dict[str, Any]:
    response = _get(server, f"/config/{device}")
    response.raise_for_status()
    config: dict[str, Any] = response.json()
    return config


def _eventually(check: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + PICKUP
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.05)
    raise AssertionError(f"not seen within {PICKUP} s: {what}")


def _interval_becomes(server: Server, device: str, interval: int) -> None:
    _eventually(
        lambda: _config(server, device).get("interval") == interval,
        f"{device} served with interval {interval}",
    )


def _health(server: Server) -> dict[str, Any]:
    document: dict[str, Any] = _get(server, "/health").json()
    return document


def _reloads(server: Server, outcome: str) -> float:
    text = _get(server, "/metrics").text
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "layercfg_reloads_total" and sample.labels == {
                "outcome": outcome
            }:
                return sample.value
    return 0.0


@pytest.fixture
def server(launch: Callable[..., Server]) -> Server:
    return launch()


def test_edit_in_place_is_served(server: Server) -> None:
    path = server.repo / "overrides/devices/edge-02.yaml"

    path.write_text(path.read_text().replace("interval: 2", "interval: 7"))

    _interval_becomes(server, "edge-02", 7)


def test_save_by_rename_is_served(server: Server) -> None:
    path = server.repo / "overrides/devices/edge-02.yaml"
    temporary = path.with_name(".edge-02.yaml.tmp")
    temporary.write_text(path.read_text().replace("interval: 2", "interval: 8"))

    os.replace(temporary, path)

    _interval_becomes(server, "edge-02", 8)


def test_new_and_deleted_files_are_served(server: Server) -> None:
    devices = server.repo / "overrides/devices"
    assert _get(server, "/config/edge-77").status_code == 404

    (devices / "edge-77.yaml").write_text("device_type: jetson_nano\n")
    _eventually(
        lambda: _get(server, "/config/edge-77").status_code == 200, "edge-77 known"
    )
    (devices / "edge-77.yaml").unlink()

    _eventually(
        lambda: _get(server, "/config/edge-77").status_code == 404, "edge-77 gone"
    )


def test_whole_folder_replacement_is_served(server: Server) -> None:
    repo = server.repo
    shutil.copytree(repo / "overrides", repo / "overrides.next")
    path = repo / "overrides.next/devices/edge-02.yaml"
    path.write_text(path.read_text().replace("interval: 2", "interval: 9"))

    os.rename(repo / "overrides", repo / "overrides.old")
    os.rename(repo / "overrides.next", repo / "overrides")

    _interval_becomes(server, "edge-02", 9)
    # the new folder is watched too
    path = repo / "overrides/devices/edge-02.yaml"
    path.write_text(path.read_text().replace("interval: 9", "interval: 4"))
    _interval_becomes(server, "edge-02", 4)


@pytest.mark.parametrize(
    "name", ["edge-01.yaml~", ".#edge-01.yaml", ".edge-01.yaml.swp", "notes.txt"]
)
def test_editor_side_files_are_ignored(server: Server, name: str) -> None:
    before = _health(server)

    (server.repo / "overrides/devices" / name).write_text("a: [broken\n")
    # a real edit afterwards proves the watcher looked at the folder meanwhile
    path = server.repo / "overrides/devices/edge-02.yaml"
    path.write_text(path.read_text().replace("interval: 2", "interval: 6"))
    _interval_becomes(server, "edge-02", 6)

    after = _health(server)
    assert (after["status"], after["devices"]) == ("healthy", before["devices"])
    assert _reloads(server, "failed") == 0


def test_broken_file_keeps_last_good_revision_then_recovers(server: Server) -> None:
    path = server.repo / "overrides/devices/edge-02.yaml"
    good = _get(server, "/config/edge-02")
    revision = _health(server)["revision"]

    path.write_text("device_type: jetson_xavier\ninterval: 3\ninterval: 4\n")
    _eventually(lambda: _health(server)["status"] == "degraded", "degraded")

    health = _health(server)
    assert health["revision"] == revision
    assert health["problems"] == [
        {
            "message": "duplicate key 'interval' (first set on line 2)",
            "file": "overrides/devices/edge-02.yaml",
            "line": 3,
        }
    ]
    assert _reloads(server, "failed") >= 1
    served = _get(server, "/config/edge-02")
    assert (served.status_code, served.content) == (200, good.content)
    assert "overrides/devices/edge-02.yaml:3: duplicate key" in server.output()

    path.write_text("device_type: jetson_xavier\ninterval: 4\n")

    _interval_becomes(server, "edge-02", 4)
    assert _health(server)["status"] == "healthy"


def test_schema_failure_keeps_last_good_revision(server: Server) -> None:
    path = server.repo / "profiles/defaults.yaml"
    good = _get(server, "/config/rpi-sensor-01").content

    path.write_text(path.read_text().replace("port: 9100", "port: 80"))
    _eventually(lambda: _health(server)["status"] == "degraded", "degraded")

    problems = _health(server)["problems"]
    assert {p["json_path"] for p in problems} == {"$.port"}
    assert {p["file"] for p in problems} == {"profiles/defaults.yaml"}
    assert _get(server, "/config/rpi-sensor-01").content == good


def test_unchanged_devices_keep_their_etag(server: Server) -> None:
    devices = {
        d["hostname"]: d["etag"] for d in _get(server, "/devices").json()["devices"]
    }
    path = server.repo / "overrides/devices/edge-02.yaml"

    path.write_text(path.read_text().replace("interval: 2", "interval: 5"))
    _interval_becomes(server, "edge-02", 5)

    after = {
        d["hostname"]: d["etag"] for d in _get(server, "/devices").json()["devices"]
    }
    changed = {host for host in devices if devices[host] != after[host]}
    assert changed == {"edge-02"}


def test_profile_edit_reaches_every_device_of_its_type(server: Server) -> None:
    path = server.repo / "profiles/jetson_orin.yaml"
    before = {
        d["hostname"]: d["etag"]
        for d in _get(server, "/devices").json()["devices"]
        if d["device_type"] == "jetson_orin"
    }

    path.write_text(
        path.read_text().replace(
            "jetson_emc_freq_mhz: true", "jetson_emc_freq_mhz: false"
        )
    )

    _eventually(
        lambda: (
            _config(server, "lab-orin-77")["metrics"]["jetson_emc_freq_mhz"] is False
        ),
        "the glob-only lab-orin-77 sees the profile edit",
    )
    after = {
        d["hostname"]: d["etag"] for d in _get(server, "/devices").json()["devices"]
    }
    assert all(after[host] != etag for host, etag in before.items())


@pytest.mark.parametrize("how", ["sighup", "endpoint"])
def test_forced_reload_reads_every_file(server: Server, how: str) -> None:
    before = _reloads(server, "loaded")

    if how == "sighup":
        server.process.send_signal(signal.SIGHUP)
    else:
        response = requests.post(server.url + "/-/reload", timeout=TIMEOUT)
        assert (response.status_code, response.json()["status"]) == (200, "reloaded")

    _eventually(lambda: _reloads(server, "loaded") == before + 1, "one more load")
    assert server.process.poll() is None
    assert _health(server)["status"] == "healthy"


def test_reload_endpoint_reports_an_invalid_file_set(server: Server) -> None:
    (server.repo / "overrides/groups/bad.yaml").write_text("match: [\n")

    response = requests.post(server.url + "/-/reload", timeout=TIMEOUT)

    assert response.status_code == 422
    document = response.json()
    assert document["error"] == "Invalid repository"
    assert [p["file"] for p in document["problems"]] == ["overrides/groups/bad.yaml"]


def test_no_server_error_while_files_change_under_load(server: Server) -> None:
    path = server.repo / "overrides/devices/edge-02.yaml"
    original = path.read_text()
    devices = ["edge-01", "edge-02", "lab-orin-77", "shelly-plug-01"]
    statuses: Counter[int] = Counter()
    failures: list[str] = []
    stop = threading.Event()

    def hammer() -> None:
        with requests.Session() as session:
            while not stop.is_set():
                for device in devices:
                    try:
                        response = session.get(
                            f"{server.url}/config/{device}", timeout=TIMEOUT
                        )
                    except requests.RequestException as exc:
                        failures.append(repr(exc))
                        continue
                    statuses[response.status_code] += 1
                    if response.status_code == 200 and not response.json():
                        failures.append(f"empty config for {device}")

    threads = [threading.Thread(target=hammer) for _ in range(4)]
    for thread in threads:
        thread.start()
    try:
        deadline = time.monotonic() + 6
        step = 0
        while time.monotonic() < deadline:
            step += 1
            if step % 3 == 0:  # an invalid state now and then
                path.write_text("interval: [\n")
            else:
                path.write_text(original.replace("interval: 2", f"interval: {step}"))
            time.sleep(0.1)
    finally:
        path.write_text(original)
        stop.set()
        for thread in threads:
            thread.join(timeout=30)

    assert failures == []
    assert set(statuses) == {200}
    assert sum(statuses.values()) > 100
    _interval_becomes(server, "edge-02", 2)
