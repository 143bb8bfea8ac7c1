"""What a server process serves: the current fleet, its counters, its updates."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from ._auth import DEVICE_WRITABLE
from ._metrics import Metrics
from .errors import RepositoryError
from .fleet import Fleet

logger = logging.getLogger("layercfg")

T = TypeVar("T")
Loader = Callable[[Iterable[Path] | None], Fleet]
Future = asyncio.Future[Any]


@dataclass(frozen=True)
class Options:
    """What a server process needs to know; passed to worker processes as JSON."""

    repo: str = "."
    state_dir: str | None = None
    log_level: str = "info"
    allow_registration: bool = False
    token_file: str | None = None
    device_writable: tuple[str, ...] = DEVICE_WRITABLE
    write_rate: str = "20/minute"
    max_body_bytes: int = 65_536


class Service:
    """The fleet being served, and the counters about serving it.

    `fleet` is replaced in one assignment, so a request sees either the old
    revision or the new one, never a mix.
    """

    def __init__(self, fleet: Fleet, options: Options) -> None:
        self.fleet = fleet
        self.options = options
        self.metrics = Metrics()
        self.problems: list[dict[str, Any]] = []
        self._pending: set[Path] = set()
        self._queue: list[tuple[Callable[[Loader], Any], Future]] = []
        self._drainer: asyncio.Task[None] | None = None
        self._publish(fleet)

    def _publish(self, fleet: Fleet) -> None:
        self.metrics.devices.set(fleet.device_count)
        self.metrics.revision.info({"revision": fleet.revision})

    async def update(self, paths: Iterable[Path] | None = None) -> Fleet:
        """Load the changed files (every file when None) and serve the result.

        Raises RepositoryError, and keeps serving the current revision, when
        the new file set is invalid; files that failed are read again on the
        next update, so fixing them is enough to recover.
        """
        return await self.transact(lambda load: load(paths))

    async def transact(self, work: Callable[[Loader], T]) -> T:
        """Run `work` in a worker thread, after every update queued before it.

        `work` gets a `load(paths)` that reloads the fleet loaded last (the
        served one at first); whatever was loaded last is served afterwards,
        even when `work` then raises. Updates queued while one batch runs go
        together in the next, in one thread hop: under heavy read traffic each
        hop waits for a turn of the event loop, so writes one hop at a time
        would crawl.
        """
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._queue.append((work, future))
        if self._drainer is None or self._drainer.done():
            self._drainer = asyncio.create_task(self._drain())
        result: T = await future
        return result

    async def _drain(self) -> None:
        while self._queue:
            batch, self._queue = self._queue, []
            await self._run(batch)

    async def _run(self, batch: list[tuple[Callable[[Loader], Any], Future]]) -> None:
        served = self.fleet
        latest = [served]

        def load(paths: Iterable[Path] | None) -> Fleet:
            latest[0] = self._load(latest[0], paths)
            return latest[0]

        def run() -> list[tuple[bool, Any]]:
            outcomes: list[tuple[bool, Any]] = []
            for work, _ in batch:
                try:
                    outcomes.append((True, work(load)))
                except Exception as exc:  # handed to the waiting request
                    outcomes.append((False, exc))
            return outcomes

        try:
            outcomes = await asyncio.to_thread(run)
        finally:
            if latest[0] is not served:
                self._serve(served, latest[0])
        for (_, future), (ok, value) in zip(batch, outcomes, strict=True):
            if future.done():
                continue  # its request went away
            if ok:
                future.set_result(value)
            else:
                future.set_exception(value)

    def _load(self, current: Fleet, paths: Iterable[Path] | None) -> Fleet:
        wanted = None if paths is None else self._pending | set(paths)
        try:
            fleet = current.reload(wanted)
        except RepositoryError as exc:
            if wanted is not None:
                self._pending = wanted
            self.problems = [p.to_json() for p in exc.problems]
            self.metrics.reloads.labels("failed").inc()
            logger.error(
                "Kept revision %s: the changed files have %d problem(s):\n%s",
                current.revision,
                len(exc.problems),
                exc,
            )
            raise
        self._pending = set()
        self.problems = []
        self.metrics.reloads.labels("loaded").inc()
        return fleet

    def _serve(self, served: Fleet, fleet: Fleet) -> None:
        self.fleet = fleet
        self._publish(fleet)
        if fleet.revision != served.revision:
            logger.info(
                "Loaded revision %s with %d devices",
                fleet.revision,
                fleet.device_count,
            )
