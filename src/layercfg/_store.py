"""The state directory on disk: device state files, their locks and the audit log.

Every function here blocks; the server calls them through `asyncio.to_thread`.
"""

from __future__ import annotations

import fcntl
import os
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

AUDIT_LOG = "audit.log"
# The longest device name whose files fit in 255 bytes: the temporary file
# `.NAME.json.XXXXXXXX.tmp` is 19 bytes longer than the name.
MAX_NAME = 236


def state_path(state_dir: Path, name: str) -> Path:
    return state_dir / "devices" / f"{name}.json"


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def lock(state_dir: Path, name: str) -> int:
    """Hold the device's lock file until `unlock`; waits for other processes.

    The lock file's name starts with '.', so the layer scanner ignores it. It
    is never removed: a process waiting on a removed file would lock nothing.
    """
    folder = _devices_dir(state_dir)
    fd = os.open(folder / f".{name}.lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
    except BaseException:
        os.close(fd)
        raise
    return fd


def unlock(fd: int) -> None:
    os.close(fd)  # closing the only descriptor releases the lock


def read(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return None


def state_document(config: dict[str, Any], written_at: str) -> bytes:
    document = {"written_at": written_at, "config": config}
    return orjson.dumps(document, option=orjson.OPT_INDENT_2) + b"\n"


def replace(path: Path, content: bytes | None) -> None:
    """Make `path` hold `content` (None: not exist), atomically and durably.

    The new bytes go to a temporary file beside `path` that is flushed to disk
    before it takes the place of the old file; the directory is flushed too,
    so after a crash `path` is either wholly old or wholly new.
    """
    if content is None:
        path.unlink(missing_ok=True)
        _sync_dir(path.parent)
        return
    fd, temporary = tempfile.mkstemp(
        dir=path.parent, prefix=f".{path.name}.", suffix=".tmp"
    )
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(content)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(temporary, 0o644)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    _sync_dir(path.parent)


def append_audit(state_dir: Path, entry: dict[str, Any]) -> None:
    """Append one JSON line to the audit log in a single write, then flush it.

    O_APPEND puts each write at the end of the file; the lock keeps writers in
    other processes from interleaving with a write the kernel splits.
    """
    path = state_dir / AUDIT_LOG
    created = not path.exists()
    line = orjson.dumps(entry) + b"\n"
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        written = os.write(fd, line)
        if written != len(line):
            raise OSError(f"wrote {written} of {len(line)} bytes to {path}")
        os.fsync(fd)
    finally:
        os.close(fd)
    if created:
        _sync_dir(state_dir)


def _devices_dir(state_dir: Path) -> Path:
    folder = state_dir / "devices"
    if not folder.is_dir():
        folder.mkdir(parents=True, exist_ok=True)
        _sync_dir(state_dir)
    return folder


def _sync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
