"""Render a benchmark run as bench/RESULTS.md."""

from __future__ import annotations

import re
import statistics
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bench import _wrk, compare, resolve, scale
from bench.compare import Summary
from bench.genfleet import EDIT_METRIC, EDIT_PROFILE, GENERIC_SHARE, TYPE_MIX

# Directories in error text: results name files, never where they sit here.
DIRECTORIES = re.compile(r"(?:/[\w.+-]+)+/")
TARGET_BARE = 0.9
BUSY_NOTE = 0.1
TARGET_P99_MS = 2.0
TARGET_FLASK = 10.0
TARGET_COLD_S = 10.0
TARGET_RSS_MB = 500.0
TARGET_EDIT_S = 1.0


@dataclass(frozen=True)
class Run:
    machine: dict[str, str]
    command: str
    http: compare.Plan | None
    summaries: list[Summary]
    example: resolve.Resolution | None
    scale_plan: scale.Plan | None
    scale: scale.Result | None


def render(run: Run) -> str:
    parts = [
        _intro(run),
        _table(["", ""], list(run.machine.items()), "Machine"),
        _headline(run),
        _http(run),
        _scale(run),
        _resolution(run),
    ]
    return "\n".join(part for part in parts if part)


def _intro(run: Run) -> str:
    return (
        "# Benchmark results\n\n"
        f"Produced by `{run.command}` on {run.machine['Date']}; `make bench` runs "
        "the full suite. It needs wrk: `apt-get install wrk`. "
        "[README.md](README.md) describes the method.\n"
    )


def _table(header: list[str], rows: list[Any], title: str = "") -> str:
    lines = [f"## {title}\n"] if title else []
    lines.append("| " + " | ".join(header) + " |")
    lines.append("|" + "|".join("---" for _ in header) + "|")
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def _summary(run: Run, key: str) -> Summary | None:
    return next((s for s in run.summaries if s.contender.key == key), None)


def _median(run: Run, key: str, metric: str) -> float | None:
    found = _summary(run, key)
    return found.median(metric) if found else None


def _ratio(run: Run, top: str, bottom: str) -> float | None:
    a, b = _median(run, top, "rps"), _median(run, bottom, "rps")
    return a / b if a is not None and b else None


# Headline


def _headline(run: Run) -> str:
    rows = _http_targets(run) + _scale_targets(run) + _extra_ratios(run)
    return _table(["Measure", "Result", "Target", ""], rows, "Headline")


def _http_targets(run: Run) -> list[list[str]]:
    if run.http is None:
        return []
    bare = _ratio(run, "layercfg", "bare")
    p99 = _median(run, "layercfg", "p99_ms")
    bare_p99 = _median(run, "bare", "p99_ms")
    flask = _ratio(run, "layercfg", "flask")
    return [
        _target(
            "layercfg / bare Starlette, req/s (1 worker)",
            bare,
            _x,
            f">= {TARGET_BARE}x",
            lambda v: v >= TARGET_BARE,
        ),
        _target(
            "layercfg p99 at 50 connections (1 worker)",
            p99,
            lambda v: f"{_ms(v)} (bare Starlette: {_ms(bare_p99)})",
            f"< {TARGET_P99_MS:g} ms",
            lambda v: v < TARGET_P99_MS,
        ),
        _target(
            "layercfg / Flask example, req/s (1 worker)",
            flask,
            _x,
            f">= {TARGET_FLASK:g}x",
            lambda v: v >= TARGET_FLASK,
        ),
    ]


def _scale_targets(run: Run) -> list[list[str]]:
    if run.scale is None or run.scale_plan is None:
        return []
    res, n = run.scale, f"{run.scale_plan.devices:,} devices"
    edit = max(res.device_edits.seconds) if res.device_edits.seconds else None
    rss = res.rss_peak_mib * 1.048576 if res.rss_peak_mib else None
    return [
        _target(
            f"{n}: cold start to first 200",
            res.cold_start_s,
            _s,
            f"< {TARGET_COLD_S:g} s",
            lambda v: v < TARGET_COLD_S,
        ),
        _target(
            f"{n}: peak RSS",
            rss,
            _mb,
            f"< {TARGET_RSS_MB:g} MB",
            lambda v: v < TARGET_RSS_MB,
        ),
        _target(
            f"{n}: one device edit served (slowest edit)",
            edit,
            _s,
            f"< {TARGET_EDIT_S:g} s",
            lambda v: v < TARGET_EDIT_S,
            res.device_edits.error,
        ),
    ]


def _extra_ratios(run: Run) -> list[list[str]]:
    if run.http is None:
        return []
    rows = [
        ("layercfg / bare Starlette, req/s (2 workers)", "layercfg-2w", "bare-2w"),
        ("layercfg / Flask example, req/s (2 workers)", "layercfg-2w", "flask-2w"),
        (
            "layercfg default logging / access log off, req/s",
            "layercfg-log",
            "layercfg",
        ),
    ]
    return [[label, _x(_ratio(run, a, b)), "", ""] for label, a, b in rows]


