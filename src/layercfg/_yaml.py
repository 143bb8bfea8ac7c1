"""Safe YAML reading with YAML 1.2 core scalars, duplicate-key and size checks."""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

import yaml
from yaml.events import (
    MappingEndEvent,
    MappingStartEvent,
    SequenceEndEvent,
    SequenceStartEvent,
)
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from .errors import ConfigFileError

try:
    from yaml.cyaml import CParser as _Parser  # type: ignore[attr-defined]
except ImportError:  # PyYAML built without libyaml: same results, slower
    from yaml.composer import Composer
    from yaml.parser import Parser
    from yaml.reader import Reader
    from yaml.scanner import Scanner

    class _Parser(Reader, Scanner, Parser, Composer):  # type: ignore[no-redef]
        def __init__(self, stream: str | bytes) -> None:
            Reader.__init__(self, stream)
            Scanner.__init__(self)
            Parser.__init__(self)
            Composer.__init__(self)


MAX_FILE_BYTES = 1024 * 1024
MAX_DEPTH = 32
MAX_NODES = 100_000


class _Resolver(yaml.resolver.BaseResolver):
    """YAML 1.2 core scalars: `yes`, `no`, `on`, `off`, `0x40`, dates stay strings."""


_Resolver.yaml_implicit_resolvers = {}
for _tag, _pattern, _first in [
    ("bool", r"^(?:true|True|TRUE|false|False|FALSE)$", "tTfF"),
    ("int", r"^[-+]?[0-9]+$", "-+0123456789"),
    (
        "float",
        r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?"
        r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$",
        "-+0123456789.",
    ),
    ("null", r"^(?:~|null|Null|NULL|)$", ["~", "n", "N", ""]),
    ("merge", r"^(?:<<)$", "<"),
]:
    _Resolver.add_implicit_resolver(
        f"tag:yaml.org,2002:{_tag}", re.compile(_pattern), list(_first)
    )


class _Constructor(yaml.constructor.SafeConstructor):
    def construct_yaml_int(self, node: ScalarNode) -> int:
        # YAML 1.2: `010` is ten, where PyYAML's 1.1 rules read 8 (and fail on `09`)
        value = self.construct_scalar(node)
        if _DECIMAL.fullmatch(value) is None:
            raise _located(node, f"expected a decimal integer, found {value!r}")
        # JSON peers read at most 64 bits; the length is checked first because
        # Python refuses to convert over 4300 digits at all
        number = int(value) if len(value) <= 20 else _INT_LIMIT
        if not -_INT_LIMIT <= number < _INT_LIMIT:
            shown = (
                value if len(value) <= 24 else f"{value[:20]}... ({len(value)} digits)"
            )
            raise _located(
                node, f"expected an integer of at most 64 bits, found {shown}"
            )
        return number

    def construct_not_json(self, node: Node) -> Any:
        tag = node.tag.replace("tag:yaml.org,2002:", "!!")
        raise _located(node, f"{tag} values are not allowed: a layer holds JSON values")

    def construct_mapping(self, node: Node, deep: bool = False) -> dict[Any, Any]:
        assert isinstance(node, MappingNode)
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node, deep=True)
            if not isinstance(key, str):
                raise _located(key_node, f"expected a string key, found {key!r}")
            if key in seen:
                raise _located(
                    key_node,
                    f"duplicate key {key!r} (first set on line {seen[key]})",
                )
            seen[key] = key_node.start_mark.line + 1
        return super().construct_mapping(node, deep=deep)


_DECIMAL = re.compile(r"[-+]?[0-9]+")
_INT_LIMIT = 2**63
_Constructor.add_constructor(  # type: ignore[type-var]
    "tag:yaml.org,2002:int", _Constructor.construct_yaml_int
)
for _tag in ("binary", "timestamp", "set", "omap", "pairs"):
    _Constructor.add_constructor(  # type: ignore[type-var]
        f"tag:yaml.org,2002:{_tag}", _Constructor.construct_not_json
    )


class _Loader(_Parser, _Constructor, _Resolver):
    def __init__(self, stream: str | bytes) -> None:
        _Parser.__init__(self, stream)
        _Constructor.__init__(self)
        _Resolver.__init__(self)


class _LocatedError(Exception):
    def __init__(self, line: int, message: str) -> None:
        self.line = line
        self.message = message


def _located(node: Node, message: str) -> _LocatedError:
    return _LocatedError(node.start_mark.line + 1, message)


