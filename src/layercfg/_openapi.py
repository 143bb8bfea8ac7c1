"""The OpenAPI description of the HTTP API, around the device schema being served.

The routes, parameters and responses are fixed and live in `_openapi.json`; the
device config schema comes from the repository at request time, so the
description always states what the server validates against.
"""

from __future__ import annotations

import copy
import functools
from importlib import resources
from typing import Any

import orjson

from . import __version__

_COMPONENT = "#/components/schemas/DeviceConfig"


@functools.cache
def _static() -> dict[str, Any]:
    text = resources.files(__package__).joinpath("_openapi.json").read_bytes()
    document: dict[str, Any] = orjson.loads(text)
    return document


def document(device_schema: dict[str, Any]) -> dict[str, Any]:
    """The OpenAPI 3.1 document, with `device_schema` as DeviceConfig."""
    result = copy.deepcopy(_static())
    result["info"]["version"] = __version__
    config = embedded(device_schema)
    schemas = result["components"]["schemas"]
    schemas["DeviceConfig"] = config
    schemas["DeviceConfigPatch"] = merge_patch_schema(config)
    return result


def embedded(device_schema: dict[str, Any]) -> dict[str, Any]:
    """`device_schema` made a component: local `$ref`s point into it from the root.

    `$id` and `$schema` go: OpenAPI 3.1 implies the dialect, and a base URI of
    its own would make tools resolve `#/...` against the component, not the
    document.
    """
    schema = {k: v for k, v in device_schema.items() if k not in ("$id", "$schema")}
    rewritten: dict[str, Any] = _rewrite_refs(schema)
    return rewritten


def _rewrite_refs(value: Any) -> Any:
    if isinstance(value, list):
        return [_rewrite_refs(item) for item in value]
    if not isinstance(value, dict):
        return value
    result = {key: _rewrite_refs(item) for key, item in value.items()}
    ref = result.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/"):
        result["$ref"] = _COMPONENT + ref[1:]
    return result


def merge_patch_schema(config: dict[str, Any]) -> dict[str, Any]:
    """An RFC 7386 patch of a config: any member of it, or null to remove it."""
    members = config.get("properties", {})
    return {
        "type": "object",
        "description": "A merge patch of DeviceConfig: null removes a member.",
        "additionalProperties": config.get("additionalProperties", True),
        "properties": {
            name: {"anyOf": [member, {"type": "null"}]}
            for name, member in members.items()
        },
    }
