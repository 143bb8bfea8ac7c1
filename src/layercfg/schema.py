"""The JSON Schema that every served config must satisfy.

Validation runs twice as fast as it can: jsonschema-rs answers "valid or not"
in microseconds, and only a config it rejects (or one holding a float, which
both libraries would accept as an integer) goes through the jsonschema
package, whose errors carry the JSON path and rule the operator needs.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import jsonschema
import jsonschema_rs
import orjson

from .errors import ConfigFileError

SCHEMA_FILE = "schema/device-config.schema.json"

Path = tuple[str | int, ...]


def _is_strict_integer(checker: object, value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


_Validator = jsonschema.validators.extend(  # type: ignore[no-untyped-call]
    jsonschema.Draft202012Validator,
    type_checker=jsonschema.Draft202012Validator.TYPE_CHECKER.redefine(
        "integer", _is_strict_integer
    ),
)


@dataclass(frozen=True)
class Violation:
    """One rule a config breaks, at `path`; `culprits` are the values to blame."""

    path: Path
    rule: str
    message: str
    value: Any
    culprits: tuple[Path, ...]

    @property
    def json_path(self) -> str:
        return json_path(self.path)


def json_path(path: Path) -> str:
    parts = ["$"]
    for item in path:
        if isinstance(item, int):
            parts.append(f"[{item}]")
        elif item.isidentifier():
            parts.append(f".{item}")
        else:
            parts.append(f"[{orjson.dumps(item).decode()}]")
    return "".join(parts)


class Schema:
    """A compiled device-config schema."""

    def __init__(self, document: Any, file: str = SCHEMA_FILE) -> None:
        if not isinstance(document, dict):
            raise ConfigFileError(file, None, "expected a JSON object (a schema)")
        try:
            _Validator.check_schema(document)
            self._fast = jsonschema_rs.validator_for(document)
        except (jsonschema.SchemaError, ValueError) as exc:
            message = getattr(exc, "message", str(exc))
            raise ConfigFileError(
                file, None, f"not a valid JSON Schema: {message}"
            ) from None
        self._full = _Validator(document)
        self.document = document

    @classmethod
    def from_bytes(cls, source: bytes, file: str = SCHEMA_FILE) -> Schema:
        try:
            document = orjson.loads(source)
        except orjson.JSONDecodeError as exc:
            line = source[: exc.pos].count(b"\n") + 1
            raise ConfigFileError(file, line, f"invalid JSON: {exc.msg}") from None
        return cls(document, file)

    def violations(self, config: Any, floats: bool = True) -> list[Violation]:
        """Every rule `config` breaks, in a stable order; empty when valid.

        `floats=False` promises that `config` holds no float, which saves a walk.
        """
        fast_valid = self._fast.is_valid(config)
        if fast_valid and not (floats and holds_float(config)):
            return []
        found = [
            Violation(
                tuple(error.absolute_path),
                str(error.validator),
                error.message,
                error.instance,
                _offending_paths(error),
            )
            for error in self._full.iter_errors(config)
        ]
        if not found and not fast_valid:
            # The two libraries read some regexes differently (a `$` before a
            # final newline); the stricter verdict wins.
            found = [
                Violation(
                    tuple(error.instance_path),
                    str(error.schema_path[-1]) if error.schema_path else "schema",
                    error.message,
                    error.instance,
                    (tuple(error.instance_path),),
                )
                for error in self._fast.iter_errors(config)
            ]
        return sorted(found, key=lambda v: (str(v.path), v.rule, v.message))


def holds_float(value: Any) -> bool:
    """Whether a float is anywhere in `value`."""
    if isinstance(value, dict):
        return any(holds_float(v) for v in value.values())
    if isinstance(value, list):
        return any(holds_float(v) for v in value)
    return isinstance(value, float)


def _offending_paths(error: jsonschema.ValidationError) -> tuple[Path, ...]:
    path = tuple(error.absolute_path)
    if error.validator != "additionalProperties" or not isinstance(
        error.instance, dict
    ):
        return (path,)
    schema = error.schema if isinstance(error.schema, dict) else {}
    named = schema.get("properties", {})
    patterns = schema.get("patternProperties", {})
    return tuple(
        (*path, key)
        for key in error.instance
        if key not in named and not any(re.search(p, key) for p in patterns)
    )
