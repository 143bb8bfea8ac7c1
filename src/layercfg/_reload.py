"""Live reload: watch the layer files and serve each valid new file set."""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Awaitable, Callable, Iterable
from pathlib import Path

import watchfiles

from .errors import RepositoryError
from .layers import ref_for

logger = logging.getLogger("layercfg")

Update = Callable[[Iterable[Path] | None], Awaitable[object]]

# How often the watcher also checks whether a layer folder itself was replaced
# (as `git checkout` or a sync tool does), which file events cannot show.
_FOLDER_CHECK_MS = 500


class Watcher:
    """Calls `update` with the layer files that changed, or None for all."""

    def __init__(self, repo: Path, state_dir: Path, update: Update) -> None:
        self.repo = repo
        self.state_dir = state_dir
        self.update = update
        self.roots = [
            repo / "profiles",
            repo / "overrides",
            repo / "schema",
            state_dir / "devices",
        ]
        self.folders = [
            *self.roots,
            repo / "overrides" / "groups",
            repo / "overrides" / "devices",
        ]

    async def run(self, stop: asyncio.Event) -> None:
        """Watch until `stop` is set; restart the watch when a folder is replaced."""
        while not stop.is_set():
            roots = [root for root in self.roots if root.is_dir()]
            try:
                await self._watch(roots, stop)
            except (OSError, RuntimeError) as exc:
                # a watched folder vanished under the watcher: start over
                logger.warning("Restarting the file watch: %s", exc)
                await self._apply(None)
                await asyncio.sleep(_FOLDER_CHECK_MS / 1000)

    async def _watch(self, roots: list[Path], stop: asyncio.Event) -> None:
        identities = self._identities()
        async for changes in watchfiles.awatch(
            *roots,
            stop_event=stop,
            rust_timeout=_FOLDER_CHECK_MS,
            yield_on_timeout=True,
            debounce=400,
            step=20,
        ):
            current = self._identities()
            if current != identities:
                logger.info("A layer folder was replaced; reading every file again")
                await self._apply(None)
                return
            files = self._layer_files(path for _, path in changes)
            if files:
                await self._apply(files)

    def _layer_files(self, paths: Iterable[str]) -> list[Path]:
        found = (Path(p) for p in paths)
        return [p for p in found if ref_for(self.repo, self.state_dir, p) is not None]

    def _identities(self) -> list[tuple[int, int] | None]:
        identities: list[tuple[int, int] | None] = []
        for folder in self.folders:
            try:
                stat = os.stat(folder)
            except OSError:
                identities.append(None)
                continue
            identities.append((stat.st_dev, stat.st_ino))
        return identities

    async def _apply(self, paths: list[Path] | None) -> None:
        try:
            await self.update(paths)
        except RepositoryError:
            pass  # logged and reported on /health by the service
        except Exception:
            # the watch must outlive any one bad load
            logger.exception("Loading the changed files failed unexpectedly")
