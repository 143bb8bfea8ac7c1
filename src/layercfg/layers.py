"""The files of a config repository and the layers parsed from them."""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from . import _yaml
from .errors import ConfigFileError
from .schema import SCHEMA_FILE

DEFAULTS = "defaults"
DEVICE_TYPES = (
    "jetson_orin",
    "jetson_xavier",
    "jetson_nano",
    "jetson",
    "raspberry_pi",
    "orange_pi",
    "lattepanda",
    "shelly",
)
_HOSTNAME = re.compile(r"[a-z0-9-]{1,63}(?:\.[a-z0-9-]{1,63})*")
_GROUP_KEYS = {"match", "priority", "config"}
_YAML_SUFFIXES = (".yaml", ".yml")


def valid_hostname(name: str) -> bool:
    """Whether `name` (already lowercased) is a hostname layercfg can serve."""
    return len(name) <= 253 and _HOSTNAME.fullmatch(name) is not None


@dataclass(frozen=True, eq=False, slots=True)
class Layer:
    """One parsed layer file: a merge patch plus what it applies to."""

    kind: str  # "defaults", "profile", "group", "state" or "device"
    name: str
    file: str
    data: dict[str, Any]
    source: bytes = field(repr=False)
    match: tuple[str, ...] = ()
    priority: int = 0
    written_at: str | None = None

    def line_of(self, path: tuple[str | int, ...]) -> int | None:
        """The line that sets `path` in this file, or the nearest parent's."""
        if self.kind == "state":
            return None
        prefix = ("config",) if self.kind == "group" else ()
        lines = _yaml.key_lines(self.source)
        for end in range(len(path), 0, -1):
            line = lines.get((*prefix, *map(str, path[:end])))
            if line is not None:
                return line
        return None


@dataclass(frozen=True, slots=True)
class FileRef:
    """Where a layer file sits and what kind of layer it holds."""

    kind: str
    name: str
    file: str  # shown to operators: relative to the repo when inside it
    path: Path


def scan(repo: Path, state_dir: Path) -> dict[str, FileRef]:
    """Every layer file of the repository and state directory, by display name."""
    refs: dict[str, FileRef] = {}
    for ref in _refs_in(repo, repo / "profiles", "profile"):
        refs[ref.file] = ref
    for ref in _refs_in(repo, repo / "overrides" / "groups", "group"):
        refs[ref.file] = ref
    for ref in _refs_in(repo, repo / "overrides" / "devices", "device"):
        refs[ref.file] = ref
    for ref in _refs_in(repo, state_dir / "devices", "state"):
        refs[ref.file] = ref
    schema = repo / SCHEMA_FILE
    refs[SCHEMA_FILE] = FileRef("schema", "schema", SCHEMA_FILE, schema)
    return refs


def ref_for(repo: Path, state_dir: Path, path: Path) -> FileRef | None:
    """The layer file `path` would be, or None when layercfg ignores it."""
    if path == repo / SCHEMA_FILE:
        return FileRef("schema", "schema", SCHEMA_FILE, path)
    for folder, kind in (
        (repo / "profiles", "profile"),
        (repo / "overrides" / "groups", "group"),
        (repo / "overrides" / "devices", "device"),
        (state_dir / "devices", "state"),
    ):
        if path.parent == folder:
            return _ref(repo, path, kind)
    return None


def _refs_in(repo: Path, folder: Path, kind: str) -> list[FileRef]:
    try:
        names = os.listdir(folder)
    except FileNotFoundError:
        return []
    refs = (_ref(repo, folder / name, kind) for name in names)
    return [ref for ref in refs if ref is not None]


def _ref(repo: Path, path: Path, kind: str) -> FileRef | None:
    name = path.name
    suffixes = (".json",) if kind == "state" else _YAML_SUFFIXES
    if name.startswith(".") or not name.endswith(suffixes):
        return None
    stem = name.rsplit(".", 1)[0]
    if kind == "profile" and stem == DEFAULTS:
        kind = "defaults"
    try:
        shown = str(path.relative_to(repo))
    except ValueError:
        shown = str(path)
    return FileRef(kind, stem, shown, path)


