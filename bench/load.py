"""Load test: many loopback connections of mixed GET and PUT against a real server.

`python -m bench.load` starts `layercfg serve` on a copy of the example fleet,
registers devices with the bodies the exporter sends, then runs two wrk
processes at once for the same duration: one fetching configs, one writing
them back. It passes only with zero socket errors, zero 5xx, no status but
200, well-formed bodies, one audit entry per acknowledged write, and every
device served a config it was sent (or, for the example fleet, the very bytes
it was served before). Figures go to bench/LOAD.md; one JSON line goes to
stdout either way.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bench import _cpu
from bench._metrics import POWER_SENSOR, metric_map
from bench._proc import HOST, ROOT, BenchError, free_port, launch, stop, tail

SCRIPT = Path(__file__).with_name("mixed.lua")
OUTPUT = Path(__file__).with_name("LOAD.md")
FLEET_DIRS = ("profiles", "overrides", "schema")
# All load comes from one address; this rate is far above what it can send,
# so the rate limiter is exercised on every write but never refuses one.
WRITE_RATE = "1000000/minute"
# Devices of the example fleet fetched as they are: by file, by glob only, and
# with the capitals a hostname may carry.
READ_ONLY = (
    "edge-01",
    "Edge-02",
    "lab-orin-01",
    "lab-orin-77",
    "shelly-plug-09",
    "rack-rpi-01",
    "rpi-sensor-01",
    "nano-cam-01",
)
TIMEOUT = 10.0

SHELLY_METRICS = tuple(POWER_SENSOR)


def orin_metrics() -> list[str]:
    """Metric names a 12-core Jetson Orin reports."""
    return list(metric_map("jetson_orin"))


def device_ids(count: int) -> list[str]:
    return [f"load-{number:04d}" for number in range(1, count + 1)]


def body(device: str, variant: int) -> dict[str, Any]:
    """What the exporter on `device` sends; variant 1 has found two new metrics."""
    number = int(device.rsplit("-", 1)[1])
    shelly = number % 4 == 0
    names = list(SHELLY_METRICS if shelly else orin_metrics())
    metrics = {name: (i + number) % 5 != 0 for i, name in enumerate(names)}
    if variant:
        metrics |= {f"{names[0]}_new_{n}": False for n in range(2)}
    config: dict[str, Any] = {
        "device_type": "shelly" if shelly else "jetson_orin",
        "port": 9100,
        "reload_port": 9101,
        "metrics": metrics,
    }
    if shelly:
        config["shelly"] = {"enabled": True, "server_url": "http://localhost:8766"}
    else:
        config["jetson"] = {"use_tegrastats": True}
    return config


@dataclass
class Run:
    """What wrk measured for one method."""

    method: str
    connections: int
    requests: int = 0
    duration_us: int = 0
    bytes: int = 0
    connect: int = 0
    read: int = 0
    write: int = 0
    timeout: int = 0
    non_2xx: int = 0
    p50_us: int = 0
    p90_us: int = 0
    p99_us: int = 0
    max_us: int = 0
    statuses: dict[str, int] = field(default_factory=dict)
    bad_bodies: int = 0

    @property
    def socket_errors(self) -> int:
        return self.connect + self.read + self.write + self.timeout

    @property
    def server_errors(self) -> int:
        return sum(n for status, n in self.statuses.items() if int(status) >= 500)

    @property
    def unexpected(self) -> int:
        return sum(n for status, n in self.statuses.items() if status != "200")

    @property
    def rate(self) -> float:
        return self.requests / (self.duration_us / 1e6) if self.duration_us else 0.0


def _call(port: int, method: str, path: str, document: Any = None) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection(HOST, port, timeout=TIMEOUT)
    try:
        payload = None if document is None else json.dumps(document).encode()
        headers = {} if payload is None else {"Content-Type": "application/json"}
        conn.request(method, path, payload, headers)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def register(port: int, devices: list[str]) -> None:
    for device in devices:
        status, answer = _call(port, "PUT", f"/config/{device}", body(device, 0))
        if status != 200:
            raise BenchError(f"registering {device}: {status} {answer[:300]!r}")


def served(port: int, device: str) -> bytes:
    status, answer = _call(port, "GET", f"/config/{device}")
    if status != 200:
        raise BenchError(f"GET /config/{device}: {status} {answer[:300]!r}")
    return answer


def mismatches(port: int, devices: list[str], before: dict[str, bytes]) -> list[str]:
    """Devices not served a config they sent, or whose bytes changed."""
    found = []
    for device in devices:
        answer = served(port, device)
        if device in before:
            if answer != before[device]:
                found.append(f"{device}: served bytes changed")
        elif json.loads(answer) not in (body(device, 0), body(device, 1)):
            found.append(f"{device}: served a config it never sent")
    return found


def request_files(folder: Path, devices: list[str]) -> tuple[Path, Path]:
    """A file of GETs over every device, and one of PUTs, variants interleaved."""
    gets = folder / "get.tsv"
    puts = folder / "put.tsv"
    paths = [f"/config/{d}" for d in [*devices, *READ_ONLY]]
    gets.write_text("".join(f"GET\t{p}\t\n" for p in paths))
    lines = [
        f"PUT\t/config/{d}\t{json.dumps(body(d, v), separators=(',', ':'))}\n"
        for v in (1, 0)
        for d in devices
    ]
    puts.write_text("".join(lines))
    return gets, puts


def drive(port: int, files: dict[str, tuple[Path, int]], seconds: int) -> list[Run]:
    """Run one wrk per method, all at once; wait for every one of them."""
    started = {
        method: subprocess.Popen(
            [
                "wrk",
                "-t1",
                f"-c{connections}",
                f"-d{seconds}s",
                "--timeout",
                "5s",
                "-s",
                str(SCRIPT),
                f"http://{HOST}:{port}/",
                "--",
                str(file),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for method, (file, connections) in files.items()
    }
    runs = []
    for method, proc in started.items():
        out, err = proc.communicate(timeout=seconds + 60)
        if proc.returncode != 0:
            raise BenchError(f"wrk ({method}) failed: {err.strip() or out.strip()}")
        runs.append(_parse(method, files[method][1], out))
    return runs


def _parse(method: str, connections: int, output: str) -> Run:
    line = next((ln for ln in output.splitlines() if ln.startswith('{"requests"')), "")
    if not line:
        raise BenchError(f"wrk ({method}) printed no summary: {output.strip()}")
    return Run(method, connections, **json.loads(line))


def audit_entries(state_dir: Path) -> int:
    log = state_dir / "audit.log"
    return len(log.read_bytes().splitlines()) if log.exists() else 0


def problems(runs: list[Run], audited: int) -> list[str]:
    """Everything wrong with the run; an empty list is a pass."""
    found = []
    for run in runs:
        if run.requests == 0:
            found.append(f"{run.method}: no request completed")
        for name in ("socket_errors", "server_errors", "unexpected", "bad_bodies"):
            if getattr(run, name):
                found.append(f"{run.method}: {name} = {getattr(run, name)}")
    # A write in flight when wrk stops is stored but never counted by wrk.
    put = next(r for r in runs if r.method == "PUT")
    stored = put.statuses.get("200", 0)
    if not stored <= audited <= stored + put.connections:
        found.append(f"PUT: {stored} writes acknowledged, {audited} audited")
    return found


def settled_audit(state_dir: Path, limit: float = 10.0) -> int:
    """The audit entry count once writes still in flight have finished."""
    count = audit_entries(state_dir)
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        time.sleep(0.5)
        now = audit_entries(state_dir)
        if now == count:
            break
        count = now
    return count


@dataclass(frozen=True)
class Plan:
    """How hard to load the server, and for how long."""

    connections: int = 200
    put_connections: int = 20
    seconds: int = 30
    devices: int = 400


@dataclass
class Outcome:
    plan: Plan
    runs: list[Run]
    audited: int
    # Share of all CPUs that other programs used while wrk ran.
    background: float
    problems: list[str]

    def summary(self) -> dict[str, Any]:
        per_method = {
            run.method: {
                **asdict(run),
                "rate": round(run.rate, 1),
                "socket_errors": run.socket_errors,
                "server_errors": run.server_errors,
                "unexpected": run.unexpected,
            }
            for run in self.runs
        }
        return {
            **asdict(self.plan),
            "audited": self.audited,
            "background": round(self.background, 3),
            "passed": not self.problems,
            "problems": self.problems,
            "methods": per_method,
        }


def measure(plan: Plan, workdir: Path) -> Outcome:
    """Start a server on a copy of the example fleet, load it, check it, stop it."""
    repo = workdir / "repo"
    for name in FLEET_DIRS:
        shutil.copytree(ROOT / name, repo / name)
    port = free_port()
    log = workdir / "server.log"
    proc = launch(
        [
            sys.executable,
            "-m",
            "layercfg",
            "serve",
            "--repo",
            str(repo),
            "--host",
            HOST,
            "--port",
            str(port),
            "--allow-registration",
            "--write-rate",
            WRITE_RATE,
            "--no-access-log",
            "--log-level",
            "warning",
        ],
        log,
    )
    try:
        _wait_until_up(proc, port, log)
        return _load(port, proc.pid, repo / "state", plan, workdir)
    finally:
        stop(proc)


def _wait_until_up(proc: subprocess.Popen[bytes], port: int, log: Path) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise BenchError(f"server exited with {proc.returncode}: {tail(log)}")
        try:
            _call(port, "GET", "/health")
            return
        except OSError:
            time.sleep(0.05)
    raise BenchError(f"server did not answer within 30 s: {tail(log)}")


def _load(port: int, pid: int, state_dir: Path, plan: Plan, workdir: Path) -> Outcome:
    devices = device_ids(plan.devices)
    register(port, devices)
    before = {device: served(port, device) for device in READ_ONLY}
    found = mismatches(port, devices, before)
    gets, puts = request_files(workdir, devices)
    files = {
        "GET": (gets, plan.connections - plan.put_connections),
        "PUT": (puts, plan.put_connections),
    }
    audited = audit_entries(state_dir)
    start, wrk_before = _cpu.mark(pid), _children_cpu_s()
    runs = drive(port, files, plan.seconds)
    wrk_cpu_s = _children_cpu_s() - wrk_before
    background = _cpu.background_share(start, _cpu.mark(pid), wrk_cpu_s)
    audited = settled_audit(state_dir) - audited
    found += problems(runs, audited)
    found += mismatches(port, [*devices, *READ_ONLY], before)
    health = json.loads(_call(port, "GET", "/health")[1])
    if health["status"] != "healthy":
        found.append(f"/health: {health['status']}")
    return Outcome(plan, runs, audited, background, found)


def _children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def render(outcome: Outcome) -> str:
    """bench/LOAD.md, for a run that passed: how it was made and what it measured."""
    total = sum(r.requests for r in outcome.runs)
    rate = sum(r.rate for r in outcome.runs)
    lines = [
        "# Load test",
        "",
        "Written by `python -m bench.load`; do not edit by hand.",
        "",
        f"- Date: {time.strftime('%Y-%m-%d %H:%M %Z')}",
        (
            f"- Machine: {platform.machine()}, {os.cpu_count()} CPUs, "
            f"Python {platform.python_version()}, {_wrk_version()}"
        ),
        (
            "- Server: `layercfg serve`, one process, on the example fleet and "
            f"{outcome.plan.devices} registered devices; loopback only"
        ),
        (
            f"- Load: {outcome.plan.connections} connections for "
            f"{outcome.plan.seconds} s "
            "from two wrk processes at once: GET over every device, and PUT of "
            "whole exporter configs with their metrics maps (Jetson Orin: "
            f"{len(orin_metrics())} metrics, Shelly: {len(SHELLY_METRICS)}) "
            "back to the registered devices"
        ),
        f"- Total: {total:,} requests, {rate:,.0f} per second",
        (
            f"- Other programs used {outcome.background:.0%} of the machine's "
            "CPU time during the run"
        ),
        (
            "- Checks passed: no socket error, no 5xx, no status but 200, no "
            f"malformed body; {outcome.audited:,} writes audited for the PUTs "
            "acknowledged; every device served a config it sent, the example "
            "fleet byte for byte as before"
        ),
        "",
        *_table(outcome.runs),
    ]
    return "\n".join(lines) + "\n"


def _table(runs: list[Run]) -> list[str]:
    header = (
        "| Method | Connections | Requests | Per second | p50 ms | p90 ms | p99 ms "
        "| max ms | Statuses | Socket errors | 5xx |"
    )
    rows = [
        f"| {r.method} | {r.connections} | {r.requests:,} | {r.rate:,.0f} "
        f"| {r.p50_us / 1000:.1f} | {r.p90_us / 1000:.1f} | {r.p99_us / 1000:.1f} "
        f"| {r.max_us / 1000:.1f} | {_statuses(r)} | {r.socket_errors} "
        f"| {r.server_errors} |"
        for r in runs
    ]
    return [header, "| --- |" + " ---: |" * 7 + " --- | ---: | ---: |", *rows]


def _statuses(run: Run) -> str:
    return ", ".join(f"{s}: {n:,}" for s, n in sorted(run.statuses.items()))


def _wrk_version() -> str:
    done = subprocess.run(
        ["wrk", "--version"], capture_output=True, text=True, check=False
    )
    return (done.stdout or done.stderr).split("[")[0].strip() or "wrk"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bench.load", description=__doc__.splitlines()[0]
    )
    default = Plan()
    parser.add_argument(
        "--connections",
        type=int,
        default=default.connections,
        help="Connections open at once, both methods (default: %(default)s).",
    )
    parser.add_argument(
        "--put-connections",
        type=int,
        default=default.put_connections,
        help="How many of them send PUTs (default: %(default)s).",
    )
    parser.add_argument(
        "--seconds",
        type=int,
        default=default.seconds,
        help="Duration of the load (default: %(default)s).",
    )
    parser.add_argument(
        "--devices",
        type=int,
        default=default.devices,
        help="Devices registered and written to (default: %(default)s).",
    )
    parser.add_argument(
        "--quiet-wait",
        metavar="SECONDS",
        type=float,
        default=60,
        help="Wait this long at most for other programs to idle (default: "
        "%(default)s).",
    )
    parser.add_argument(
        "--output",
        type=Path,
        default=OUTPUT,
        help="Results file, written when the run passes (default: bench/LOAD.md).",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if not 0 < args.put_connections < args.connections:
        parser.error("--put-connections: expected at least 1 and fewer than all")
    if shutil.which("wrk") is None:
        raise SystemExit("bench.load: wrk is not on PATH; apt-get install wrk")
    plan = Plan(args.connections, args.put_connections, args.seconds, args.devices)
    _cpu.wait_for_quiet(args.quiet_wait)
    with tempfile.TemporaryDirectory(prefix="layercfg-load-") as tmp:
        outcome = measure(plan, Path(tmp))
    print(json.dumps(outcome.summary()))
    if outcome.problems:
        return 1
    args.output.write_text(render(outcome))
    return 0


if __name__ == "__main__":
    sys.exit(main())