def _check_size(node: Node) -> None:
    """Refuse deep nesting and alias bombs before anything is constructed."""
    sizes: dict[int, int] = {}

    def size(node: Node, depth: int) -> int:
        if depth > MAX_DEPTH:
            raise _located(node, f"nested deeper than {MAX_DEPTH} levels")
        known = sizes.get(id(node))
        if known is not None:
            return known
        total = 1
        if isinstance(node, MappingNode):
            for key, value in node.value:
                total += size(key, depth + 1) + size(value, depth + 1)
        elif isinstance(node, SequenceNode):
            for item in node.value:
                total += size(item, depth + 1)
        if total > MAX_NODES:
            raise _located(
                node, f"expands to more than {MAX_NODES} values (alias bomb?)"
            )
        sizes[id(node)] = total
        return total

    size(node, 0)


def _compose(file: str, source: bytes) -> tuple[_Loader, Node | None]:
    if len(source) > MAX_FILE_BYTES:
        raise ConfigFileError(
            file, None, f"file is {len(source)} bytes, the limit is {MAX_FILE_BYTES}"
        )
    if _may_nest_deeply(source):
        _check_depth(source)
    loader = _Loader(source)
    try:
        return loader, loader.get_single_node()
    except BaseException:
        loader.dispose()
        raise


# Fewer collection openers than this cannot nest past MAX_DEPTH in a way that
# threatens libyaml's recursive composer, whose stack overflow would crash
# the whole process instead of raising.
_OPENER_BUDGET = 2_000


def _may_nest_deeply(source: bytes) -> bool:
    openers = source.count(b"[") + source.count(b"{") + source.count(b"-")
    return openers > _OPENER_BUDGET


def _check_depth(source: bytes) -> None:
    """Measure nesting from the event stream, which libyaml reads iteratively."""
    loader = _Loader(source)
    depth = 0
    try:
        while loader.check_event():
            event = loader.get_event()
            if isinstance(event, (MappingStartEvent, SequenceStartEvent)):
                depth += 1
                if depth > MAX_DEPTH:
                    mark = event.start_mark
                    line = mark.line + 1 if mark is not None else 0
                    raise _LocatedError(line, f"nested deeper than {MAX_DEPTH} levels")
            elif isinstance(event, (MappingEndEvent, SequenceEndEvent)):
                depth -= 1
    finally:
        loader.dispose()


def load_mapping(file: str, source: bytes) -> dict[str, Any]:
    """Parse one layer file; the top level must be a mapping (empty file: `{}`).

    Every failure is a ConfigFileError naming `file` and, where known, the line.
    """
    try:
        loader, node = _compose(file, source)
        try:
            if node is None or node.tag == "tag:yaml.org,2002:null":
                return {}  # no document, or one holding nothing (`---` alone)
            if not isinstance(node, MappingNode):
                found = "sequence" if isinstance(node, SequenceNode) else "scalar"
                raise _located(
                    node, f"expected a mapping at the top level, found a {found}"
                )
            _check_size(node)
            data: dict[str, Any] = loader.construct_document(node)
        finally:
            loader.dispose()
    except _LocatedError as exc:
        raise ConfigFileError(file, exc.line, exc.message) from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        message = ": ".join(p for p in (exc.context, exc.problem) if p)
        raise ConfigFileError(file, line, message or "invalid YAML") from None
    except yaml.reader.ReaderError as exc:
        message = f"not UTF-8 text ({exc.reason} at byte {exc.position})"
        raise ConfigFileError(file, None, message) from None
    except yaml.YAMLError as exc:
        raise ConfigFileError(file, None, f"invalid YAML: {exc}") from None
    except RecursionError:
        raise ConfigFileError(file, None, "nested too deeply to read") from None
    return data


@lru_cache(maxsize=256)
def key_lines(source: bytes) -> dict[tuple[str, ...], int]:
    """Line of every key path in an already validated file, for provenance."""
    loader, node = _compose("", source)
    lines: dict[tuple[str, ...], int] = {}
    try:
        if isinstance(node, MappingNode):
            _walk(loader, node, (), lines)
    finally:
        loader.dispose()
    return lines


def _walk(
    loader: _Loader, node: MappingNode, prefix: tuple[str, ...], out: dict[Any, int]
) -> None:
    loader.flatten_mapping(node)
    for key_node, value_node in node.value:
        if not isinstance(key_node, ScalarNode):
            continue
        path = (*prefix, key_node.value)
        out[path] = key_node.start_mark.line + 1
        if isinstance(value_node, MappingNode):
            _walk(loader, value_node, path, out)
