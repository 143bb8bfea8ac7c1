from __future__ import annotations

import math
from typing import Any

import pytest

from layercfg._yaml import MAX_DEPTH, MAX_FILE_BYTES, MAX_NODES, load_mapping
from layercfg.errors import ConfigFileError, LayercfgError


def _error(source: bytes) -> ConfigFileError:
    with pytest.raises(ConfigFileError) as caught:
        load_mapping("layer.yaml", source)
    return caught.value


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        pytest.param(b"", {}, id="empty-file"),
        pytest.param(b"# only a comment\n", {}, id="comments-only"),
        pytest.param(b"---\n# nothing yet\n", {}, id="empty-document"),
        pytest.param(b"i2c_address: 0x40\n", {"i2c_address": "0x40"}, id="hex-string"),
        pytest.param(b"no: true\n", {"no": True}, id="key-no-is-a-string"),
        pytest.param(b"enabled: yes\n", {"enabled": "yes"}, id="yes-is-a-string"),
        pytest.param(b"on: off\n", {"on": "off"}, id="on-off-are-strings"),
        pytest.param(b"x: Yes\n", {"x": "Yes"}, id="capital-yes-is-a-string"),
        pytest.param(b"x: TRUE\n", {"x": True}, id="upper-true-is-bool"),
        pytest.param(b"x: 2024-01-01\n", {"x": "2024-01-01"}, id="date-is-a-string"),
        pytest.param(b"x: 010\n", {"x": 10}, id="leading-zero-is-decimal"),
        pytest.param(b"x: 09\n", {"x": 9}, id="leading-zero-nine"),
        pytest.param(b"x: 0o17\n", {"x": "0o17"}, id="octal-is-a-string"),
        pytest.param(b"x: 1_000\n", {"x": "1_000"}, id="underscores-are-a-string"),
        pytest.param(b"x: 1:30\n", {"x": "1:30"}, id="sexagesimal-is-a-string"),
        pytest.param(b"x: -12\n", {"x": -12}, id="negative-int"),
        pytest.param(b"port: 9100.0\n", {"port": 9100.0}, id="float-stays-float"),
        pytest.param(b"x: 1e3\n", {"x": 1000.0}, id="exponent-is-float"),
        pytest.param(
            b"x: ~\ny: null\nz:\n", {"x": None, "y": None, "z": None}, id="nulls"
        ),
        pytest.param(b"x: '0x40'\n", {"x": "0x40"}, id="quoted-string"),
        pytest.param(
            b"base: &b {a: 1}\nx:\n  <<: *b\n  c: 2\n",
            {"base": {"a": 1}, "x": {"a": 1, "c": 2}},
            id="merge-key",
        ),
        pytest.param(b"\xef\xbb\xbfa: 1\n", {"a": 1}, id="utf8-bom"),
    ],
)
def test_load_mapping_scalars(source: bytes, expected: dict[str, Any]) -> None:
    loaded = load_mapping("layer.yaml", source)

    assert loaded == expected
    assert [type(v) for v in loaded.values()] == [type(v) for v in expected.values()]


def test_load_mapping_infinity_is_float() -> None:
    assert math.isinf(load_mapping("layer.yaml", b"x: .inf\n")["x"])


@pytest.mark.parametrize(
    ("source", "line", "message"),
    [
        pytest.param(
            b"a: 1\nb: 2\na: 3\n",
            3,
            "duplicate key 'a' (first set on line 1)",
            id="duplicate-key",
        ),
        pytest.param(
            b"m:\n  x: 1\n  x: 2\n",
            3,
            "duplicate key 'x' (first set on line 2)",
            id="duplicate-nested-key",
        ),
        pytest.param(
            b"- a\n- b\n",
            1,
            "expected a mapping at the top level, found a sequence",
            id="top-level-list",
        ),
        pytest.param(
            b"hello\n",
            1,
            "expected a mapping at the top level, found a scalar",
            id="top-level-scalar",
        ),
        pytest.param(b"1: a\n", 1, "expected a string key, found 1", id="int-key"),
        pytest.param(
            b"a: 1\nb: " + b"9" * 5000 + b"\n",
            2,
            "expected an integer of at most 64 bits, found "
            "99999999999999999999... (5000 digits)",
            id="integer-too-long-to-convert",
        ),
        pytest.param(
            b"b: 9223372036854775808\n",
            1,
            "expected an integer of at most 64 bits, found 9223372036854775808",
            id="integer-beyond-64-bits",
        ),
        pytest.param(
            b"true: a\n", 1, "expected a string key, found True", id="bool-key"
        ),
        pytest.param(
            b"a: 1\nx: !!python/object:os.system ls\n",
            2,
            "could not determine a constructor for the tag "
            "'tag:yaml.org,2002:python/object:os.system'",
            id="python-tag",
        ),
    ],
)
def test_load_mapping_rejects(source: bytes, line: int, message: str) -> None:
    problem = _error(source).problem

    assert (problem.file, problem.line, problem.message) == (
        "layer.yaml",
        line,
        message,
    )


