"""Resolution: what each device receives, from an immutable repository snapshot."""

from __future__ import annotations

import gc
import hashlib
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import orjson

from . import merge
from ._blame import port_clash, type_problem, violation_problems
from ._globs import names_matching
from ._layout import Layout
from ._ties import group_problems
from .errors import ConfigFileError, Problem, RepositoryError, ResolutionError
from .layers import FileRef, Layer, read_all, ref_for, scan
from .schema import SCHEMA_FILE, Schema, Violation

_MEMO_LIMIT = 65_536


@dataclass(frozen=True, eq=False, slots=True)
class Resolved:
    """A device's served config: the layers behind it and its ready response."""

    device_type: str
    layers: tuple[Layer, ...]
    body: bytes
    etag: str
    headers: tuple[tuple[bytes, bytes], ...]  # ready for the ASGI response

    @property
    def config(self) -> dict[str, Any]:
        config: dict[str, Any] = orjson.loads(self.body)
        return config

    @property
    def groups(self) -> tuple[str, ...]:
        return tuple(layer.name for layer in self.layers if layer.kind == "group")


@dataclass(frozen=True, slots=True)
class Origin:
    """Where one leaf value of a resolved config came from."""

    path: tuple[str, ...]
    value: Any
    layer: Layer
    line: int | None
    replaced: tuple[tuple[Layer, int | None, Any], ...]


@dataclass(frozen=True, slots=True)
class Explanation:
    hostname: str
    resolved: Resolved
    origins: tuple[Origin, ...]


@dataclass(frozen=True, slots=True)
class DeviceInfo:
    hostname: str
    device_type: str
    groups: tuple[str, ...]
    etag: str
    files: tuple[str, ...]