def _target(
    label: str,
    value: float | None,
    show: Callable[[float | None], str],
    goal: str,
    met: Callable[[float], bool],
    error: str | None = None,
) -> list[str]:
    if value is None or error:
        reason = f": {_clean(error)}" if error else ""
        return [label, f"unavailable{reason}", goal, "FAILED"]
    return [label, show(value), goal, "met" if met(value) else "MISSED"]


def _clean(text: str) -> str:
    return " ".join(DIRECTORIES.sub("", text).split())


def _x(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}x"


def _ms(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f} ms"


def _s(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f} s"


def _mb(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.0f} MB"


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


def _share(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.0%}"


def _num(value: float | None, digits: int = 0) -> str:
    return "n/a" if value is None else f"{value:,.{digits}f}"


# HTTP comparison


def _http(run: Run) -> str:
    plan = run.http
    if plan is None:
        return ""
    intro = (
        f"## HTTP: `GET /config/{plan.device}` on the example fleet\n\n"
        f"The served body is {len(plan.body)} bytes. wrk: 1 thread, "
        f"{_wrk.CONNECTIONS} connections, {plan.seconds} s after a "
        f"{plan.warmup} s warm-up; {_plural(plan.rounds, 'round')}, the servers "
        "interleaved (the order rotates each round). Medians over the rounds.\n"
    )
    rows = [_http_row(s) for s in run.summaries]
    header = ["Server", "Setup", "req/s", "p50", "p99", "wrk errors", "others' CPU"]
    header.append("rounds ok")
    table = _table(header, rows)
    parts = [intro, table, _busy_note(run), _rounds_table(run), _failures(run)]
    return "\n".join(part for part in parts if part)


def _busy_note(run: Run) -> str:
    shares = [load.background for s in run.summaries for load in s.ok()]
    if not shares or max(shares) < BUSY_NOTE:
        return ""
    return (
        f"Other programs used up to {max(shares):.0%} of the CPUs during some "
        f"rounds (median {statistics.median(shares):.0%}); those rounds read low.\n"
    )


def _http_row(summary: Summary) -> list[str]:
    c = summary.contender
    loads = summary.ok()
    return [
        c.label,
        c.setup,
        _num(summary.median("rps")),
        _ms(summary.median("p50_ms")),
        _ms(summary.median("p99_ms")),
        str(sum(load.errors for load in loads)),
        _share(summary.median("background")),
        f"{len(loads)}/{len(summary.rounds)}",
    ]


def _rounds_table(run: Run) -> str:
    count = max((len(s.rounds) for s in run.summaries), default=0)
    header = ["Server", "Setup"] + [f"round {i + 1} req/s" for i in range(count)]
    rows = [
        [s.contender.label, s.contender.setup] + [_round_cell(r) for r in s.rounds]
        for s in run.summaries
    ]
    intro = "Each round, with the share of the CPUs other programs used:\n\n"
    return intro + _table(header, rows)


def _round_cell(result: compare.Round) -> str:
    if result.load is None:
        return "failed"
    return f"{result.load.rps:,.0f} ({result.load.background:.0%})"


def _failures(run: Run) -> str:
    lines = [
        f"- {s.contender.label} ({s.contender.setup}), round {i + 1}: "
        + _clean(r.error)
        for s in run.summaries
        for i, r in enumerate(s.rounds)
        if r.error
    ]
    return "Failed rounds:\n\n" + "\n".join(lines) + "\n" if lines else ""


# Scale


def _scale(run: Run) -> str:
    res, plan = run.scale, run.scale_plan
    if res is None or plan is None:
        return ""
    return "\n".join(
        [
            f"## Scale: a synthetic fleet of {plan.devices:,} devices\n",
            _fleet_text(res.stats, plan),
            _table(["Measure", "Result"], _scale_rows(res, plan)),
            _scale_errors(res),
        ]
    )


def _fleet_text(stats: dict[str, Any], plan: scale.Plan) -> str:
    if not stats:
        return ""
    command = (
        f"Generated by `python -m bench.genfleet OUT --devices {plan.devices} "
        f"--groups {plan.groups} --seed {plan.seed}` (deterministic).\n\n"
    )
    bullets = [_types_line(stats), _groups_line(stats), _files_line(stats)]
    metrics = ", ".join(f"{k} {v}" for k, v in stats["profile_metrics"].items() if v)
    bullets.append(f"Profile metrics maps: {metrics} entries.")
    return command + "".join(f"- {bullet}\n" for bullet in bullets)


def _shares(counts: dict[str, int], total: int, by_count: bool = False) -> str:
    items = sorted(counts.items(), key=lambda kv: -kv[1] if by_count else kv[0])
    return ", ".join(f"{key}: {count / total:.0%}" for key, count in items)


def _types_line(stats: dict[str, Any]) -> str:
    order = {name: i for i, (name, _, _) in enumerate(TYPE_MIX)}
    types = dict(sorted(stats["types"].items(), key=lambda kv: order[kv[0]]))
    shares = ", ".join(f"{k} {v / stats['devices']:.0%}" for k, v in types.items())
    return (
        f"Device types: {shares}. Hostnames are `siteNNN-<kind>-NNNN`; "
        f"{GENERIC_SHARE:.0%} are `siteNNN-node-NNNN` and set device_type in "
        "their own file, the rest get it from a group."
    )


