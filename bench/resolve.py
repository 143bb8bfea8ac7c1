"""Cost of resolving one device from loaded layers: python -m bench.resolve REPO."""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import time
import timeit
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from layercfg import Fleet, load_fleet

REPEAT = 5


@dataclass(frozen=True)
class Timing:
    best_us: float
    median_us: float


@dataclass(frozen=True)
class Resolution:
    devices: int
    sampled: int
    load_s: float
    compute: Timing
    resolve: Timing


def load(repo: Path) -> tuple[Fleet, float]:
    """Load `repo` with an empty state directory; return it and the seconds taken."""
    with tempfile.TemporaryDirectory() as state:
        start = time.perf_counter()
        fleet = load_fleet(repo, Path(state))
        return fleet, time.perf_counter() - start


def sample_hosts(fleet: Fleet, count: int, seed: int = 1) -> list[str]:
    hosts = [info.hostname for info in fleet.devices()]
    return random.Random(seed).sample(hosts, min(count, len(hosts)))


def measure(fleet: Fleet, hosts: list[str], load_s: float) -> Resolution:
    """Time `compute` (merge, validate, encode) and the cached `resolve`."""
    return Resolution(
        devices=len(fleet.devices()),
        sampled=len(hosts),
        load_s=load_s,
        compute=_time(fleet.compute, hosts),
        resolve=_time(fleet.resolve, hosts),
    )


def _time(call: Callable[[str], object], hosts: list[str]) -> Timing:
    def batch() -> None:
        for host in hosts:
            call(host)

    timer = timeit.Timer(batch)
    number, _ = timer.autorange()
    totals = timer.repeat(REPEAT, number)
    per_call = [total / (number * len(hosts)) * 1e6 for total in totals]
    return Timing(min(per_call), statistics.median(per_call))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("repo", type=Path, help="Config repository to load.")
    parser.add_argument("--device", action="append", help="Device to resolve.")
    parser.add_argument("--sample", type=int, default=200, help="Devices to sample.")
    args = parser.parse_args(argv)
    fleet, load_s = load(args.repo)
    hosts = args.device or sample_hosts(fleet, args.sample)
    result = measure(fleet, hosts, load_s)
    print(f"{result.devices} devices loaded in {result.load_s:.2f} s")
    print(f"resolved {result.sampled} devices in turn, best of {REPEAT} runs:")
    print(f"  compute (uncached): {result.compute.best_us:8.1f} us per resolution")
    print(f"  resolve (cached):   {result.resolve.best_us:8.2f} us per lookup")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
