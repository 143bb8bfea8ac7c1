"""The machine and software a benchmark run happened on."""

from __future__ import annotations

import os
import platform
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

from bench import _wrk

PACKAGES = [
    "layercfg",
    "starlette",
    "uvicorn",
    "uvloop",
    "httptools",
    "orjson",
    "pyyaml",
    "jsonschema-rs",
    "watchfiles",
    "flask",
    "werkzeug",
]


def describe() -> dict[str, str]:
    """Labelled facts about this machine, for the results header."""
    return {
        "Date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "CPU": _cpu_model(),
        "Cores": str(os.cpu_count()),
        "Memory": f"{_mem_total_kib() / 1024**2:.1f} GiB",
        "Kernel": f"{platform.system()} {platform.release()}",
        "Python": platform.python_version(),
        "Packages": ", ".join(f"{name} {_version(name)}" for name in PACKAGES),
        "Load generator": _wrk.version(),
    }


def _cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def _mem_total_kib() -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1])
    return 0


def _version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "not installed"