class Fleet:
    """Every layer of a repository, validated, with each known device resolved.

    A Fleet never changes; `reload` builds the next one, reusing what an edit
    did not touch.
    """

    def __init__(
        self,
        repo: Path,
        state_dir: Path,
        layers: dict[str, Layer],
        digests: dict[str, bytes],
        schema: Schema,
        layout: Layout,
    ) -> None:
        self.repo = repo
        self.state_dir = state_dir
        self.schema = schema
        self._layers = layers
        self._digests = digests
        self._layout = layout
        self._defaults = layout.defaults
        self._profiles = layout.profiles
        self._groups = layout.groups
        self._index = layout.index
        self._own = layout.own
        self._hosts = layout.hosts
        self._entries: dict[str, Resolved] = {}
        self._chains: dict[tuple[str, ...], Resolved | ResolutionError] = {}
        self._bases: dict[tuple[Layer, ...], dict[str, Any]] = {}
        self._bodies: dict[bytes, tuple[bytes, str, tuple[tuple[bytes, bytes], ...]]]
        self._bodies = {}
        self._memo: dict[str, Resolved | ResolutionError | None] = {}
        self.revision = layout.revision

    # Lookups

    def resolve(self, hostname: str) -> Resolved | None:
        """The served config of `hostname`, or None when the device is unknown.

        Raises ResolutionError for a device matched only by globs whose merged
        config is invalid (devices with files were all validated on load).
        """
        if not hostname.isascii():
            return None  # str.lower() would fold some letters into ASCII ones
        name = hostname.lower()
        found = self._entries.get(name)
        if found is not None:
            return found
        memo = self._memo
        result = memo[name] if name in memo else self._resolve_unfiled(name)
        if isinstance(result, ResolutionError):
            raise result
        return result

    def _resolve_unfiled(self, name: str) -> Resolved | ResolutionError | None:
        owner = self.owner(name)
        result: Resolved | ResolutionError | None = None
        if owner is not None:
            result = self._entries.get(owner)
        if owner is not None and result is None:
            groups = self._index.matches(owner)
            key = tuple(g.name for g in groups)
            result = self._chains.get(key)
            if result is None:
                result = self._chains[key] = self._attempt(owner, groups)
            if isinstance(result, ResolutionError) and result.device != owner:
                # the failure is shared by the group combination, not its name
                problems = [replace(p, device=owner) for p in result.problems]
                result = ResolutionError(owner, problems)
        if len(self._memo) >= _MEMO_LIMIT:
            self._memo.clear()
        self._memo[name] = result
        return result

    def _attempt(self, name: str, groups: list[Layer]) -> Resolved | ResolutionError:
        try:
            return self._compute(name, groups)
        except ResolutionError as exc:
            return exc

    def compute(self, hostname: str) -> Resolved | None:
        """Resolve `hostname` from the loaded layers, bypassing every cache."""
        owner = self.owner(hostname)
        if owner is None:
            return None
        return self._compute(owner, self._index.matches(owner))

    @property
    def device_count(self) -> int:
        """How many devices have files of their own."""
        return len(self._entries)

    def devices(self) -> list[DeviceInfo]:
        """The devices that have files of their own, by name."""
        return [
            DeviceInfo(
                host,
                found.device_type,
                found.groups,
                found.etag,
                tuple(la.file for la in found.layers if la.kind in ("device", "state")),
            )
            for host in self._hosts
            if (found := self._entries.get(host)) is not None
        ]

    def layer(self, kind: str, name: str) -> Layer | None:
        """The device or state layer of `name`, if it has one."""
        return self._own.get(name, {}).get(kind)

    def owner(self, hostname: str) -> str | None:
        """The name whose layers serve `hostname`, or None when it is unknown.

        Files name a device more precisely than globs do, so a name with files
        of its own comes first, then `host` for a `host.domain` with none (some
        systems report the FQDN as the hostname); then a name matched by a
        group, and `host` matched by a group last.
        """
        if not hostname.isascii():
            return None  # str.lower() would fold some letters into ASCII ones
        name = hostname.lower()
        short = name.split(".", 1)[0]
        for candidate in (name, short):
            if candidate in self._own:
                return candidate
        for candidate in (name, short):
            if self._index.matches(candidate):
                return candidate
        return None

    def layers_for_type(
        self, hostname: str, device_type: str
    ) -> tuple[Layer, ...] | None:
        """The layers `hostname` gets without its state layer, typed `device_type`.

        A state layer that sets device_type chooses the profile every other
        layer is merged with, so a write-back needs them for the type it asks
        for. None when no profile has that type.
        """
        profile = self._profiles.get(device_type)
        if profile is None:
            return None
        name = hostname.lower()
        device = self._own.get(name, {}).get("device")
        below = (self._defaults, profile, *self._index.matches(name))
        return below if device is None else (*below, device)

    def check(self, config: dict[str, Any], floats: bool = True) -> list[Violation]:
        """Every rule `config` breaks as a served config; empty when it is valid."""
        return self.schema.violations(config, floats) + port_clash(config)

    def _merge(self, layers: tuple[Layer, ...]) -> dict[str, Any]:
        """Merge `layers`, reusing the merge of the layers many devices share."""
        own = sum(1 for la in layers if la.kind in ("state", "device"))
        shared = layers[: len(layers) - own]
        config = self._bases.get(shared)
        if config is None:
            config = {}
            for la in shared:
                config = merge.merged(config, la.data)
            self._bases[shared] = config
        for la in layers[len(shared) :]:
            config = merge.merged(config, la.data)
        return config

    def explain(self, hostname: str) -> Explanation | None:
        """Which layer set each value `hostname` receives, and what it replaced."""
        resolved = self.resolve(hostname)
        if resolved is None:
            return None
        config = resolved.config
        origins = [
            _origin(path, value, resolved.layers)
            for path, value in merge.leaves(config).items()
            if path
        ]
        return Explanation(hostname.lower(), resolved, tuple(origins))

    # Resolution

    def _chain(
        self, name: str, groups: list[Layer], own: dict[str, Layer]
    ) -> tuple[tuple[Layer, ...], str]:
        above = [
            self._defaults,
            *groups,
            *(own[k] for k in ("state", "device") if k in own),
        ]
        setter = next((la for la in reversed(above) if "device_type" in la.data), None)
        device_type = setter.data["device_type"] if setter else None
        profile = (
            self._profiles.get(device_type) if isinstance(device_type, str) else None
        )
        if profile is None:
            raise ResolutionError(name, [type_problem(name, setter, device_type)])
        return (self._defaults, profile, *above[1:]), profile.name

    def _compute(self, name: str, groups: list[Layer]) -> Resolved:
        layers, device_type = self._chain(name, groups, self._own.get(name, {}))
        config = self._merge(layers)
        violations = self.check(config, any(la.has_float for la in layers))
        if violations:
            problems = [
                p for v in violations for p in violation_problems(name, v, layers)
            ]
            raise ResolutionError(name, problems)
        # device_type first, as the client authors' examples show it
        body = orjson.dumps({"device_type": device_type, **config})
        prepared = self._bodies.get(body)
        if prepared is None:
            prepared = _prepare(body)
            self._bodies[prepared[0]] = prepared
        return Resolved(device_type, layers, *prepared)

    # Loading

    def reload(self, paths: Iterable[Path] | None = None) -> Fleet:
        """The fleet after the files at `paths` (all files when None) changed.

        Raises RepositoryError listing every problem when the result is invalid.
        """
        if paths is None:
            refs = scan(self.repo, self.state_dir)
            gone = [f for f in self._digests if f not in refs]
        else:
            found = (ref_for(self.repo, self.state_dir, Path(p)) for p in paths)
            refs = {ref.file: ref for ref in found if ref is not None}
            gone = []
        with _collector_paused():
            return _build(self.repo, self.state_dir, refs, gone, self)

    def _rebuild_entries(
        self, previous: Fleet | None, changed: dict[str, str]
    ) -> list[Problem]:
        if previous is None:
            affected = set(self._hosts)
        else:
            self._entries = dict(previous._entries)
            affected = self._affected(previous, changed)
        problems: list[Problem] = []
        for host in sorted(affected):
            if host not in self._own:
                self._entries.pop(host, None)
                continue
            try:
                self._entries[host] = self._compute(host, self._index.matches(host))
            except ResolutionError as exc:
                problems.extend(exc.problems)
        return problems

    def _affected(self, previous: Fleet, changed: dict[str, str]) -> set[str]:
        """The devices an edit of `changed` (file: kind) can change."""
        if {"defaults", "schema"} & set(changed.values()):
            return set(self._hosts) | set(previous._hosts)
        affected: set[str] = set()
        types = {
            layer.name
            for file, kind in changed.items()
            if kind == "profile"
            for layer in (previous._layers.get(file), self._layers.get(file))
            if layer is not None
        }
        if types:
            affected.update(
                h for h, r in previous._entries.items() if r.device_type in types
            )
        for file, kind in changed.items():
            for fleet in (previous, self):
                layer = fleet._layers.get(file)
                if layer is None:
                    continue
                if kind == "group":
                    for pattern in layer.match:
                        affected.update(names_matching(pattern, fleet._hosts))
                elif kind in ("device", "state"):
                    affected.add(layer.name)
        return affected


