"""Shell-style hostname globs: fast lookup of the groups a name matches, and
whether two globs can ever match the same name."""

from __future__ import annotations

import fnmatch
import re
from bisect import bisect_left
from collections.abc import Callable, Iterable, Sequence
from functools import cache, lru_cache
from typing import Generic, TypeVar

T = TypeVar("T")

_WILDCARDS = re.compile(r"[*?\[]")


def literal_prefix(pattern: str) -> str:
    """The part of `pattern` before its first wildcard."""
    found = _WILDCARDS.search(pattern)
    return pattern if found is None else pattern[: found.start()]


class GlobIndex(Generic[T]):
    """Finds the items whose globs match a name without trying every glob.

    Globs are bucketed by their literal prefix, so a lookup costs one dict
    probe per distinct prefix length plus a match of the few candidates.
    """

    def __init__(self, items: Iterable[tuple[T, Sequence[str]]]) -> None:
        self._buckets: dict[str, list[tuple[Callable[[str], object], int, T]]] = {}
        for rank, (item, patterns) in enumerate(items):
            for pattern in patterns:
                match = re.compile(fnmatch.translate(pattern)).match
                bucket = self._buckets.setdefault(literal_prefix(pattern), [])
                bucket.append((match, rank, item))
        self._lengths = sorted({len(prefix) for prefix in self._buckets})

    def matches(self, name: str) -> list[T]:
        """Items with a glob matching `name`, each once, in insertion order."""
        found: dict[int, T] = {}
        for length in self._lengths:
            if length > len(name):
                break
            for match, rank, item in self._buckets.get(name[:length], ()):
                if rank not in found and match(name):
                    found[rank] = item
        # buckets are visited by prefix length, which says nothing about order
        return [found[rank] for rank in sorted(found)]


def names_matching(pattern: str, sorted_names: Sequence[str]) -> list[str]:
    """The names in `sorted_names` that `pattern` matches, found by prefix."""
    prefix = literal_prefix(pattern)
    start = bisect_left(sorted_names, prefix)
    found = []
    for name in sorted_names[start:]:
        if not name.startswith(prefix):
            break
        if fnmatch.fnmatchcase(name, pattern):
            found.append(name)
    return found


# A glob compiled to tokens: None is `*`, a (negated, characters) pair is one
# character drawn from a set (`?` is the empty negated set).
_Token = tuple[bool, frozenset[str]] | None


def _tokens(pattern: str) -> tuple[_Token, ...]:
    tokens: list[_Token] = []
    i = 0
    while i < len(pattern):
        char = pattern[i]
        i += 1
        if char == "*":
            if not tokens or tokens[-1] is not None:
                tokens.append(None)
        elif char == "?":
            tokens.append((True, frozenset()))
        elif char == "[" and "]" in pattern[i + 1 :]:
            end = pattern.index("]", i + 1)
            tokens.append(_char_set(pattern[i:end]))
            i = end + 1
        else:
            tokens.append((False, frozenset(char)))
    return tuple(tokens)


def _char_set(body: str) -> tuple[bool, frozenset[str]]:
    negated = body[:1] in ("!", "^")
    body = body[1:] if negated else body
    chars: set[str] = set()
    i = 0
    while i < len(body):
        if i + 2 < len(body) and body[i + 1] == "-":
            chars.update(chr(c) for c in range(ord(body[i]), ord(body[i + 2]) + 1))
            i += 3
        else:
            chars.add(body[i])
            i += 1
    return negated, frozenset(chars)


def _chars_meet(a: tuple[bool, frozenset[str]], b: tuple[bool, frozenset[str]]) -> bool:
    (a_neg, a_set), (b_neg, b_set) = a, b
    if a_neg and b_neg:
        return True
    if a_neg:
        return bool(b_set - a_set)
    if b_neg:
        return bool(a_set - b_set)
    return bool(a_set & b_set)


@lru_cache(maxsize=4096)
def globs_overlap(a: str, b: str) -> bool:
    """Whether some name matches both globs."""
    left, right = _tokens(a), _tokens(b)

    @cache
    def meet(i: int, j: int) -> bool:
        left_done, right_done = i == len(left), j == len(right)
        if left_done and right_done:
            return True
        x = None if left_done else left[i]
        y = None if right_done else right[j]
        if not left_done and x is None:
            # the star matches nothing, or one more character of the other side
            return meet(i + 1, j) or (not right_done and meet(i, j + 1))
        if not right_done and y is None:
            return meet(i, j + 1) or (not left_done and meet(i + 1, j))
        if x is None or y is None:
            return False
        return _chars_meet(x, y) and meet(i + 1, j + 1)

    return meet(0, 0)
