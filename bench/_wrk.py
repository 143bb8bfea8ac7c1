"""Drive a server with wrk and read back throughput and latency."""

from __future__ import annotations

import dataclasses
import json
import resource
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from bench import _cpu
from bench._proc import HOST, BenchError

SCRIPT = Path(__file__).with_name("report.lua")
CONNECTIONS = 50
RETRY_WAIT = 5.0
INSTALL_HINT = "install it with: apt-get install wrk"


@dataclass(frozen=True)
class Load:
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int
    # Share of all CPUs that other programs used during the run.
    background: float = 0.0


def require_tools() -> None:
    """Fail with a clear message when wrk or taskset is missing."""
    if shutil.which("wrk") is None:
        raise SystemExit(f"bench: wrk is not on PATH; {INSTALL_HINT}")
    if shutil.which("taskset") is None:
        raise SystemExit("bench: taskset is not on PATH; it ships with util-linux")


def version() -> str:
    done = subprocess.run(
        ["wrk", "--version"], check=False, capture_output=True, text=True
    )
    return (done.stdout or done.stderr).split("[")[0].strip()


def run(
    port: int,
    path: str,
    seconds: int,
    server_pid: int,
    cpus: str | None = None,
    paths_file: Path | None = None,
) -> Load:
    """Run wrk with one thread and 50 connections against `path`.

    With `paths_file`, wrk cycles over the paths in it instead.
    """
    argv = ["wrk", "-t1", f"-c{CONNECTIONS}", f"-d{seconds}s", "--timeout", "5s"]
    argv += ["-s", str(SCRIPT), f"http://{HOST}:{port}{path}"]
    if paths_file is not None:
        argv += ["--", str(paths_file)]
    if cpus is not None:
        argv = ["taskset", "-c", cpus, *argv]
    start = _cpu.mark(server_pid)
    before = _children_cpu_s()
    done = subprocess.run(
        argv, check=False, capture_output=True, text=True, timeout=seconds + 60
    )
    wrk_cpu_s = _children_cpu_s() - before
    background = _cpu.background_share(start, _cpu.mark(server_pid), wrk_cpu_s)
    if done.returncode != 0:
        message = done.stderr.strip() or done.stdout.strip() or "no output"
        raise BenchError(f"wrk failed: {message.splitlines()[0]}")
    return dataclasses.replace(_parse(done.stdout), background=background)


def measure(
    port: int,
    path: str,
    seconds: int,
    server_pid: int,
    cpus: str | None = None,
    paths_file: Path | None = None,
) -> Load:
    """`run`, once more if other programs disturbed it; the quieter run wins."""
    first = run(port, path, seconds, server_pid, cpus, paths_file)
    if first.background < _cpu.QUIET_SHARE:
        return first
    _cpu.wait_for_quiet(RETRY_WAIT)
    second = run(port, path, seconds, server_pid, cpus, paths_file)
    return min(first, second, key=lambda load: load.background)


def _children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _parse(stdout: str) -> Load:
    lines = [line for line in stdout.splitlines() if line.startswith("{")]
    if not lines:
        raise BenchError(f"wrk printed no summary: {stdout.strip()[-200:]}")
    data = json.loads(lines[-1])
    errors = sum(data[key] for key in ("connect", "read", "write", "status", "timeout"))
    return Load(
        rps=data["requests"] / (data["duration_us"] / 1e6),
        p50_ms=data["p50_us"] / 1000,
        p99_ms=data["p99_us"] / 1000,
        errors=errors,
    )
