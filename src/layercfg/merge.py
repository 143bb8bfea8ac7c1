"""RFC 7386 JSON Merge Patch: applying layers and computing minimal patches.

Layers are never modified: every value taken from a layer is copied into the
result, so a resolved config shares no mutable object with the layers behind it.
"""

from __future__ import annotations

from typing import Any

Json = Any


def merge_patch(target: Json, patch: Json) -> Json:
    """Return `target` with `patch` applied; neither argument is modified."""
    if not isinstance(patch, dict):
        return _copy(patch)
    result = _copy(target) if isinstance(target, dict) else {}
    apply_patch(result, patch)
    return result


def apply_patch(target: dict[str, Json], patch: dict[str, Json]) -> None:
    """Apply `patch` to `target` in place; `patch` is only read."""
    for key, value in patch.items():
        if value is None:
            target.pop(key, None)
        elif isinstance(value, dict):
            _apply_mapping(target, key, value)
        else:
            target[key] = _copy(value)


def _apply_mapping(target: dict[str, Json], key: str, patch: dict[str, Json]) -> None:
    current = target.get(key)
    if not isinstance(current, dict):
        current = target[key] = {}
    apply_patch(current, patch)


def merged(base: dict[str, Json], patch: dict[str, Json]) -> dict[str, Json]:
    """`base` with `patch` applied, as a new mapping sharing unchanged values.

    Neither argument is modified, but the result shares nested values with
    both: it is for results that are read (encoded, validated), never changed.
    The engine merges a hundred thousand configs this way without copying
    what each device inherits unchanged.
    """
    result = dict(base)
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        elif isinstance(value, dict):
            inner = result.get(key)
            result[key] = merged(inner if isinstance(inner, dict) else {}, value)
        else:
            result[key] = value
    return result


def _copy(value: Json) -> Json:
    if isinstance(value, dict):
        return {k: _copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy(v) for v in value]
    return value


def make_patch(source: Json, target: Json) -> Json:
    """The smallest merge patch that turns `source` into `target`.

    `target` must hold no null values: a merge patch cannot express them.
    """
    if not (isinstance(source, dict) and isinstance(target, dict)):
        return _copy(target)
    patch: dict[str, Json] = {key: None for key in source if key not in target}
    for key, value in target.items():
        if key not in source:
            patch[key] = _copy(value)
        elif isinstance(value, dict) and isinstance(source[key], dict):
            nested = make_patch(source[key], value)
            if nested:
                patch[key] = nested
        elif not same(source[key], value):
            patch[key] = _copy(value)
    return patch


def same(a: Json, b: Json) -> bool:
    """JSON equality: unlike `==`, `1`, `1.0` and `True` are all different."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(map(same, a, b))
    return bool(a == b)


def leaves(value: Json, prefix: tuple[str, ...] = ()) -> dict[tuple[str, ...], Json]:
    """Every non-mapping value (and empty mapping) of `value` by its key path."""
    if not isinstance(value, dict) or (not value and prefix):
        return {prefix: value}
    found: dict[tuple[str, ...], Json] = {}
    for key, item in value.items():
        found.update(leaves(item, (*prefix, key)))
    return found