# The parser's own words differ between libyaml and PyYAML's pure-Python
# parser; what layercfg adds (file, line, the context) does not.
@pytest.mark.parametrize(
    ("source", "line", "start"),
    [
        pytest.param(
            b"a: 1\n---\nb: 2\n",
            2,
            "expected a single document in the stream: but found another document",
            id="two-documents",
        ),
        pytest.param(
            b"a: [1, 2\n", 2, "while parsing a flow sequence: ", id="unclosed-list"
        ),
        pytest.param(
            b"a:\n\tb: 1\n",
            2,
            "while scanning for the next token: found character ",
            id="tab-indent",
        ),
        pytest.param(b"a: &x 1\nb: *y\n", 2, "found undefined alias", id="bad-alias"),
    ],
)
def test_load_mapping_reports_parser_errors(
    source: bytes, line: int, start: str
) -> None:
    problem = _error(source).problem

    assert (problem.file, problem.line) == ("layer.yaml", line)
    assert problem.message.startswith(start)


@pytest.mark.parametrize(
    ("source", "line", "tag"),
    [
        pytest.param(b"a: 1\nx: !!binary aGVsbG8=\n", 2, "!!binary", id="binary"),
        pytest.param(b"x: !!timestamp 2024-01-01\n", 1, "!!timestamp", id="timestamp"),
        pytest.param(b"x:\n  - !!set {a: null}\n", 2, "!!set", id="set"),
        pytest.param(b"x: !!omap [{a: 1}]\n", 1, "!!omap", id="omap"),
        pytest.param(b"x: !!pairs [{a: 1}]\n", 1, "!!pairs", id="pairs"),
    ],
)
def test_load_mapping_rejects_values_json_cannot_hold(
    source: bytes, line: int, tag: str
) -> None:
    problem = _error(source).problem

    assert problem.line == line
    assert problem.message == f"{tag} values are not allowed: a layer holds JSON values"


def test_load_mapping_error_renders_file_and_line() -> None:
    error = _error(b"a: 1\na: 2\n")

    assert str(error) == "layer.yaml:2: duplicate key 'a' (first set on line 1)"
    assert isinstance(error, LayercfgError) and isinstance(error, ValueError)


def test_load_mapping_rejects_non_utf8() -> None:
    problem = _error(b"a: caf\xe9\n").problem

    assert problem.line is None
    assert problem.message.startswith("not UTF-8 text (")


def test_load_mapping_rejects_alias_bomb() -> None:
    rows = [b"a: &a [" + b", ".join([b'"lol"'] * 9) + b"]"]
    for name, below in zip(b"bcdefg", b"abcdef"):
        refs = b", ".join([b"*" + bytes([below])] * 9)
        rows.append(bytes([name]) + b": &" + bytes([name]) + b" [" + refs + b"]")

    problem = _error(b"\n".join(rows) + b"\n").problem

    assert problem.message == f"expands to more than {MAX_NODES} values (alias bomb?)"
    assert problem.line is not None


def test_load_mapping_rejects_deep_nesting() -> None:
    depth = MAX_DEPTH + 1
    problem = _error(b"a: " + b"[" * depth + b"]" * depth + b"\n").problem

    assert problem.message == f"nested deeper than {MAX_DEPTH} levels"


@pytest.mark.parametrize(
    ("opener", "closer"),
    [
        pytest.param(b"[", b"]", id="lists"),
        pytest.param(b"{a: ", b"}", id="mappings"),
    ],
)
def test_load_mapping_rejects_nesting_too_deep_to_parse(
    opener: bytes, closer: bytes
) -> None:
    problem = _error(b"a: " + opener * 100_000 + closer * 100_000 + b"\n").problem

    assert problem.message == f"nested deeper than {MAX_DEPTH} levels"


def test_load_mapping_rejects_large_file() -> None:
    source = b"a: '" + b"x" * MAX_FILE_BYTES + b"'\n"

    problem = _error(source).problem

    assert problem.message == (
        f"file is {len(source)} bytes, the limit is {MAX_FILE_BYTES}"
    )
