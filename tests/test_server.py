"""The read API, driven over HTTP against a real server process."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from conftest import ROOT, Server, copy_fleet, free_port, start_server
from prometheus_client.parser import text_string_to_metric_families

import layercfg
from layercfg.server import EXIT_INVALID_REPO

TIMEOUT = 5  # the exporter's default CONFIG_TIMEOUT
DEVICE_FILES = sorted(p.stem for p in (ROOT / "overrides" / "devices").glob("*.yaml"))
PORTS = {"port": 9100, "reload_port": 9101}
CONFIG_ROUTE = "/config/{device_id}"

# A group without a device_type passes the start-up check, which only validates
# groups that pick a type on their own; with lab-orins it merges into port 80.
BAD_GROUP = 'match: "lab-orin-*-bad"\nconfig:\n  port: 80\n'
BAD_GROUP_FILE = "overrides/groups/bad-ports.yaml"
BAD_DEVICE = "lab-orin-7-bad"

Sample = tuple[str, frozenset[tuple[str, str]]]  # metric name and labels


def _get(server: Server, path: str, **kwargs: Any) -> requests.Response:
    return requests.get(server.url + path, timeout=TIMEOUT, **kwargs)


def _pick(served: Any, expected: Any) -> Any:
    """The part of `served` that `expected` names, key by key."""
    if isinstance(expected, dict) and isinstance(served, dict):
        return {key: _pick(served.get(key), value) for key, value in expected.items()}
    return served


def _scrape(server: Server) -> dict[Sample, float]:
    text = _get(server, "/metrics").text
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def _requests_key(route: str, status: int, method: str = "GET") -> Sample:
    labels = {"route": route, "method": method, "status": str(status)}
    return ("layercfg_http_requests_total", frozenset(labels.items()))


def _delta(
    before: dict[Sample, float], after: dict[Sample, float], key: Sample
) -> float:
    return after.get(key, 0.0) - before.get(key, 0.0)


@pytest.fixture(scope="module")
def invalid_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """The example fleet plus a group that makes some glob-only names invalid."""
    repo = copy_fleet(tmp_path_factory.mktemp("invalid") / "repo")
    (repo / BAD_GROUP_FILE).write_text(BAD_GROUP)
    server = start_server(repo)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def curl() -> str:
    found = shutil.which("curl")
    if found is None:
        pytest.fail("curl is required: operators and the spec's test script use it")
    return found


# GET /config/{device_id}


@pytest.mark.parametrize(
    ("device_id", "expected"),
    [
        pytest.param(
            "edge-01",
            {
                "device_type": "jetson_orin",
                "interval": 1,
                **PORTS,
                "enabled_metrics": [
                    "jetson_power_vdd_gpu_soc_watts",
                    "jetson_temp_cpu_celsius",
                    "jetson_ram_used_percent",
                ],
            },
            id="edge-01",
        ),
        pytest.param(
            "edge-02",
            {"device_type": "jetson_xavier", "interval": 2, **PORTS},
            id="edge-02",
        ),
        pytest.param(
            "rpi-sensor-01",
            {"device_type": "raspberry_pi", "interval": 5, **PORTS},
            id="rpi-sensor-01",
        ),
        pytest.param(
            "shelly-plug-01",
            {
                "device_type": "shelly",
                "interval": 10,
                **PORTS,
                "shelly": {"host": "192.168.1.100", "switch_id": 0},
            },
            id="shelly-plug-01",
        ),
    ],
)
def test_config_spec_device_serves_spec_values(
    example_server: Server, device_id: str, expected: dict[str, Any]
) -> None:
    response = _get(example_server, f"/config/{device_id}")

    assert (response.status_code, response.headers["content-type"]) == (
        200,
        "application/json",
    )
    assert _pick(response.json(), expected) == expected


def test_config_device_type_comes_first(example_server: Server) -> None:
    body = _get(example_server, "/config/edge-02").content

    assert body.startswith(b'{"device_type":"jetson_xavier",')


def test_config_glob_only_device_served(example_server: Server) -> None:
    response = _get(example_server, "/config/lab-orin-77")

    expected = {
        "device_type": "jetson_orin",
        "interval": 2,
        "ina260": {"i2c_address": "0x40"},
    }
    assert response.status_code == 200
    assert _pick(response.json(), expected) == expected


@pytest.mark.parametrize(
    "device_id",
    [
        pytest.param("EDGE-01", id="upper-case"),
        pytest.param("Edge-01", id="mixed-case"),
        pytest.param("edge-01.lab", id="domain"),
        pytest.param("Edge-01.Lab.Example", id="mixed-case-domain"),
    ],
)
def test_config_hostname_variant_serves_device(
    example_server: Server, device_id: str
) -> None:
    canonical = _get(example_server, "/config/edge-01")
    response = _get(example_server, f"/config/{device_id}")

    assert response.status_code == 200
    assert (response.content, response.headers["etag"]) == (
        canonical.content,
        canonical.headers["etag"],
    )


def test_config_unknown_device_not_found(example_server: Server) -> None:
    response = _get(example_server, "/config/unknown-99")

    assert (response.status_code, response.headers["content-type"]) == (
        404,
        "application/json",
    )
    assert response.json() == {
        "error": "Device not found",
        "message": "No configuration available for this device",
        "device_id": "unknown-99",
    }


def test_config_unknown_domain_name_not_found(example_server: Server) -> None:
    response = _get(example_server, "/config/unknown-99.lab")

    assert response.status_code == 404
    assert response.json()["device_id"] == "unknown-99.lab"


@pytest.mark.parametrize(
    "path",
    [
        pytest.param("//config/edge-01", id="server-url-with-slash"),
        pytest.param("/config/edge-01/", id="trailing-slash"),
        pytest.param("//config/edge-01/", id="both"),
    ],
)
def test_config_client_path_served_without_redirect(
    example_server: Server, path: str
) -> None:
    canonical = _get(example_server, "/config/edge-01")
    response = _get(example_server, path, allow_redirects=False)

    assert response.status_code == 200
    assert response.content == canonical.content


# Invalid merged configs


def test_config_invalid_merge_refused_with_location(invalid_server: Server) -> None:
    response = _get(invalid_server, f"/config/{BAD_DEVICE}")

    assert (response.status_code, response.headers["content-type"]) == (
        500,
        "application/json",
    )
    assert response.json() == {
        "error": "Invalid configuration",
        "message": "The merged config of this device fails validation; fix the "
        "layer files",
        "device_id": BAD_DEVICE,
        "problems": [
            {
                "message": "80 is less than the minimum of 1024",
                "file": BAD_GROUP_FILE,
                "line": 3,
                "device": BAD_DEVICE,
                "json_path": "$.port",
                "rule": "minimum",
            }
        ],
    }


@pytest.mark.parametrize(
    ("query", "headers"),
    [
        pytest.param("", {"If-None-Match": "*"}, id="if-none-match-any"),
        pytest.param("?explain=true", {}, id="explain"),
        pytest.param("?cache=0", {}, id="query-string"),
    ],
)
def test_config_invalid_merge_never_served(
    invalid_server: Server, query: str, headers: dict[str, str]
) -> None:
    response = _get(invalid_server, f"/config/{BAD_DEVICE}{query}", headers=headers)

    assert response.status_code == 500
    assert response.json()["error"] == "Invalid configuration"


def test_config_invalid_merge_leaves_other_devices_served(
    invalid_server: Server,
) -> None:
    response = _get(invalid_server, "/config/lab-orin-77")

    assert response.status_code == 200
    assert response.json()["port"] == 9100


def test_unservable_group_combination_names_each_device(
    invalid_server: Server,
) -> None:
    # the failure is cached per group combination; the answer is per device
    first = _get(invalid_server, f"/config/{BAD_DEVICE}").json()
    second = _get(invalid_server, "/config/lab-orin-8-bad").json()

    assert (first["device_id"], second["device_id"]) == (BAD_DEVICE, "lab-orin-8-bad")
    assert {p["device"] for p in second["problems"]} == {"lab-orin-8-bad"}


def test_metrics_count_resolution_failure(invalid_server: Server) -> None:
    before = _scrape(invalid_server)
    _get(invalid_server, f"/config/{BAD_DEVICE}")
    after = _scrape(invalid_server)

    failures: Sample = ("layercfg_resolution_failures_total", frozenset())
    assert _delta(before, after, failures) == 1
    assert _delta(before, after, _requests_key(CONFIG_ROUTE, 500)) == 1


# Conditional requests


@pytest.mark.parametrize("device_id", [*DEVICE_FILES, "lab-orin-77", "edge-01.lab"])
def test_config_etag_strong_and_no_cache(
    example_server: Server, device_id: str
) -> None:
    response = _get(example_server, f"/config/{device_id}")

    assert re.fullmatch(r'"[0-9a-f]{24}"', response.headers["etag"])
    assert response.headers["cache-control"] == "no-cache"


@pytest.mark.parametrize(
    "template",
    [
        pytest.param("{etag}", id="same"),
        pytest.param("W/{etag}", id="weak"),
        pytest.param('"stale", {etag}', id="list"),
        pytest.param('W/"stale",W/{etag}', id="weak-list-without-spaces"),
        pytest.param("*", id="any"),
    ],
)
def test_config_if_none_match_not_modified(
    example_server: Server, template: str
) -> None:
    etag = _get(example_server, "/config/edge-01").headers["etag"]
    header = template.format(etag=etag)
    response = _get(
        example_server, "/config/edge-01", headers={"If-None-Match": header}
    )

    assert (response.status_code, response.content) == (304, b"")
    assert (response.headers["etag"], response.headers["cache-control"]) == (
        etag,
        "no-cache",
    )


def test_config_if_none_match_stale_sends_body(example_server: Server) -> None:
    headers = {"If-None-Match": '"0123456789abcdef01234567"'}
    response = _get(example_server, "/config/edge-01", headers=headers)

    assert response.status_code == 200
    assert response.json()["device_type"] == "jetson_orin"


def test_config_if_none_match_other_device_etag_sends_body(
    example_server: Server,
) -> None:
    other = _get(example_server, "/config/edge-02").headers["etag"]
    response = _get(example_server, "/config/edge-01", headers={"If-None-Match": other})

    assert response.status_code == 200
    assert response.headers["etag"] != other


def test_config_if_none_match_any_unknown_device_not_found(
    example_server: Server,
) -> None:
    response = _get(
        example_server, "/config/unknown-99", headers={"If-None-Match": "*"}
    )

    assert response.status_code == 404
    assert response.json()["error"] == "Device not found"


def test_config_unchanged_body_byte_identical(example_server: Server) -> None:
    first = _get(example_server, "/config/shelly-plug-01")
    second = _get(example_server, "/config/shelly-plug-01")

    assert first.content == second.content
    assert first.headers["etag"] == second.headers["etag"]


def test_config_unchanged_across_restart(launch: Any, fleet_copy: Path) -> None:
    paths = ["/config/edge-01", "/config/lab-orin-77", "/health"]
    first = launch(fleet_copy)
    before = [_get(first, p) for p in paths]
    first.stop()
    second = launch(fleet_copy)
    after = [_get(second, p) for p in paths]

    assert [(r.content, r.headers["etag"]) for r in before[:2]] == [
        (r.content, r.headers["etag"]) for r in after[:2]
    ]
    assert before[2].json()["revision"] == after[2].json()["revision"]


# HEAD


@pytest.mark.parametrize(
    "path",
    [
        pytest.param("/config/edge-01", id="config"),
        pytest.param("/config/lab-orin-77", id="glob-only"),
        pytest.param("/config/edge-01.lab", id="domain"),
        pytest.param("/config/unknown-99", id="unknown-device"),
        pytest.param("/config/a%2Fb", id="bad-id"),
        pytest.param("/health", id="health"),
    ],
)
def test_head_matches_get_without_body(example_server: Server, path: str) -> None:
    names = ("content-type", "content-length", "etag", "cache-control")
    got = _get(example_server, path)
    head = requests.head(example_server.url + path, timeout=TIMEOUT)

    assert (head.status_code, head.content) == (got.status_code, b"")
    assert [head.headers.get(n) for n in names] == [got.headers.get(n) for n in names]


# ?explain=true


@pytest.mark.parametrize(
    ("device_id", "files"),
    [
        pytest.param(
            "edge-01",
            [
                "profiles/defaults.yaml",
                "profiles/jetson_orin.yaml",
                "overrides/devices/edge-01.yaml",
            ],
            id="device-file",
        ),
        pytest.param(
            "lab-orin-03-debug",
            [
                "profiles/defaults.yaml",
                "profiles/jetson_orin.yaml",
                "overrides/groups/lab-orins.yaml",
                "overrides/groups/debug.yaml",
                "overrides/devices/lab-orin-03-debug.yaml",
            ],
            id="two-groups",
        ),
        pytest.param(
            "lab-orin-77",
            [
                "profiles/defaults.yaml",
                "profiles/jetson_orin.yaml",
                "overrides/groups/lab-orins.yaml",
            ],
            id="glob-only",
        ),
    ],
)
def test_explain_lists_layers_in_order(
    example_server: Server, device_id: str, files: list[str]
) -> None:
    response = _get(example_server, f"/config/{device_id}?explain=true")

    assert response.status_code == 200
    assert [layer["file"] for layer in response.json()["layers"]] == files


@pytest.mark.parametrize(
    ("device_id", "path", "origin"),
    [
        pytest.param(
            "edge-01",
            ["port"],
            {
                "value": 9100,
                "file": "profiles/defaults.yaml",
                "line": 4,
                "kind": "defaults",
                "replaced": [],
            },
            id="default",
        ),
        pytest.param(
            "lab-orin-01",
            ["ina260", "i2c_address"],
            {
                "value": "0x41",
                "file": "overrides/devices/lab-orin-01.yaml",
                "line": 3,
                "kind": "device",
                "replaced": [
                    {
                        "file": "overrides/groups/lab-orins.yaml",
                        "line": 8,
                        "value": "0x40",
                    }
                ],
            },
            id="device-over-group",
        ),
        pytest.param(
            "lab-orin-03-debug",
            ["interval"],
            {
                "value": 1,
                "file": "overrides/groups/debug.yaml",
                "line": 9,
                "kind": "group",
                "replaced": [
                    {"file": "profiles/defaults.yaml", "line": 3, "value": 1},
                    {"file": "overrides/groups/lab-orins.yaml", "line": 6, "value": 2},
                ],
            },
            id="group-over-group",
        ),
    ],
)
def test_explain_value_names_file_line_and_replaced(
    example_server: Server, device_id: str, path: list[str], origin: dict[str, Any]
) -> None:
    values = _get(example_server, f"/config/{device_id}?explain=true").json()["values"]
    found = [
        {k: v for k, v in o.items() if k != "path"} for o in values if o["path"] == path
    ]

    assert found == [origin]


def test_explain_etag_matches_served_config(example_server: Server) -> None:
    served = _get(example_server, "/config/shelly-plug-01")
    explained = _get(example_server, "/config/shelly-plug-01?explain=true").json()

    assert (explained["device_id"], explained["device_type"]) == (
        "shelly-plug-01",
        "shelly",
    )
    assert explained["etag"] == served.headers["etag"]


def test_explain_unknown_device_not_found(example_server: Server) -> None:
    response = _get(example_server, "/config/unknown-99?explain=true")

    assert response.status_code == 404
    assert response.json()["error"] == "Device not found"


# /health, /devices, /metrics


def test_health_reports_service_and_device_count(example_server: Server) -> None:
    body = _get(example_server, "/health").json()

    assert {k: body[k] for k in ("status", "service", "version", "devices")} == {
        "status": "healthy",
        "service": "layercfg",
        "version": layercfg.__version__,
        "devices": len(DEVICE_FILES),
    }
    assert set(body) == {"status", "service", "version", "revision", "devices"}


def test_health_revision_matches_devices_listing(example_server: Server) -> None:
    health = _get(example_server, "/health").json()
    listing = _get(example_server, "/devices").json()

    assert re.fullmatch(r"[0-9a-f]{16}", health["revision"])
    assert listing["revision"] == health["revision"]


def test_devices_lists_every_device_file(example_server: Server) -> None:
    listing = _get(example_server, "/devices").json()["devices"]

    assert [d["hostname"] for d in listing] == DEVICE_FILES
    assert [d["files"] for d in listing] == [
        [f"overrides/devices/{name}.yaml"] for name in DEVICE_FILES
    ]


def test_devices_etag_and_type_match_served_config(example_server: Server) -> None:
    listing = _get(example_server, "/devices").json()["devices"]
    served = {
        d["hostname"]: _get(example_server, f"/config/{d['hostname']}") for d in listing
    }

    assert {d["hostname"]: d["etag"] for d in listing} == {
        name: r.headers["etag"] for name, r in served.items()
    }
    assert {d["hostname"]: d["device_type"] for d in listing} == {
        name: r.json()["device_type"] for name, r in served.items()
    }


@pytest.mark.parametrize(
    ("device_id", "groups"),
    [
        pytest.param("edge-01", [], id="no-group"),
        pytest.param("lab-orin-01", ["lab-orins"], id="lab-orins"),
        pytest.param("lab-orin-03-debug", ["lab-orins", "debug"], id="by-priority"),
        pytest.param("rack-rpi-02", ["rpi-rack"], id="rpi-rack"),
        pytest.param("shelly-plug-02", ["shelly-plugs"], id="shelly-plugs"),
    ],
)
def test_devices_lists_matched_groups(
    example_server: Server, device_id: str, groups: list[str]
) -> None:
    listing = _get(example_server, "/devices").json()["devices"]

    assert [d["groups"] for d in listing if d["hostname"] == device_id] == [groups]


def test_metrics_count_requests_by_route_and_status(example_server: Server) -> None:
    before = _scrape(example_server)
    for path in ("/config/edge-01", "/config/edge-02", "//config/edge-01/"):
        _get(example_server, path)
    _get(example_server, "/config/unknown-99")
    requests.delete(example_server.url + "/config/edge-01", timeout=TIMEOUT)
    _get(example_server, "/health")
    after = _scrape(example_server)

    assert [
        _delta(before, after, _requests_key(route, status, method))
        for route, status, method in [
            (CONFIG_ROUTE, 200, "GET"),
            (CONFIG_ROUTE, 404, "GET"),
            (CONFIG_ROUTE, 405, "DELETE"),
            ("/health", 200, "GET"),
        ]
    ] == [3, 1, 1, 1]


def test_metrics_report_device_count_and_revision(example_server: Server) -> None:
    revision = _get(example_server, "/health").json()["revision"]
    scraped = _scrape(example_server)

    assert scraped[("layercfg_devices", frozenset())] == len(DEVICE_FILES)
    info = ("layercfg_revision_info", frozenset({("revision", revision)}))
    assert scraped[info] == 1


def test_metrics_served_as_prometheus_text(example_server: Server) -> None:
    response = _get(example_server, "/metrics")

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")


# Errors


@pytest.mark.parametrize(
    ("method", "path", "status", "error"),
    [
        pytest.param("GET", "/config/unknown-99", 404, "Device not found", id="device"),
        pytest.param("GET", "/nothing", 404, "Not found", id="route"),
        pytest.param("GET", "/config", 404, "Not found", id="config-without-id"),
        pytest.param("GET", "/config/", 404, "Not found", id="config-slash"),
        pytest.param("GET", "/", 404, "Not found", id="root"),
        pytest.param(
            "DELETE", "/config/edge-01", 405, "Method not allowed", id="delete-config"
        ),
        pytest.param("POST", "/health", 405, "Method not allowed", id="post-health"),
        pytest.param("GET", "/config/a%2Fb", 400, "Invalid device id", id="bad-id"),
    ],
)
def test_error_response_is_json(
    example_server: Server, method: str, path: str, status: int, error: str
) -> None:
    # Asks for HTML, as a browser would: the answer is JSON all the same.
    response = requests.request(
        method,
        example_server.url + path,
        headers={"Accept": "text/html,application/xhtml+xml"},
        timeout=TIMEOUT,
        allow_redirects=False,
    )

    assert (response.status_code, response.headers["content-type"]) == (
        status,
        "application/json",
    )
    body = response.json()
    assert (body["error"], bool(body["message"])) == (error, True)


@pytest.mark.parametrize(
    ("method", "path"),
    [
        pytest.param("DELETE", "/config/edge-01", id="delete-config"),
        pytest.param("POST", "/health", id="post-health"),
        pytest.param("PUT", "/devices", id="put-devices"),
        pytest.param("DELETE", "/metrics", id="delete-metrics"),
    ],
)
def test_method_not_allowed_lists_allowed_methods(
    example_server: Server, method: str, path: str
) -> None:
    response = requests.request(method, example_server.url + path, timeout=TIMEOUT)
    allowed = response.json()["allowed"]

    assert (response.status_code, response.headers["allow"]) == (
        405,
        ", ".join(allowed),
    )
    assert ({"GET", "HEAD"} <= set(allowed), method in allowed) == (True, False)


@pytest.mark.parametrize(
    ("encoded", "device_id"),
    [
        pytest.param("a%2Fb", "a/b", id="encoded-slash"),
        pytest.param("..%2F..%2Fetc", "../../etc", id="traversal"),
        pytest.param("edge%2001", "edge 01", id="space"),
        pytest.param("%C3%A9dge-01", "\u00e9dge-01", id="non-ascii"),
        pytest.param("panda-%E2%84%AAiosk-01", "panda-\u212aiosk-01", id="kelvin-sign"),
        pytest.param("edge_01", "edge_01", id="underscore"),
        pytest.param("edge-01%00", "edge-01\x00", id="nul"),
        pytest.param("edge-01%0a", "edge-01\n", id="final-newline"),
        pytest.param("edge-01%0a%0a", "edge-01\n\n", id="final-newlines"),
        pytest.param("edge..01", "edge..01", id="empty-label"),
        pytest.param("x" * 64, "x" * 64, id="label-too-long"),
        pytest.param(".".join(["x" * 63] * 4), ".".join(["x" * 63] * 4), id="too-long"),
    ],
)
def test_config_bad_device_id_rejected(
    example_server: Server, encoded: str, device_id: str
) -> None:
    response = _get(example_server, f"/config/{encoded}")

    assert (response.status_code, response.headers["content-type"]) == (
        400,
        "application/json",
    )
    assert response.json() == {
        "error": "Invalid device id",
        "message": "A device id is a hostname: letters, digits, '-' and '.', labels "
        "of 1 to 63 characters, at most 253 in all",
        "device_id": device_id,
    }


# curl


def _curl(curl: str, url: str, *options: str) -> tuple[str, dict[str, str], bytes]:
    done = subprocess.run(
        [curl, "-sS", "-i", "--max-time", str(TIMEOUT), *options, url],
        capture_output=True,
        check=True,
    )
    head, _, body = done.stdout.partition(b"\r\n\r\n")
    status, *lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.lower().split(": ", 1) for line in lines)
    return status, headers, body


@pytest.mark.parametrize(
    ("path", "status", "key", "value"),
    [
        pytest.param(
            "/config/edge-01", "200 OK", "device_type", "jetson_orin", id="config"
        ),
        pytest.param(
            "/config/unknown-99",
            "404 Not Found",
            "error",
            "Device not found",
            id="unknown",
        ),
        pytest.param(
            "/config/a%2Fb",
            "400 Bad Request",
            "error",
            "Invalid device id",
            id="bad-id",
        ),
        pytest.param("/health", "200 OK", "status", "healthy", id="health"),
    ],
)
def test_curl_receives_json(
    example_server: Server, curl: str, path: str, status: str, key: str, value: str
) -> None:
    line, headers, body = _curl(curl, example_server.url + path)

    assert (line, headers["content-type"]) == (f"HTTP/1.1 {status}", "application/json")
    assert json.loads(body)[key] == value


def test_curl_if_none_match_not_modified(example_server: Server, curl: str) -> None:
    url = example_server.url + "/config/edge-01"
    _, headers, _ = _curl(curl, url)
    line, again, body = _curl(curl, url, "-H", f"If-None-Match: {headers['etag']}")

    assert (line, body) == ("HTTP/1.1 304 Not Modified", b"")
    assert again["etag"] == headers["etag"]


def test_curl_delete_not_allowed(example_server: Server, curl: str) -> None:
    line, headers, body = _curl(
        curl, example_server.url + "/config/edge-01", "-X", "DELETE"
    )

    assert (line, headers["content-type"]) == (
        "HTTP/1.1 405 Method Not Allowed",
        "application/json",
    )
    assert b'"Method not allowed"' in body


# Start-up and logs


def _serve(repo: Path) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "layercfg", "serve", "--repo", str(repo)]
    address = ["--host", "127.0.0.1", "--port", str(free_port())]
    return subprocess.run(
        [*command, *address], capture_output=True, text=True, timeout=60, check=False
    )


DUPLICATE_PORT = "interval: 1\nport: 9100\nreload_port: 9101\nport: 9200\n"
PRIVILEGED_GROUP = (
    'match: "bench-orin-*"\nconfig:\n  device_type: jetson_orin\n  port: 80\n'
)
DUPLICATE_INTERVAL = "device_type: jetson_xavier\ninterval: 2\ninterval: 3\n"
CLASH = "the metrics port; the two must differ"


@pytest.mark.parametrize(
    ("files", "problems"),
    [
        pytest.param(
            {"profiles/defaults.yaml": DUPLICATE_PORT},
            ["profiles/defaults.yaml:4: duplicate key 'port' (first set on line 2)"],
            id="duplicate-key-in-profile",
        ),
        pytest.param(
            {"overrides/groups/bench-orins.yaml": PRIVILEGED_GROUP},
            [
                (
                    "overrides/groups/bench-orins.yaml:4: any host matching "
                    "bench-orin-*: $.port: 80 is less than the minimum of 1024"
                )
            ],
            id="typed-group-invalid-alone",
        ),
        pytest.param(
            {
                "overrides/devices/edge-02.yaml": DUPLICATE_INTERVAL,
                "overrides/devices/rack-rpi-02.yaml": "port: 9101\n",
            },
            [
                (
                    "overrides/devices/edge-02.yaml:3: duplicate key 'interval' "
                    "(first set on line 2)"
                ),
                (
                    "overrides/devices/rack-rpi-02.yaml:1: rack-rpi-02: $.port: "
                    f"9101 is also {CLASH}"
                ),
                (
                    "profiles/defaults.yaml:5: rack-rpi-02: $.reload_port: "
                    f"9101 is also {CLASH}"
                ),
            ],
            id="every-problem-listed",
        ),
    ],
)
def test_serve_invalid_repo_refuses_to_start(
    fleet_copy: Path, files: dict[str, str], problems: list[str]
) -> None:
    for name, text in files.items():
        (fleet_copy / name).write_text(text)
    done = _serve(fleet_copy)

    assert done.returncode == EXIT_INVALID_REPO
    assert done.stderr.splitlines()[-len(problems) - 1 :] == [
        *problems,
        f"Refusing to start: {len(problems)} problem(s) in {fleet_copy}",
    ]


@pytest.mark.parametrize(
    ("args", "logged"),
    [
        pytest.param((), True, id="default"),
        pytest.param(("--no-access-log",), False, id="no-access-log"),
    ],
)
def test_serve_access_log_switch(
    launch: Any, args: tuple[str, ...], logged: bool
) -> None:
    server = launch(None, *args)
    _get(server, "/config/edge-01")
    server.stop()
    line = re.compile(r'INFO uvicorn\.access: .*"GET /config/edge-01 HTTP/1\.1" 200')

    assert bool(line.search(server.output())) is logged
    assert ("uvicorn.access" in server.output()) is logged


def test_serve_start_line_names_revision_and_devices(example_server: Server) -> None:
    revision = _get(example_server, "/health").json()["revision"]
    found = re.findall(
        r"INFO layercfg: Serving revision (\w+) with (\d+) devices from (\S+)",
        example_server.output(),
    )

    assert found == [(revision, str(len(DEVICE_FILES)), str(example_server.repo))]
