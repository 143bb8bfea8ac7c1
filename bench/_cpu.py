"""CPU time used by other programs while a measurement runs."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

from bench._proc import descendants

TICK = os.sysconf("SC_CLK_TCK")
QUIET_SHARE = 0.1


def machine_busy_s() -> float:
    """Seconds of CPU time spent, on all CPUs, since boot."""
    fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    ticks = [int(value) for value in fields[:8]]
    idle = ticks[3] + ticks[4]
    return (sum(ticks) - idle) / TICK


def tree_cpu_s(pid: int) -> float:
    """CPU seconds used so far by `pid` and its live descendants."""
    total = 0
    for member in [pid, *descendants(pid)]:
        try:
            stat = Path(f"/proc/{member}/stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])
    return total / TICK


@dataclass(frozen=True)
class Mark:
    wall: float
    busy: float
    ours: float


def mark(pid: int) -> Mark:
    return Mark(time.monotonic(), machine_busy_s(), tree_cpu_s(pid))


def background_share(start: Mark, end: Mark, extra_cpu_s: float) -> float:
    """Share of the machine's CPUs used by others between two marks.

    `extra_cpu_s` is our own CPU time not seen in the server's tree (wrk).
    """
    ours = end.ours - start.ours + extra_cpu_s
    others = end.busy - start.busy - ours
    capacity = (end.wall - start.wall) * (os.cpu_count() or 1)
    return max(others, 0.0) / capacity


def wait_for_quiet(limit_s: float) -> float:
    """Wait up to `limit_s` for the machine to idle; return its last busy share."""
    deadline = time.monotonic() + limit_s
    while True:
        share = _busy_share(1.0)
        if share < QUIET_SHARE or time.monotonic() >= deadline:
            return share


def _busy_share(seconds: float) -> float:
    before = machine_busy_s()
    time.sleep(seconds)
    return (machine_busy_s() - before) / (seconds * (os.cpu_count() or 1))