def digest(source: bytes) -> bytes:
    return hashlib.blake2b(source, digest_size=16).digest()


def parse(ref: FileRef, source: bytes) -> Layer:
    """Turn one file's bytes into a layer; ConfigFileError when it is unusable."""
    if ref.kind == "state":
        return _parse_state(ref, source)
    data = _yaml.load_mapping(ref.file, source)
    if ref.kind == "group":
        return _parse_group(ref, source, data)
    if ref.kind == "device":
        _check_hostname(ref)
    if ref.kind == "profile":
        _check_profile(ref, source, data)
    name = ref.name.lower() if ref.kind == "device" else ref.name
    return Layer(ref.kind, name, ref.file, data, source)


def _check_hostname(ref: FileRef) -> None:
    if not valid_hostname(ref.name.lower()):
        raise ConfigFileError(
            ref.file,
            None,
            f"file name {ref.name!r} is not a hostname (expected letters, digits, "
            "'-' and '.', labels of 1 to 63 characters)",
        )


def _check_profile(ref: FileRef, source: bytes, data: dict[str, Any]) -> None:
    if ref.name not in DEVICE_TYPES:
        raise ConfigFileError(
            ref.file,
            None,
            f"no device type is called {ref.name!r} (expected one of "
            f"{', '.join(DEVICE_TYPES)})",
        )
    declared = data.get("device_type", ref.name)
    if declared != ref.name:
        line = _yaml.key_lines(source).get(("device_type",))
        raise ConfigFileError(
            ref.file,
            line,
            f"device_type: profile {ref.name!r} sets device_type to {declared!r}",
        )


def _parse_group(ref: FileRef, source: bytes, data: dict[str, Any]) -> Layer:
    lines = _yaml.key_lines(source)
    unknown = sorted(set(data) - _GROUP_KEYS)
    if unknown:
        raise ConfigFileError(
            ref.file,
            lines.get((unknown[0],)),
            f"{unknown[0]}: unknown key in a group file (expected match, "
            "priority and config)",
        )
    match = data.get("match")
    patterns = [match] if isinstance(match, str) else match
    if (
        not isinstance(patterns, list)
        or not patterns
        or not all(isinstance(p, str) and p for p in patterns)
    ):
        raise ConfigFileError(
            ref.file,
            lines.get(("match",)),
            f"match: expected a glob or a list of globs, found {match!r}",
        )
    priority = data.get("priority", 0)
    if not isinstance(priority, int) or isinstance(priority, bool):
        raise ConfigFileError(
            ref.file,
            lines.get(("priority",)),
            f"priority: expected an integer, found {priority!r}",
        )
    config = data.get("config") or {}
    if not isinstance(config, dict):
        raise ConfigFileError(
            ref.file,
            lines.get(("config",)),
            f"config: expected a mapping, found {config!r}",
        )
    globs = tuple(p.lower() for p in patterns)
    return Layer("group", ref.name, ref.file, config, source, globs, priority)


def _parse_state(ref: FileRef, source: bytes) -> Layer:
    _check_hostname(ref)
    try:
        document = orjson.loads(source)
    except orjson.JSONDecodeError as exc:
        raise ConfigFileError(ref.file, None, f"invalid JSON: {exc.msg}") from None
    config = document.get("config") if isinstance(document, dict) else None
    if not isinstance(config, dict):
        raise ConfigFileError(
            ref.file, None, "expected an object with a 'config' object"
        )
    written_at = document.get("written_at")
    return Layer(
        "state",
        ref.name.lower(),
        ref.file,
        config,
        source,
        written_at=written_at if isinstance(written_at, str) else None,
    )
