"""What a failed resolution says: which rule, which value, which file to blame."""

from __future__ import annotations

from typing import Any

from .errors import Problem
from .layers import Layer
from .schema import Violation, json_path


def type_problem(name: str, setter: Layer | None, device_type: Any) -> Problem:
    if setter is None:
        return Problem(
            "no layer sets device_type (set it in profiles/defaults.yaml, a group "
            "or the device's file)",
            device=name,
            json_path="$.device_type",
            rule="device_type",
        )
    if isinstance(device_type, str):
        message = (
            f"device_type {device_type!r} has no profile "
            f"(expected profiles/{device_type}.yaml)"
        )
    else:
        message = f"expected device_type to name a profile, found {device_type!r}"
    return Problem(
        message,
        file=setter.file,
        line=setter.line_of(("device_type",)),
        device=name,
        json_path="$.device_type",
        rule="device_type",
    )


def port_clash(config: dict[str, Any]) -> list[Violation]:
    port, reload_port = config.get("port"), config.get("reload_port")
    if port is None or port != reload_port:
        return []
    message = f"{reload_port!r} is also the metrics port; the two must differ"
    return [
        Violation(
            ("reload_port",),
            "distinct-ports",
            message,
            reload_port,
            (("port",), ("reload_port",)),
        )
    ]


def violation_problems(
    name: str, violation: Violation, layers: tuple[Layer, ...]
) -> list[Problem]:
    problems = []
    for path in violation.culprits:
        layer = _setter(path, layers) if path else None
        problems.append(
            Problem(
                violation.message,
                file=layer.file if layer else None,
                line=layer.line_of(path) if layer else None,
                device=name,
                json_path=json_path(path),
                rule=violation.rule,
            )
        )
    return problems


def _setter(path: tuple[str | int, ...], layers: tuple[Layer, ...]) -> Layer | None:
    """The last layer that sets `path` or one of its parents to a non-mapping."""
    for layer in reversed(layers):
        value: Any = layer.data
        for key in path:
            if not isinstance(value, dict) or key not in value:
                break
            value = value[key]
        else:
            return layer
        if value is not layer.data and not isinstance(value, dict):
            return layer
    return None
