"""Start, probe and stop server processes on loopback."""

from __future__ import annotations

import http.client
import os
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

HOST = "127.0.0.1"
ROOT = Path(__file__).resolve().parent.parent


class BenchError(RuntimeError):
    """A measurement could not be taken; the message says why."""


@dataclass(frozen=True)
class Reply:
    status: int
    body: bytes
    content_type: str


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def launch(
    argv: list[str],
    log: Path,
    cpus: str | None = None,
    env: dict[str, str] | None = None,
) -> subprocess.Popen[bytes]:
    """Start a server with its output in `log`, pinned to `cpus` if given."""
    if cpus is not None:
        argv = ["taskset", "-c", cpus, *argv]
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("wb") as out:
        return subprocess.Popen(
            argv,
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env={**os.environ, **(env or {})},
        )


def descendants(pid: int) -> list[int]:
    """All live descendants of `pid`, read from /proc."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            parent = _ppid(entry)
            if parent is not None:
                children.setdefault(parent, []).append(int(entry.name))
    found: list[int] = []
    pending = [pid]
    while pending:
        kids = children.get(pending.pop(), [])
        found.extend(kids)
        pending.extend(kids)
    return found


def _ppid(proc_dir: Path) -> int | None:
    try:
        stat = (proc_dir / "stat").read_text()
    except OSError:
        return None
    return int(stat.rsplit(")", 1)[1].split()[1])


def stop(proc: subprocess.Popen[bytes], timeout: float = 10.0) -> None:
    """Terminate the server and its workers by PID, killing what lingers."""
    family = descendants(proc.pid)
    if proc.poll() is None:
        proc.terminate()
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout)
    for pid in family:
        _kill_if_alive(pid)


def _kill_if_alive(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def peak_rss_mib(pid: int) -> float:
    """Sum of VmHWM over the process and its descendants, in MiB."""
    total_kib = 0
    for member in [pid, *descendants(pid)]:
        total_kib += _status_kib(member, "VmHWM")
    return total_kib / 1024


def _status_kib(pid: int, field: str) -> int:
    try:
        lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    except OSError:
        return 0
    for line in lines:
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def request(port: int, path: str, method: str = "GET", timeout: float = 5.0) -> Reply:
    conn = http.client.HTTPConnection(HOST, port, timeout=timeout)
    try:
        conn.request(method, path)
        resp = conn.getresponse()
        return Reply(resp.status, resp.read(), resp.getheader("content-type", ""))
    except http.client.HTTPException as exc:
        raise BenchError(f"{method} {path}: bad HTTP answer: {exc!r}") from exc
    finally:
        conn.close()


def wait_for_200(
    proc: subprocess.Popen[bytes],
    port: int,
    path: str,
    started: float,
    timeout: float,
    log: Path,
) -> float:
    """Poll `path` until it answers 200; return the seconds since `started`."""
    deadline = started + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise BenchError(f"server exited with {proc.returncode}: {tail(log)}")
        if _answers_200(port, path):
            return time.monotonic() - started
        time.sleep(0.01)
    raise BenchError(f"no 200 from {path} within {timeout:.0f} s: {tail(log)}")


def _answers_200(port: int, path: str) -> bool:
    try:
        return request(port, path, timeout=2.0).status == 200
    except OSError:
        return False


def tail(log: Path, lines: int = 2) -> str:
    try:
        text = log.read_text(errors="replace").strip().splitlines()
    except OSError:
        return "(no log)"
    return " | ".join(text[-lines:]) or "(empty log)"