def load_fleet(repo: Path, state_dir: Path | None = None) -> Fleet:
    """Load, resolve and validate a whole config repository.

    Raises RepositoryError listing every problem found, files and devices alike.
    """
    repo = Path(repo)
    state = Path(state_dir) if state_dir is not None else repo / "state"
    with _collector_paused():
        return _build(repo, state, scan(repo, state), [], None)


@contextmanager
def _collector_paused() -> Iterator[None]:
    """Loading creates objects that live on; the cyclic garbage collector would
    scan them again and again for nothing (a third of a 100,000-file load)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _build(
    repo: Path,
    state_dir: Path,
    refs: dict[str, FileRef],
    gone: list[str],
    previous: Fleet | None,
) -> Fleet:
    layers = dict(previous._layers) if previous else {}
    digests = dict(previous._digests) if previous else {}
    schema = previous.schema if previous else None
    problems: list[Problem] = []
    changed: dict[str, str] = {}

    def forget(file: str, kind: str) -> None:
        if file in digests:
            changed[file] = kind
        layers.pop(file, None)
        digests.pop(file, None)

    for file in gone:
        forget(file, layers[file].kind if file in layers else "schema")
    for outcome in read_all([refs[f] for f in sorted(refs)], digests):
        file, kind = outcome.ref.file, outcome.ref.kind
        if outcome.digest is None:
            forget(file, kind)
            continue
        if digests.get(file) == outcome.digest and outcome.problem is None:
            continue
        changed[file] = kind
        digests[file] = outcome.digest
        layers.pop(file, None)
        if outcome.layer is not None:
            layers[file] = outcome.layer
        elif outcome.source is not None:
            try:
                schema = Schema.from_bytes(outcome.source, file)
            except ConfigFileError as exc:
                problems.append(exc.problem)
        if outcome.problem is not None:
            problems.append(outcome.problem)
    if SCHEMA_FILE not in digests:
        problems.append(Problem("the schema file is missing", file=SCHEMA_FILE))
    if previous is None:
        layout = Layout(layers, digests)
    else:
        layout = Layout(
            layers,
            digests,
            previous._layout,
            previous._layers,
            previous._digests,
            changed,
        )
    problems.extend(layout.clash_problems())
    shared = {"defaults", "profile", "group", "schema"}
    if schema is None or any(_kind_of(p, refs, layers) in shared for p in problems):
        # every device would be resolved without a layer it shares, and fail
        # for no reason of its own: the file problems are the ones to report
        raise RepositoryError(problems)

    fleet = Fleet(repo, state_dir, layers, digests, schema, layout)
    chains_changed = previous is None or bool(
        {"defaults", "profile", "group", "schema"} & set(changed.values())
    )
    if chains_changed:
        problems.extend(group_problems(fleet))
    elif previous is not None:
        fleet._chains = previous._chains
        fleet._bases = previous._bases
    if previous is not None:
        fleet._bodies = previous._bodies
    problems.extend(fleet._rebuild_entries(previous, changed))
    if problems:
        raise RepositoryError(problems)
    if len(fleet._bodies) > 2 * len(fleet._entries) + 1024:
        fleet._bodies = {
            r.body: (r.body, r.etag, r.headers) for r in fleet._entries.values()
        }
    return fleet


def _kind_of(
    problem: Problem, refs: dict[str, FileRef], layers: dict[str, Layer]
) -> str:
    """The kind of layer file a problem is about, "" when it is about none."""
    file = problem.file or ""
    if file in refs:
        return refs[file].kind
    return layers[file].kind if file in layers else ("schema" if file else "")


def _prepare(body: bytes) -> tuple[bytes, str, tuple[tuple[bytes, bytes], ...]]:
    """A body with its ETag and response headers; devices with equal configs
    share one of these."""
    # orjson's bytes keep their whole growth buffer (8 KiB for a 1 KiB body);
    # a body kept for the life of a revision is copied to its exact size
    body = memoryview(body).tobytes()
    etag = '"' + hashlib.blake2b(body, digest_size=12).hexdigest() + '"'
    headers = (
        (b"content-type", b"application/json"),
        (b"etag", etag.encode()),
        (b"cache-control", b"no-cache"),
        (b"content-length", str(len(body)).encode()),
    )
    return body, etag, headers


def _origin(path: tuple[str, ...], value: Any, layers: tuple[Layer, ...]) -> Origin:
    history: list[tuple[Layer, int | None, Any]] = []
    for layer in layers:
        found = _lookup(layer.data, path)
        if found is _REMOVED:
            history.clear()  # what earlier layers set is gone, not replaced
        elif found is not _MISSING:
            history.append((layer, layer.line_of(path), found))
    layer, line, _ = history[-1]
    return Origin(path, value, layer, line, tuple(history[:-1]))


def _lookup(data: dict[str, Any], path: tuple[str, ...]) -> Any:
    """What `data` sets at `path`: a value, _MISSING, or _REMOVED if it drops it."""
    found: Any = data
    for key in path:
        if not isinstance(found, dict):
            return _REMOVED  # a value above `path` replaces everything below it
        if key not in found:
            return _MISSING
        found = found[key]
        if found is None:
            return _REMOVED
    return found


_MISSING = object()
_REMOVED = object()
