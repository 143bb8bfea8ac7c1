"""Groups that fail on their own, and ties that only file names would settle."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from . import merge
from ._globs import globs_overlap
from .errors import Problem, ResolutionError
from .layers import Layer
from .schema import json_path

if TYPE_CHECKING:
    from .fleet import Fleet


def group_problems(fleet: Fleet) -> list[Problem]:
    """Ties that only file names would settle, and groups invalid on their own."""
    problems = _ties(fleet._groups)
    for group in fleet._groups:
        try:
            fleet._chain(f"any host matching {group.match[0]}", [group], {})
        except ResolutionError:
            continue  # the group does not pick a device type on its own
        try:
            fleet._compute(f"any host matching {group.match[0]}", [group])
        except ResolutionError as exc:
            problems.extend(exc.problems)
    return problems


def _ties(groups: list[Layer]) -> list[Problem]:
    problems = []
    for i, first in enumerate(groups):
        for second in groups[i + 1 :]:
            if second.priority != first.priority:
                break
            clash = _first_conflict(first.data, second.data)
            if clash is None or not _can_share_a_host(first, second):
                continue
            problems.append(
                Problem(
                    f"groups {first.name!r} and {second.name!r} have the same "
                    f"priority ({first.priority}), can match the same host and set "
                    f"{json_path(clash)} to different values; give one a higher "
                    "priority",
                    file=second.file,
                    line=second.line_of(clash),
                    json_path=json_path(clash),
                    rule="group-tie",
                )
            )
    return problems


def _first_conflict(a: dict[str, Any], b: dict[str, Any]) -> tuple[str, ...] | None:
    """The first path whose value depends on which of `a` and `b` applies last."""
    left, right = merge.leaves(a), merge.leaves(b)
    for path, value in left.items():
        if path in right and not merge.same(value, right[path]):
            return path
        for other, other_value in right.items():
            if _replaces(path, value, other):
                return path
            if _replaces(other, other_value, path):
                return other
    return None


def _replaces(path: tuple[str, ...], value: Any, deeper: tuple[str, ...]) -> bool:
    """Whether setting `value` at `path` discards what a patch sets at `deeper`."""
    # an empty mapping merges into what is there: it replaces nothing below it
    return (
        not isinstance(value, dict)
        and len(deeper) > len(path)
        and deeper[: len(path)] == path
    )


def _can_share_a_host(a: Layer, b: Layer) -> bool:
    return any(globs_overlap(x, y) for x in a.match for y in b.match)
