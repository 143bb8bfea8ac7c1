"""The OpenAPI description: valid, complete, and built on the repository's schema."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import schemathesis
from conftest import ROOT, Server, copy_fleet, start_server
from jsonschema import Draft202012Validator
from starlette.routing import Route

import layercfg
from layercfg import _openapi, load_fleet
from layercfg.server import create_app

TIMEOUT = 5
SCHEMA_FILE = "schema/device-config.schema.json"
DEVICE_SCHEMA = json.loads((ROOT / SCHEMA_FILE).read_text())
TINY_SCHEMA = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "$id": "https://layercfg.invalid/tiny.json",
    "type": "object",
    "properties": {"port": {"$ref": "#/$defs/port"}},
    "$defs": {"port": {"type": "integer"}},
}


def _validator(document: dict[str, Any], component: str) -> Draft202012Validator:
    # The component's $refs point from the document root, so it is validated
    # from a root that holds the document's components.
    root = {"$ref": f"#/components/schemas/{component}", **document}
    return Draft202012Validator(root)


def test_openapi_document_valid_openapi_31() -> None:
    document = _openapi.document(DEVICE_SCHEMA)

    schemathesis.openapi.from_dict(document).validate()
    assert (document["openapi"], document["info"]["version"]) == (
        "3.1.0",
        layercfg.__version__,
    )


def test_openapi_describes_every_route(tmp_path: Path) -> None:
    app = create_app(load_fleet(ROOT, tmp_path / "state")).app
    routes = {
        route.path.replace(":path}", "}"): route.methods
        for route in app.routes
        if isinstance(route, Route)
    }
    paths = _openapi.document(DEVICE_SCHEMA)["paths"]

    assert sorted(routes) == sorted(paths)
    for path, methods in routes.items():
        described = {m.upper() for m in paths[path] if m != "parameters"}
        # Starlette answers HEAD wherever it answers GET.
        assert methods is None or methods == described | ({"HEAD"} & methods), path


def test_openapi_device_schema_embedded_with_refs_from_root() -> None:
    component = _openapi.document(TINY_SCHEMA)["components"]["schemas"]["DeviceConfig"]

    port = {"$ref": "#/components/schemas/DeviceConfig/$defs/port"}
    assert component == {
        "type": "object",
        "properties": {"port": port},
        "$defs": {"port": {"type": "integer"}},
    }


@pytest.mark.parametrize(
    ("config", "valid"),
    [
        pytest.param(
            {"device_type": "shelly", "port": 9100, "reload_port": 9101},
            True,
            id="config",
        ),
        pytest.param(
            {"device_type": "shelly", "port": 9100}, False, id="no-reload-port"
        ),
        pytest.param(
            {"device_type": "shelly", "port": 80, "reload_port": 9101},
            False,
            id="low-port",
        ),
        pytest.param({"port": 9100}, False, id="no-device-type"),
        pytest.param({"device_type": "shelly", "colour": "red"}, False, id="unknown"),
    ],
)
def test_openapi_device_config_is_repository_schema(
    config: dict[str, Any], valid: bool
) -> None:
    validator = _validator(_openapi.document(DEVICE_SCHEMA), "DeviceConfig")

    assert validator.is_valid(config) is valid
    assert Draft202012Validator(DEVICE_SCHEMA).is_valid(config) is valid


@pytest.mark.parametrize(
    ("patch", "valid"),
    [
        pytest.param({"port": None, "enabled_metrics": None}, True, id="remove"),
        pytest.param({"metrics": {"jetson_temp_cpu_celsius": True}}, True, id="set"),
        pytest.param({}, True, id="empty"),
        pytest.param({"port": "9100"}, False, id="wrong-type"),
        pytest.param({"colour": None}, False, id="unknown"),
    ],
)
def test_openapi_patch_schema_takes_null_to_remove(
    patch: dict[str, Any], valid: bool
) -> None:
    validator = _validator(_openapi.document(DEVICE_SCHEMA), "DeviceConfigPatch")

    assert validator.is_valid(patch) is valid


def test_openapi_served_schema_follows_reload(launch: Any, fleet_copy: Path) -> None:
    server = launch(fleet_copy)
    changed = json.loads((fleet_copy / SCHEMA_FILE).read_text())
    changed["properties"]["site"] = {"type": "string"}
    (fleet_copy / SCHEMA_FILE).write_text(json.dumps(changed))
    requests.post(server.url + "/-/reload", timeout=TIMEOUT).raise_for_status()

    served = requests.get(server.url + "/openapi.json", timeout=TIMEOUT).json()

    config = served["components"]["schemas"]["DeviceConfig"]
    assert config["properties"]["site"] == {"type": "string"}
    assert served == _openapi.document(changed)


DESCRIBED = schemathesis.openapi.from_dict(_openapi.document(DEVICE_SCHEMA))
TOKEN = "operator-token"
ORIN = {"device_type": "jetson_orin", "port": 9100, "reload_port": 9101}
# A hostname, but too long for the file name of its stored config.
LONG_ID = "/config/" + ".".join(["x" * 59] * 4)


@pytest.fixture(scope="module")
def guarded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """Writes need a token, unknown devices may register, no rate limit in reach."""
    folder = tmp_path_factory.mktemp("guarded")
    (folder / "tokens").write_text(TOKEN + "\n")
    server = start_server(
        copy_fleet(folder / "repo"),
        "--token-file",
        str(folder / "tokens"),
        "--allow-registration",
        "--write-rate",
        "10000/minute",
    )
    yield server
    server.stop()


def _conforms(response: requests.Response, path: str, method: str) -> None:
    """Fail unless the status is documented and the body matches its schema."""
    documented = DESCRIBED.raw_schema["paths"][path][method.lower()]
    assert str(response.status_code) in documented["responses"], response.text
    DESCRIBED[path][method].validate_response(response)


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.mark.parametrize(
    ("method", "url", "headers", "body", "status"),
    [
        pytest.param("POST", "/-/reload", {}, None, 401, id="reload-no-token"),
        pytest.param(
            "PUT", "/config/edge-01", _bearer("wrong"), ORIN, 401, id="bad-token"
        ),
        pytest.param("PUT", "/config/new-01", {}, ORIN, 403, id="not-writable"),
        pytest.param("PUT", "/config/edge-01", {}, {}, 403, id="not-writable-known"),
        pytest.param(
            "PUT",
            "/config/edge-01",
            _bearer(TOKEN),
            {**ORIN, "device_type": "jetson"},
            409,
            id="pinned",
        ),
        pytest.param(
            "PUT",
            "/config/edge-02",
            {**_bearer(TOKEN), "If-Match": '"0"'},
            ORIN,
            412,
            id="stale-if-match",
        ),
        pytest.param(
            "PUT",
            "/config/new-02",
            _bearer(TOKEN),
            {**ORIN, "port": 80},
            422,
            id="invalid",
        ),
        pytest.param("PUT", LONG_ID, _bearer(TOKEN), ORIN, 400, id="too-long"),
        pytest.param("GET", "/config/unknown-99", {}, None, 404, id="unknown"),
        pytest.param("GET", "/config/a_b", {}, None, 400, id="bad-id"),
    ],
)
def test_openapi_refusals_match_description(
    guarded: Server,
    method: str,
    url: str,
    headers: dict[str, str],
    body: dict[str, Any] | None,
    status: int,
) -> None:
    response = requests.request(
        method, guarded.url + url, headers=headers, json=body, timeout=TIMEOUT
    )
    path = "/-/reload" if url == "/-/reload" else "/config/{device_id}"

    assert response.status_code == status
    _conforms(response, path, method)


@pytest.mark.parametrize(
    ("content_type", "data", "status"),
    [
        pytest.param("application/json", b"{", 400, id="bad-json"),
        pytest.param("application/json", b"[]", 400, id="not-object"),
        pytest.param("text/plain", b"{}", 415, id="media-type"),
        pytest.param("application/json", b" " * 70_000, 413, id="too-large"),
    ],
)
def test_openapi_body_refusals_match_description(
    guarded: Server, content_type: str, data: bytes, status: int
) -> None:
    response = requests.put(
        guarded.url + "/config/edge-02",
        data=data,
        headers={**_bearer(TOKEN), "Content-Type": content_type},
        timeout=TIMEOUT,
    )

    assert response.status_code == status
    _conforms(response, "/config/{device_id}", "PUT")


def test_openapi_rate_limit_matches_description(launch: Any, fleet_copy: Path) -> None:
    server = launch(fleet_copy, "--write-rate", "1/minute")
    url = server.url + "/config/edge-02"
    requests.patch(url, json={"metrics": {}}, timeout=TIMEOUT)

    response = requests.patch(url, json={"metrics": {}}, timeout=TIMEOUT)

    assert (response.status_code, int(response.headers["retry-after"]) > 0) == (
        429,
        True,
    )
    _conforms(response, "/config/{device_id}", "PATCH")


def test_openapi_suspended_writes_match_description(
    launch: Any, fleet_copy: Path
) -> None:
    server = launch(fleet_copy, "--allow-registration")
    (fleet_copy / "profiles" / "jetson.yaml").write_text("device_type: [\n")
    deadline = time.monotonic() + 10
    while _health(server) != "degraded" and time.monotonic() < deadline:
        time.sleep(0.05)

    response = requests.put(server.url + "/config/new-01", json=ORIN, timeout=TIMEOUT)

    assert response.status_code == 503
    _conforms(response, "/config/{device_id}", "PUT")


def _health(server: Server) -> str:
    answer = requests.get(server.url + "/health", timeout=TIMEOUT)
    status: str = answer.json()["status"]
    return status


@pytest.mark.parametrize("path", ["/config/edge-01", "/health", "/-/reload"])
def test_openapi_methods_are_those_a_405_allows(guarded: Server, path: str) -> None:
    response = requests.delete(guarded.url + path, timeout=TIMEOUT)
    template = "/config/{device_id}" if path.startswith("/config/") else path
    item = DESCRIBED.raw_schema["paths"][template]
    described = {m.upper() for m in item if m != "parameters"}
    # Starlette answers HEAD wherever it answers GET.
    described |= {"HEAD"} if "GET" in described else set()
    error = _validator(DESCRIBED.raw_schema, "MethodNotAllowed")

    assert (response.status_code, error.is_valid(response.json())) == (405, True)
    assert set(response.json()["allowed"]) == described
