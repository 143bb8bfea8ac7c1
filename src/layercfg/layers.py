"""The files of a config repository and the layers parsed from them."""

from __future__ import annotations

import hashlib
import multiprocessing
import os
import re
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from . import _yaml
from .errors import ConfigFileError, Problem, RepositoryError
from .schema import SCHEMA_FILE, holds_float

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
    has_float: bool = field(init=False, repr=False)

    def __post_init__(self) -> None:
        # the schema check walks a config for floats only when a layer has one
        object.__setattr__(self, "has_float", holds_float(self.data))

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
    path: str


def scan(repo: Path, state_dir: Path) -> dict[str, FileRef]:
    """Every layer file of the repository and state directory, by display name."""
    refs: dict[str, FileRef] = {}
    for folder, kind in _folders(repo, state_dir):
        for ref in _refs_in(repo, folder, kind):
            refs[ref.file] = ref
    refs[SCHEMA_FILE] = FileRef(
        "schema", "schema", SCHEMA_FILE, str(repo / SCHEMA_FILE)
    )
    return refs


def ref_for(repo: Path, state_dir: Path, path: Path) -> FileRef | None:
    """The layer file `path` would be, or None when layercfg ignores it."""
    if path == repo / SCHEMA_FILE:
        return FileRef("schema", "schema", SCHEMA_FILE, str(path))
    for folder, kind in _folders(repo, state_dir):
        if path.parent == folder:
            return _ref(_shown(repo, folder), str(folder), path.name, kind)
    return None


def _folders(repo: Path, state_dir: Path) -> list[tuple[Path, str]]:
    return [
        (repo / "profiles", "profile"),
        (repo / "overrides" / "groups", "group"),
        (repo / "overrides" / "devices", "device"),
        (state_dir / "devices", "state"),
    ]


def _shown(repo: Path, folder: Path) -> str:
    """How operators see `folder`: relative to the repo when inside it."""
    try:
        return str(folder.relative_to(repo))
    except ValueError:
        return str(folder)


def _refs_in(repo: Path, folder: Path, kind: str) -> list[FileRef]:
    # plain strings, not Path objects: this runs once per file of the fleet
    try:
        names = os.listdir(folder)
    except FileNotFoundError:
        return []
    except OSError as exc:
        message = f"cannot read the folder: {exc.strerror}"
        raise RepositoryError([Problem(message, file=_shown(repo, folder))]) from None
    shown, where = _shown(repo, folder), str(folder)
    refs = (_ref(shown, where, name, kind) for name in names)
    return [ref for ref in refs if ref is not None]


def _ref(shown: str, folder: str, name: str, kind: str) -> FileRef | None:
    suffixes = (".json",) if kind == "state" else _YAML_SUFFIXES
    if name.startswith(".") or not name.endswith(suffixes):
        return None
    stem = name.rsplit(".", 1)[0]
    if kind == "profile" and stem == DEFAULTS:
        kind = "defaults"
    return FileRef(kind, stem, f"{shown}/{name}", f"{folder}/{name}")


def digest(source: bytes) -> bytes:
    return hashlib.blake2b(source, digest_size=16).digest()


def parse(ref: FileRef, source: bytes, data: dict[str, Any] | None = None) -> Layer:
    """Turn one file's bytes into a layer; ConfigFileError when it is unusable.

    `data` is the YAML already read from `source`, when another process did it.
    """
    if ref.kind == "state":
        return _parse_state(ref, source)
    if data is None:
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


@dataclass(frozen=True, slots=True)
class Outcome:
    """What reading one file gave: a layer, the schema's bytes, or a problem.

    `digest` is None when the file is gone, and `layer`, `source` and
    `problem` are all None when its content is the one already known.
    """

    ref: FileRef
    digest: bytes | None
    layer: Layer | None = None
    source: bytes | None = None
    problem: Problem | None = None


# Below this many files a second process costs more than it saves.
_PARALLEL_FILES = 4096


def read_all(refs: list[FileRef], known: dict[str, bytes]) -> list[Outcome]:
    """Read and parse `refs`, skipping content whose digest `known` holds.

    A large first load reads YAML in one process per core, as it is most of
    the time a big fleet takes to start. The processes send back plain bytes
    and mappings, which cross a pipe far faster than layer objects would.
    """
    workers = min(os.cpu_count() or 1, len(refs) // _PARALLEL_FILES)
    if workers < 2 or known:
        return [_read_one(ref, known.get(ref.file)) for ref in refs]
    paths = [ref.path if ref.kind not in ("schema", "state") else "" for ref in refs]
    context = multiprocessing.get_context("fork")
    try:
        pool = ProcessPoolExecutor(workers, mp_context=context)
        try:
            read = list(pool.map(_read_yaml, paths, chunksize=2048))
        finally:
            # their work is done; tearing down their memory need not be waited for
            pool.shutdown(wait=False)
    except (OSError, AssertionError):  # no processes to be had: read them here
        return [_read_one(ref, None) for ref in refs]
    return [
        _read_one(ref, None) if pair is None else _outcome(ref, *pair)
        for ref, pair in zip(refs, read, strict=True)
    ]


def _read_yaml(path: str) -> tuple[bytes, dict[str, Any] | Problem] | None:
    """A file's bytes and YAML mapping (or why it has none); None: read it here."""
    if not path:
        return None
    try:
        with open(path, "rb") as handle:
            source = handle.read()
    except OSError:
        return None
    try:
        return source, _yaml.load_mapping(path, source)
    except ConfigFileError as exc:
        return source, exc.problem


def _outcome(ref: FileRef, source: bytes, data: dict[str, Any] | Problem) -> Outcome:
    found = digest(source)
    if isinstance(data, Problem):
        problem = Problem(data.message, file=ref.file, line=data.line)
        return Outcome(ref, found, problem=problem)
    try:
        return Outcome(ref, found, layer=parse(ref, source, data))
    except ConfigFileError as exc:
        return Outcome(ref, found, problem=exc.problem)


def _read_one(ref: FileRef, known: bytes | None) -> Outcome:
    try:
        with open(ref.path, "rb") as handle:
            source = handle.read()
    except FileNotFoundError:
        return Outcome(ref, None)
    except OSError as exc:
        problem = Problem(f"cannot read the file: {exc.strerror}", file=ref.file)
        return Outcome(ref, b"", problem=problem)  # no digest is empty
    found = digest(source)
    if found == known:
        return Outcome(ref, found)
    if ref.kind == "schema":
        return Outcome(ref, found, source=source)
    try:
        return Outcome(ref, found, layer=parse(ref, source))
    except ConfigFileError as exc:
        return Outcome(ref, found, problem=exc.problem)
