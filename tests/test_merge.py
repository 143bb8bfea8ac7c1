from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from layercfg.merge import apply_patch, leaves, make_patch, merge_patch, same

# Fixed alphabets: Hypothesis's full Unicode tables take seconds to build on a
# fresh checkout, which its health check reports as a failure.
non_null = st.booleans() | st.integers() | st.text("xyz é", max_size=4)
scalars = st.none() | non_null
keys = st.text("abcd", max_size=2)


def _values(leaf: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.recursive(
        leaf,
        lambda inner: (
            st.lists(inner, max_size=3) | st.dictionaries(keys, inner, max_size=4)
        ),
        max_leaves=12,
    )


json_values = _values(scalars)
objects = st.dictionaries(keys, json_values, max_size=5)
# What a merge patch can produce: no null anywhere.
null_free_objects = st.dictionaries(keys, _values(non_null), max_size=5)


def _exact(value: Any) -> str:
    # Unlike ==, tells True from 1 and nests; key order does not matter to JSON.
    return json.dumps(value, sort_keys=True)


def _at(value: Any, path: tuple[str, ...]) -> Any:
    for key in path:
        value = value[key]
    return value


def _containers(value: Any) -> list[Any]:
    if isinstance(value, dict):
        return [value, *(c for v in value.values() for c in _containers(v))]
    if isinstance(value, list):
        return [value, *(c for v in value for c in _containers(v))]
    return []


# RFC 7386, appendix A, in order.
RFC_7386_EXAMPLES = [
    ({"a": "b"}, {"a": "c"}, {"a": "c"}),
    ({"a": "b"}, {"b": "c"}, {"a": "b", "b": "c"}),
    ({"a": "b"}, {"a": None}, {}),
    ({"a": "b", "b": "c"}, {"a": None}, {"b": "c"}),
    ({"a": ["b"]}, {"a": "c"}, {"a": "c"}),
    ({"a": "c"}, {"a": ["b"]}, {"a": ["b"]}),
    ({"a": {"b": "c"}}, {"a": {"b": "d", "c": None}}, {"a": {"b": "d"}}),
    ({"a": [{"b": "c"}]}, {"a": [1]}, {"a": [1]}),
    (["a", "b"], ["c", "d"], ["c", "d"]),
    ({"a": "b"}, ["c"], ["c"]),
    ({"a": "foo"}, None, None),
    ({"a": "foo"}, "bar", "bar"),
    ({"e": None}, {"a": 1}, {"e": None, "a": 1}),
    ([1, 2], {"a": "b", "c": None}, {"a": "b"}),
    ({}, {"a": {"bb": {"ccc": None}}}, {"a": {"bb": {}}}),
]


@pytest.mark.parametrize(
    ("target", "patch", "expected"),
    [
        pytest.param(*case, id=f"rfc7386-{n}")
        for n, case in enumerate(RFC_7386_EXAMPLES, 1)
    ],
)
def test_merge_patch_rfc_7386_examples(target: Any, patch: Any, expected: Any) -> None:
    assert _exact(merge_patch(target, patch)) == _exact(expected)


@pytest.mark.parametrize(
    ("target", "patch", "expected"),
    [
        pytest.param(
            {"metrics": {"a": True, "b": True}},
            {"metrics": {"b": False, "c": True}},
            {"metrics": {"a": True, "b": False, "c": True}},
            id="mappings-merge-recursively",
        ),
        pytest.param(
            {"enabled_metrics": ["a", "b"]},
            {"enabled_metrics": ["c"]},
            {"enabled_metrics": ["c"]},
            id="lists-replace-whole",
        ),
        pytest.param(
            {"ina260": {"i2c_address": "0x40"}},
            {"ina260": None},
            {},
            id="null-removes-inherited-mapping",
        ),
        pytest.param({}, {"ina260": None}, {}, id="null-of-absent-key-is-no-op"),
        pytest.param(
            {"shelly": "off"},
            {"shelly": {"host": "plug"}},
            {"shelly": {"host": "plug"}},
            id="mapping-replaces-scalar",
        ),
        pytest.param(
            {"shelly": {"host": "plug"}},
            {"shelly": {}},
            {"shelly": {"host": "plug"}},
            id="empty-mapping-changes-nothing",
        ),
        pytest.param(
            {"port": 1}, {"port": True}, {"port": True}, id="bool-replaces-int"
        ),
    ],
)
def test_merge_patch_layers(target: Any, patch: Any, expected: Any) -> None:
    assert _exact(merge_patch(target, patch)) == _exact(expected)


def test_merge_patch_keeps_key_order_of_first_setter() -> None:
    merged = merge_patch({"b": 1, "a": 1}, {"c": 1, "a": 2})

    assert list(merged) == ["b", "a", "c"]


def test_merge_patch_result_shares_nothing_with_patch() -> None:
    patch = {"metrics": {"a": True}, "enabled_metrics": ["a"]}

    merged = merge_patch({}, patch)
    merged["metrics"]["a"] = False
    merged["enabled_metrics"].append("b")

    assert patch == {"metrics": {"a": True}, "enabled_metrics": ["a"]}


@pytest.mark.parametrize(
    ("source", "target", "expected"),
    [
        pytest.param({"a": 1}, {"a": 1}, {}, id="equal-gives-empty"),
        pytest.param({"a": 1}, {}, {"a": None}, id="removed-key-is-null"),
        pytest.param({"a": 1}, {"a": 2}, {"a": 2}, id="changed-scalar"),
        pytest.param({"a": 1}, {"a": True}, {"a": True}, id="int-to-bool-is-a-change"),
        pytest.param({"a": 1}, {"a": 1.0}, {"a": 1.0}, id="int-to-float-is-a-change"),
        pytest.param(
            {"m": {"x": True, "y": True}},
            {"m": {"x": True, "y": False}},
            {"m": {"y": False}},
            id="nested-change-only",
        ),
        pytest.param({"l": [1, 2]}, {"l": [1]}, {"l": [1]}, id="list-sent-whole"),
        pytest.param({"a": 1}, ["x"], ["x"], id="non-object-target"),
    ],
)
def test_make_patch_is_minimal(source: Any, target: Any, expected: Any) -> None:
    assert _exact(make_patch(source, target)) == _exact(expected)


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        pytest.param(1, 1, True, id="equal-ints"),
        pytest.param(1, True, False, id="int-is-not-bool"),
        pytest.param(1, 1.0, False, id="int-is-not-float"),
        pytest.param({"a": [1]}, {"a": [1]}, True, id="equal-nested"),
        pytest.param({"a": 1, "b": 2}, {"b": 2, "a": 1}, True, id="key-order-ignored"),
        pytest.param([1, 2], [2, 1], False, id="list-order-counts"),
        pytest.param({"a": 1}, {"a": 1, "b": 1}, False, id="extra-key"),
    ],
)
def test_same_is_strict_json_equality(a: Any, b: Any, expected: bool) -> None:
    assert same(a, b) is expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param({}, {}, id="empty-root-has-none"),
        pytest.param(
            {"a": 1, "b": {"c": [1]}}, {("a",): 1, ("b", "c"): [1]}, id="nested"
        ),
        pytest.param({"a": {}}, {("a",): {}}, id="empty-mapping-is-a-leaf"),
        pytest.param(3, {(): 3}, id="scalar-root"),
    ],
)
def test_leaves_by_key_path(value: Any, expected: dict[Any, Any]) -> None:
    assert leaves(value) == expected


