"""The OpenAPI description: valid, complete, and built on the repository's schema."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import requests
import schemathesis
from conftest import ROOT
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
        pytest.param({"device_type": "shelly", "port": 9100}, True, id="config"),
        pytest.param({"device_type": "shelly", "port": 80}, False, id="low-port"),
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
