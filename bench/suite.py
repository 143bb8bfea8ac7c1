"""The whole benchmark run: python -m bench [--quick]."""

from __future__ import annotations

import argparse
import os
import shlex
import sys
import time
from collections.abc import Callable
from pathlib import Path

from bench import _machine, _wrk, compare, report, resolve, scale
from bench._proc import ROOT
from layercfg import LayercfgError

OUT = ROOT / "bench" / "out"
RESULTS = ROOT / "bench" / "RESULTS.md"
QUICK_RESULTS = OUT / "RESULTS-quick.md"
QUICK = {
    "rounds": 1,
    "seconds": 3,
    "warmup": 1,
    "devices": 10_000,
    "edits": 2,
    "profile_edits": 1,
}


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    p.add_argument(
        "--quick",
        action="store_true",
        help="Smoke run: one short round and a 10,000-device fleet.",
    )
    p.add_argument(
        "--only",
        choices=["http", "scale"],
        help="Run only the HTTP comparison or only the scale part.",
    )
    p.add_argument("--rounds", type=_positive, default=3, help="Interleaved rounds.")
    p.add_argument("--seconds", type=_positive, default=10, help="wrk run, in s.")
    p.add_argument("--warmup", type=_positive, default=2, help="wrk warm-up, in s.")
    p.add_argument("--repo", type=Path, default=ROOT, help="Example fleet repo.")
    p.add_argument("--device", default="edge-01", help="Device the HTTP part asks for.")
    p.add_argument("--devices", type=int, default=100_000, help="Synthetic fleet size.")
    p.add_argument("--groups", type=int, default=200, help="Synthetic glob groups.")
    p.add_argument("--edits", type=int, default=5, help="Device edits to time.")
    p.add_argument(
        "--profile-edits", type=int, default=2, help="Profile edits to time."
    )
    p.add_argument("--output", type=Path, help="Results file to write.")
    return p


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value}: expected 1 or more")
    return value


def main(argv: list[str] | None = None) -> int:
    words = sys.argv[1:] if argv is None else argv
    options = parser()
    if "--quick" in words:
        options.set_defaults(**QUICK)
    args = options.parse_args(words)
    _wrk.require_tools()
    if len(os.sched_getaffinity(0)) < 2:
        raise SystemExit("bench: pinning server and wrk apart needs two CPUs")
    OUT.mkdir(parents=True, exist_ok=True)
    clock = time.monotonic()

    def progress(message: str) -> None:
        print(f"[{time.monotonic() - clock:6.0f} s] {message}", flush=True)

    run = _run(args, words, progress)
    output = args.output or (QUICK_RESULTS if args.quick else RESULTS)
    output.write_text(report.render(run))
    progress(f"wrote {output}")
    return 0


def _run(
    args: argparse.Namespace, words: list[str], progress: Callable[[str], None]
) -> report.Run:
    example, body = _example(args.repo, args.device)
    progress(f"example repo: {example.devices} devices, {len(body)} bytes served")
    http = None if args.only == "scale" else _http_plan(args, body)
    summaries = compare.run(http, progress) if http else []
    sized = None if args.only == "http" else _scale_plan(args)
    scaled = scale.run(sized, progress) if sized else None
    command = shlex.join(["python", "-m", "bench", *words])
    machine = _machine.describe()
    return report.Run(machine, command, http, summaries, example, sized, scaled)


def _http_plan(args: argparse.Namespace, body: bytes) -> compare.Plan:
    return compare.Plan(
        repo=args.repo,
        device=args.device,
        body=body,
        out=OUT / "http",
        rounds=args.rounds,
        seconds=args.seconds,
        warmup=args.warmup,
    )


def _scale_plan(args: argparse.Namespace) -> scale.Plan:
    return scale.Plan(
        out=OUT / "scale",
        devices=args.devices,
        groups=args.groups,
        rounds=args.rounds,
        seconds=args.seconds,
        warmup=args.warmup,
        edits=args.edits,
        profile_edits=args.profile_edits,
    )


def _example(repo: Path, device: str) -> tuple[resolve.Resolution, bytes]:
    """Time resolution on the example repo; return the device's served body."""
    try:
        fleet, load_s = resolve.load(repo)
        resolved = fleet.compute(device)
    except LayercfgError as exc:
        raise SystemExit(f"bench: the example repo does not load: {exc}") from exc
    if resolved is None:
        raise SystemExit(f"bench: {device} is not a device of {repo}")
    hosts = resolve.sample_hosts(fleet, 200)
    return resolve.measure(fleet, hosts, load_s), resolved.body