@given(objects)
def test_merge_patch_empty_patch_changes_nothing(target: dict[str, Any]) -> None:
    assert _exact(merge_patch(target, {})) == _exact(target)


@given(objects, objects)
def test_merge_patch_top_layer_leaves_win(
    target: dict[str, Any], patch: dict[str, Any]
) -> None:
    merged = merge_patch(target, patch)

    for path, value in leaves(patch).items():
        if value is not None and not isinstance(value, dict):
            assert _exact(_at(merged, path)) == _exact(value)


@given(objects, objects)
def test_merge_patch_null_removes_key(
    target: dict[str, Any], patch: dict[str, Any]
) -> None:
    merged = merge_patch(target, patch)

    for path, value in leaves(patch).items():
        if value is None:
            assert path[-1] not in _at(merged, path[:-1])


@given(objects, objects)
def test_merge_patch_never_mutates_inputs(
    target: dict[str, Any], patch: dict[str, Any]
) -> None:
    before = copy.deepcopy((target, patch))

    merge_patch(target, patch)

    assert _exact((target, patch)) == _exact(before)


@given(objects, objects)
def test_merge_patch_result_shares_no_containers(
    target: dict[str, Any], patch: dict[str, Any]
) -> None:
    inputs = {id(c) for c in _containers(target) + _containers(patch)}

    merged = merge_patch(target, patch)

    assert not inputs & {id(c) for c in _containers(merged)}


@given(objects, objects)
def test_apply_patch_matches_merge_patch(
    target: dict[str, Any], patch: dict[str, Any]
) -> None:
    expected = merge_patch(target, patch)
    frozen_patch = copy.deepcopy(patch)

    apply_patch(target, patch)

    assert _exact(target) == _exact(expected)
    assert _exact(patch) == _exact(frozen_patch)


@given(objects, null_free_objects)
def test_make_patch_turns_source_into_target(
    source: dict[str, Any], target: dict[str, Any]
) -> None:
    patch = make_patch(source, target)

    assert _exact(merge_patch(source, patch)) == _exact(target)


@given(null_free_objects)
def test_make_patch_of_equal_objects_is_empty(value: dict[str, Any]) -> None:
    assert make_patch(value, copy.deepcopy(value)) == {}
