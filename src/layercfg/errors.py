"""Exceptions raised by layercfg and the problems they carry."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a config repository, located as precisely as known."""

    message: str
    file: str | None = None
    line: int | None = None
    device: str | None = None
    json_path: str | None = None
    rule: str | None = None

    def __str__(self) -> str:
        where = self.file or ""
        if where and self.line is not None:
            where = f"{where}:{self.line}"
        parts = [p for p in (where, self.device, self.json_path) if p]
        return ": ".join([*parts, self.message])

    def to_json(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if v is not None}


class LayercfgError(Exception):
    """Root of every error layercfg raises."""


class ConfigFileError(LayercfgError, ValueError):
    """A layer file that cannot be used as written."""

    def __init__(self, file: str, line: int | None, message: str) -> None:
        self.problem = Problem(message, file=file, line=line)
        super().__init__(str(self.problem))


class RepositoryError(LayercfgError, ValueError):
    """A config repository with one or more problems; all of them are listed."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


class ResolutionError(LayercfgError, ValueError):
    """A device whose merged config cannot be served."""

    def __init__(self, device: str, problems: list[Problem]) -> None:
        self.device = device
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))
