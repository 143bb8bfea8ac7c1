"""layercfg against a bare Starlette app and the spec's Flask example, interleaved."""

from __future__ import annotations

import json
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from bench import _cpu, _proc, _wrk
from bench._proc import BenchError, Reply

SERVER_CPU = "0"
WRK_CPU = "1"
PINNED = "1 worker, pinned"
UNPINNED = "2 workers, unpinned"
START_TIMEOUT = 60.0
QUIET_WAIT = 10.0


@dataclass(frozen=True)
class Contender:
    key: str
    label: str
    setup: str
    argv: Callable[[int], list[str]]
    exact: bool
    env: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Round:
    load: _wrk.Load | None
    error: str | None = None


@dataclass(frozen=True)
class Summary:
    contender: Contender
    rounds: list[Round]

    def ok(self) -> list[_wrk.Load]:
        return [r.load for r in self.rounds if r.load is not None]

    def median(self, metric: str) -> float | None:
        values = [getattr(load, metric) for load in self.ok()]
        return statistics.median(values) if values else None


@dataclass(frozen=True)
class Plan:
    repo: Path
    device: str
    body: bytes
    out: Path
    rounds: int
    seconds: int
    warmup: int


def contenders(plan: Plan) -> list[Contender]:
    """Every server and setup compared, in the order of the results table."""
    state = plan.out / "state"
    state.mkdir(parents=True, exist_ok=True)
    body_file = plan.out / "body.json"
    body_file.write_bytes(plan.body)

    def layercfg(workers: int, quiet: bool) -> Callable[[int], list[str]]:
        return lambda port: layercfg_argv(plan.repo, port, workers, quiet, state)

    def bare(workers: int) -> Callable[[int], list[str]]:
        return lambda port: _bare_argv(port, workers)

    def flask(port: int) -> list[str]:
        return _flask_argv(port, plan.device, body_file)

    env = {"BENCH_BODY_FILE": str(body_file)}
    return [
        Contender("layercfg", "layercfg", PINNED, layercfg(1, True), True),
        Contender("bare", "bare Starlette", PINNED, bare(1), True, env),
        Contender("flask", "Flask example", PINNED, flask, False),
        Contender(
            "layercfg-log",
            "layercfg, default logging",
            PINNED,
            layercfg(1, False),
            True,
        ),
        Contender("layercfg-2w", "layercfg", UNPINNED, layercfg(2, True), True),
        Contender("bare-2w", "bare Starlette", UNPINNED, bare(2), True, env),
        Contender("flask-2w", "Flask example", UNPINNED, flask, False),
    ]


def layercfg_argv(
    repo: Path, port: int, workers: int, quiet: bool, state: Path
) -> list[str]:
    argv = _command(
        "layercfg",
        "serve",
        repo=repo,
        host=_proc.HOST,
        port=port,
        workers=workers,
        state_dir=state,
    )
    return argv + ["--no-access-log"] if quiet else argv


def _bare_argv(port: int, workers: int) -> list[str]:
    argv = _command(
        "uvicorn", "bench.apps.bare:app", host=_proc.HOST, port=port, workers=workers
    )
    return argv + ["--no-access-log"]


def _flask_argv(port: int, device: str, body_file: Path) -> list[str]:
    return _command(
        "bench.apps.flask_example", port=port, device=device, body=body_file
    )


def _command(module: str, *args: str, **options: object) -> list[str]:
    """`python -m module args --option value...`, underscores in names as dashes."""
    argv = [sys.executable, "-m", module, *args]
    for name, value in options.items():
        argv += ["--" + name.replace("_", "-"), str(value)]
    return argv


def run(plan: Plan, progress: Callable[[str], None]) -> list[Summary]:
    """Run every contender once per round, rotating the order between rounds."""
    entries = contenders(plan)
    rounds: dict[str, list[Round]] = {c.key: [] for c in entries}
    for number in range(plan.rounds):
        shift = number % len(entries)
        for contender in entries[shift:] + entries[:shift]:
            result = _one_round(plan, contender, number)
            rounds[contender.key].append(result)
            progress(_describe(number, plan.rounds, contender, result))
    return [Summary(c, rounds[c.key]) for c in entries]


def _one_round(plan: Plan, contender: Contender, number: int) -> Round:
    pinned = contender.setup == PINNED
    port = _proc.free_port()
    path = f"/config/{plan.device}"
    log = plan.out / "logs" / f"{contender.key}-{number + 1}.log"
    _cpu.wait_for_quiet(QUIET_WAIT)
    started = time.monotonic()
    proc = _proc.launch(
        contender.argv(port), log, SERVER_CPU if pinned else None, contender.env
    )
    wrk_cpu = WRK_CPU if pinned else None
    try:
        _proc.wait_for_200(proc, port, path, started, START_TIMEOUT, log)
        verify(contender, plan, _proc.request(port, path), "before the load")
        _wrk.run(port, path, plan.warmup, proc.pid, wrk_cpu)
        load = _wrk.measure(port, path, plan.seconds, proc.pid, wrk_cpu)
        verify(contender, plan, _proc.request(port, path), "after the load")
        return Round(load)
    except (BenchError, OSError, ValueError) as exc:
        return Round(None, str(exc))
    finally:
        _proc.stop(proc)


def verify(contender: Contender, plan: Plan, reply: Reply, when: str) -> None:
    """Raise unless the reply is the device's config: same bytes, or same JSON."""
    problem = _problem(contender, plan.body, reply)
    if problem:
        raise BenchError(f"wrong answer {when}: {problem}")


def _problem(contender: Contender, body: bytes, reply: Reply) -> str | None:
    if reply.status != 200:
        return f"status {reply.status}"
    if not reply.content_type.startswith("application/json"):
        return f"content type {reply.content_type!r}"
    if contender.exact and reply.body != body:
        return f"body {reply.body[:80]!r}... differs from the engine's"
    if json.loads(reply.body) != json.loads(body):
        return "JSON differs from the engine's"
    return None


def _describe(number: int, total: int, contender: Contender, result: Round) -> str:
    head = f"round {number + 1}/{total} {contender.label} ({contender.setup}):"
    if result.load is None:
        return f"{head} failed: {result.error}"
    load = result.load
    return (
        f"{head} {load.rps:,.0f} req/s, p50 {load.p50_ms:.2f} ms, "
        f"p99 {load.p99_ms:.2f} ms, {load.errors} errors, "
        f"others used {load.background:.0%} of the CPUs"
    )
