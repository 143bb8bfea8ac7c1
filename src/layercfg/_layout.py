"""Where each layer sits in a file set, kept up to date edit by edit.

A fleet of 100,000 devices has 100,000 device files; an edit of one of them
must not cost a pass over all of them, so every index here is derived once
and then adjusted by the files an edit changed.
"""

from __future__ import annotations

import hashlib
from bisect import bisect_left, insort
from collections.abc import Iterable, Mapping

from ._globs import GlobIndex
from .errors import Problem
from .layers import Layer

_EMPTY_DEFAULTS = Layer("defaults", "defaults", "profiles/defaults.yaml", {}, b"")
OWN_KINDS = ("state", "device")


class Layout:
    """The layers of a file set by role, and an identifier of the set."""

    named: dict[tuple[str, str], tuple[str, ...]]
    defaults: Layer
    profiles: dict[str, Layer]
    own: dict[str, dict[str, Layer]]
    groups: list[Layer]
    index: GlobIndex[Layer]
    hosts: list[str]
    stamp: int
    clashes: list[tuple[str, str]]

    def __init__(
        self,
        layers: Mapping[str, Layer],
        digests: Mapping[str, bytes],
        previous: Layout | None = None,
        old_layers: Mapping[str, Layer] | None = None,
        old_digests: Mapping[str, bytes] | None = None,
        changed: Iterable[str] = (),
    ) -> None:
        if previous is None or old_layers is None or old_digests is None:
            self._derive(layers, digests)
        else:
            self._adjust(previous, layers, digests, old_layers, old_digests, changed)

    def _derive(
        self, layers: Mapping[str, Layer], digests: Mapping[str, bytes]
    ) -> None:
        self.named = {}
        self.defaults = _EMPTY_DEFAULTS
        self.profiles = {}
        self.own = {}
        groups = []
        for file in sorted(layers):
            layer = layers[file]
            key = (layer.kind, layer.name)
            self.named[key] = (*self.named.get(key, ()), file)
            if layer.kind == "group":
                groups.append(layer)
            else:
                self._place(layer)
        self._group(groups)
        self.hosts = sorted(self.own)
        self.stamp = 0
        for file, found in digests.items():
            self.stamp ^= _stamp(file, found)
        self.clashes = sorted(
            key for key, files in self.named.items() if len(files) > 1
        )

    def _adjust(
        self,
        previous: Layout,
        layers: Mapping[str, Layer],
        digests: Mapping[str, bytes],
        old_layers: Mapping[str, Layer],
        old_digests: Mapping[str, bytes],
        changed: Iterable[str],
    ) -> None:
        self.named = dict(previous.named)
        self.defaults = previous.defaults
        self.profiles = dict(previous.profiles)
        self.own = dict(previous.own)
        self.hosts = previous.hosts
        self.stamp = previous.stamp
        groups_changed = False
        touched: set[tuple[str, str]] = set()
        changed = set(changed)
        for file in changed:
            self.stamp ^= _stamp(file, old_digests.get(file))
            self.stamp ^= _stamp(file, digests.get(file))
            old, new = old_layers.get(file), layers.get(file)
            for layer in (old, new):
                if layer is not None:
                    touched.add((layer.kind, layer.name))
                    groups_changed = groups_changed or layer.kind == "group"
            if old is not None:
                self._remove(old, file)
            if new is not None:
                self._add(new, file)
        self._rehost({name for kind, name in touched if kind in OWN_KINDS})
        if groups_changed:
            kept = [g for g in previous.groups if g.file not in changed]
            added = (layers.get(f) for f in sorted(changed))
            self._group([*kept, *(la for la in added if la and la.kind == "group")])
        else:
            self.groups, self.index = previous.groups, previous.index
        self.clashes = sorted(k for k in touched if len(self.named.get(k, ())) > 1)

    def _add(self, layer: Layer, file: str) -> None:
        key = (layer.kind, layer.name)
        self.named[key] = tuple(sorted({*self.named.get(key, ()), file}))
        if layer.kind != "group":
            self._place(layer)

    def _remove(self, layer: Layer, file: str) -> None:
        key = (layer.kind, layer.name)
        files = tuple(f for f in self.named.get(key, ()) if f != file)
        if files:
            self.named[key] = files
        else:
            self.named.pop(key, None)
        if layer.kind == "defaults" and self.defaults is layer:
            self.defaults = _EMPTY_DEFAULTS
        elif layer.kind == "profile" and self.profiles.get(layer.name) is layer:
            del self.profiles[layer.name]
        elif layer.kind in OWN_KINDS:
            self._unplace(layer)

    def _place(self, layer: Layer) -> None:
        if layer.kind == "defaults":
            self.defaults = layer
        elif layer.kind == "profile":
            self.profiles[layer.name] = layer
        elif layer.kind in OWN_KINDS:
            self.own[layer.name] = {**self.own.get(layer.name, {}), layer.kind: layer}

    def _unplace(self, layer: Layer) -> None:
        slots = self.own.get(layer.name, {})
        kept = {kind: la for kind, la in slots.items() if la is not layer}
        if kept:
            self.own[layer.name] = kept
        else:
            self.own.pop(layer.name, None)

    def _rehost(self, names: set[str]) -> None:
        """Keep `hosts` sorted after devices among `names` came or went."""
        hosts = self.hosts
        for name in sorted(names):
            at = bisect_left(hosts, name)
            present = at < len(hosts) and hosts[at] == name
            if present != (name in self.own):
                hosts = list(hosts) if hosts is self.hosts else hosts
                if present:
                    del hosts[at]
                else:
                    insort(hosts, name)
        self.hosts = hosts

    def _group(self, groups: list[Layer]) -> None:
        self.groups = sorted(groups, key=lambda g: (g.priority, g.name))
        self.index = GlobIndex((g, g.match) for g in self.groups)

    @property
    def revision(self) -> str:
        return f"{self.stamp:016x}"

    def clash_problems(self) -> list[Problem]:
        """Two files that define the same layer (`Edge-01.yaml`, `edge-01.yml`)."""
        problems: list[Problem] = []
        for kind, name in self.clashes:
            first, *others = self.named[(kind, name)]
            problems.extend(
                Problem(f"defines the same {kind} layer as {first}", file=other)
                for other in others
            )
        return problems


def _stamp(file: str, found: bytes | None) -> int:
    """One file's share of the revision: the revision is their XOR, so an edit
    updates it without reading the other files' digests."""
    if found is None:
        return 0
    item = hashlib.blake2b(file.encode() + b"\0" + found, digest_size=8)
    return int.from_bytes(item.digest(), "big")