def _groups_line(stats: dict[str, Any]) -> str:
    matched = _shares(stats["groups_per_device"], stats["devices"])
    return (
        f"{stats['groups']} groups: 8 type groups (`site???-rpi-*`, priority 10), "
        "one per site (`site042-*`, sets interval), and site-and-kind groups "
        "(`site042-orin-*`, priority 20: metric toggles, the site's Shelly bridge "
        f"URL, tegrastats or INA260 settings); {stats['list_groups']} of these "
        f"match a list of two globs. Groups matched per device: {matched}."
    )


def _files_line(stats: dict[str, Any]) -> str:
    n = stats["devices"]
    size = stats.get("mean_device_file_bytes", 0)
    return (
        f"Every device has an override file, {size:.0f} bytes on average. "
        f"Keys per file: {_shares(stats['keys_per_file'], n)}. Files setting "
        f"each key: {_shares(stats['key_use'], n, by_count=True)}. Each Shelly "
        "plug carries its own `shelly.host`."
    )


def _scale_rows(res: scale.Result, plan: scale.Plan) -> list[list[str]]:
    load = _median_load(res.loads)
    r = res.resolution
    return [
        ["Generate and write the repo", _s(res.generate_s)],
        ["`load_fleet` in-process", _s(r.load_s if r else None)],
        ["Cold start: process start to first 200", _s(res.cold_start_s)],
        ["Peak RSS when ready (VmHWM)", _mib(res.rss_ready_mib)],
        ["Peak RSS over the whole run (VmHWM)", _mib(res.rss_peak_mib)],
        ["Devices reported by `/health`", _num(res.health_devices)],
        [
            f"GET, ids cycled over the fleet ({len(res.loads)} x {plan.seconds} s)",
            load,
        ],
        ["Device edit to new config served", _edits(res.device_edits)],
        [
            f"{_profile_label(res)}: first sampled device served",
            _edits(res.profile_first),
        ],
        [
            f"Same edit: all {scale.PROFILE_SAMPLE} sampled devices served",
            _edits(res.profile_all),
        ],
    ]


def _profile_label(res: scale.Result) -> str:
    count = res.stats.get("types", {}).get(EDIT_PROFILE, 0)
    return f"`{EDIT_PROFILE}` profile edit ({EDIT_METRIC} flipped, {count:,} devices)"


def _median_load(loads: list[_wrk.Load]) -> str:
    if not loads:
        return "unavailable"
    rps = statistics.median(load.rps for load in loads)
    p50 = statistics.median(load.p50_ms for load in loads)
    p99 = statistics.median(load.p99_ms for load in loads)
    errors = sum(load.errors for load in loads)
    others = statistics.median(load.background for load in loads)
    return (
        f"{rps:,.0f} req/s, p50 {p50:.2f} ms, p99 {p99:.2f} ms, {errors} errors "
        f"(others used {others:.0%} of the CPUs)"
    )


def _mib(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.0f} MiB ({value * 1.048576:.0f} MB)"


def _edits(edits: scale.Edits) -> str:
    done = edits.seconds
    text = "none served" if edits.error else "not measured"
    if done:
        text = (
            f"median {statistics.median(done) * 1000:.0f} ms, "
            f"max {max(done) * 1000:.0f} ms ({len(done)} edits)"
        )
    return text if edits.error is None else f"{text}; FAILED: {_clean(edits.error)}"


def _scale_errors(res: scale.Result) -> str:
    if not res.errors:
        return ""
    return "Problems:\n\n" + "\n".join(f"- {_clean(e)}" for e in res.errors) + "\n"


# Resolution


def _resolution(run: Run) -> str:
    rows = []
    if run.example is not None:
        rows.append(_resolution_row("example repo", run.example))
    if run.scale is not None and run.scale.resolution is not None:
        rows.append(_resolution_row("synthetic fleet", run.scale.resolution))
    if not rows:
        return ""
    intro = (
        "## Resolving one device in-process\n\n"
        "`python -m bench.resolve REPO`: `Fleet.compute` (merge, schema check, "
        "encode, no cache) and `Fleet.resolve` (the cached lookup the server "
        "uses), over the sampled devices in turn; timeit with automatic "
        f"repetition, best and median of {resolve.REPEAT} runs.\n"
    )
    header = [
        "Repo",
        "Devices",
        "Sampled",
        "compute µs best / median",
        "resolve µs best / median",
    ]
    return intro + "\n" + _table(header, rows)


def _resolution_row(name: str, res: resolve.Resolution) -> list[str]:
    return [
        name,
        f"{res.devices:,}",
        str(res.sampled),
        f"{res.compute.best_us:.1f} / {res.compute.median_us:.1f}",
        f"{res.resolve.best_us:.2f} / {res.resolve.median_us:.2f}",
    ]
