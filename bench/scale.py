"""layercfg on a large synthetic fleet: cold start, memory, edits, throughput."""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from bench import _cpu, _proc, _wrk, genfleet, resolve
from bench._proc import BenchError
from bench.compare import QUIET_WAIT, SERVER_CPU, WRK_CPU, layercfg_argv
from bench.genfleet import EDIT_METRIC, EDIT_PROFILE, Device
from layercfg import LayercfgError

COLD_TIMEOUT = 300.0
EDIT_TIMEOUT = 30.0
PROFILE_TIMEOUT = 120.0
SETTLE = 1.0
CHECKED = 20
PROFILE_SAMPLE = 50
Progress = Callable[[str], None]
Config = dict[str, Any]


@dataclass(frozen=True)
class Plan:
    out: Path
    devices: int
    groups: int
    rounds: int
    seconds: int
    warmup: int
    edits: int
    profile_edits: int
    seed: int = 1


@dataclass
class Edits:
    """Seconds from each file write to the new config being served."""

    seconds: list[float] = field(default_factory=list)
    error: str | None = None


@dataclass
class Result:
    stats: dict[str, Any] = field(default_factory=dict)
    generate_s: float | None = None
    resolution: resolve.Resolution | None = None
    cold_start_s: float | None = None
    rss_ready_mib: float | None = None
    rss_peak_mib: float | None = None
    health_devices: int | None = None
    loads: list[_wrk.Load] = field(default_factory=list)
    device_edits: Edits = field(default_factory=Edits)
    profile_first: Edits = field(default_factory=Edits)
    profile_all: Edits = field(default_factory=Edits)
    errors: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Served:
    """What the running server is expected to answer for a sample of devices."""

    port: int
    pid: int
    devices: list[Device]
    bodies: dict[str, bytes]


def run(plan: Plan, progress: Progress) -> Result:
    """Generate the fleet, time its resolution in-process, then serve it."""
    result = Result()
    folder = plan.out / "fleet"
    start = time.perf_counter()
    fleet = genfleet.generate(plan.devices, plan.groups, plan.seed)
    genfleet.write(fleet, folder)
    result.generate_s = time.perf_counter() - start
    result.stats = fleet.stats
    progress(f"generated {plan.devices:,} devices in {result.generate_s:.1f} s")
    try:
        bodies = _in_process(result, folder, fleet.devices, plan.seed)
    except LayercfgError as exc:
        result.errors.append(f"the generated fleet does not load: {exc}")
        return result
    progress(f"resolved in-process: {_describe_resolution(result.resolution)}")
    _serve(result, plan, folder, fleet.devices, bodies, progress)
    return result


def _in_process(
    result: Result, folder: Path, devices: list[Device], seed: int
) -> dict[str, bytes]:
    """Time resolution in this process; return the engine's bodies to check."""
    fleet, load_s = resolve.load(folder)
    hosts = resolve.sample_hosts(fleet, 200, seed)
    result.resolution = resolve.measure(fleet, hosts, load_s)
    checked = random.Random(seed).sample(devices, min(CHECKED, len(devices)))
    return {d.host: _body(fleet.compute(d.host), d.host) for d in checked}


def _body(resolved: Any, host: str) -> bytes:
    if resolved is None:
        raise BenchError(f"{host}: the engine does not know this device")
    body: bytes = resolved.body
    return body


def _describe_resolution(res: resolve.Resolution | None) -> str:
    if res is None:
        return "not measured"
    return (
        f"load {res.load_s:.1f} s, compute {res.compute.best_us:.1f} us, "
        f"cached resolve {res.resolve.best_us:.2f} us"
    )


def _serve(
    result: Result,
    plan: Plan,
    folder: Path,
    devices: list[Device],
    bodies: dict[str, bytes],
    progress: Progress,
) -> None:
    port = _proc.free_port()
    log = plan.out / "logs" / "scale.log"
    state = plan.out / "scale-state"
    state.mkdir(parents=True, exist_ok=True)
    checked = [d for d in devices if d.host in bodies]
    _cpu.wait_for_quiet(QUIET_WAIT)
    started = time.monotonic()
    argv = layercfg_argv(folder, port, 1, True, state)
    proc = _proc.launch(argv, log, SERVER_CPU)
    served = Served(port, proc.pid, checked, bodies)
    try:
        path = f"/config/{checked[0].host}"
        result.cold_start_s = _proc.wait_for_200(
            proc, port, path, started, COLD_TIMEOUT, log
        )
        result.rss_ready_mib = _proc.peak_rss_mib(proc.pid)
        progress(
            f"cold start {result.cold_start_s:.1f} s, {result.rss_ready_mib:.0f} MiB"
        )
        _measure_served(result, plan, folder, devices, served, progress)
    except (BenchError, OSError, ValueError) as exc:
        result.errors.append(str(exc))
        progress(f"scale run stopped: {exc}")
    finally:
        result.rss_peak_mib = _proc.peak_rss_mib(proc.pid) or result.rss_ready_mib
        _proc.stop(proc)


def _measure_served(
    result: Result,
    plan: Plan,
    folder: Path,
    devices: list[Device],
    served: Served,
    progress: Progress,
) -> None:
    result.health_devices = _health_devices(served.port)
    result.errors += _verify(served, "before the load")
    result.loads = _throughput(served.port, served.pid, plan, devices)
    for load in result.loads:
        progress(f"fleet GET: {load.rps:,.0f} req/s, p99 {load.p99_ms:.2f} ms")
    result.errors += _verify(served, "after the load")
    result.device_edits = _device_edits(served.port, folder, served.devices[0], plan)
    progress(f"device edits: {_describe_edits(result.device_edits)}")
    first, every = _profile_edits(served.port, folder, devices, plan)
    result.profile_first, result.profile_all = first, every
    progress(f"profile edits, whole sample served: {_describe_edits(every)}")


def _health_devices(port: int) -> int | None:
    reply = _proc.request(port, "/health")
    if reply.status != 200:
        return None
    devices = json.loads(reply.body).get("devices")
    return devices if isinstance(devices, int) else None


def _verify(served: Served, when: str) -> list[str]:
    """Problems with the served configs of the checked sample."""
    problems = []
    for device in served.devices:
        reply = _proc.request(served.port, f"/config/{device.host}")
        if reply.status != 200:
            problems.append(f"{when}: {device.host}: status {reply.status}")
        elif reply.body != served.bodies[device.host]:
            problems.append(f"{when}: {device.host}: differs from the engine's body")
        elif not _carries(json.loads(reply.body), device):
            problems.append(f"{when}: {device.host}: lacks its own file's values")
    return problems


def _carries(config: Config, device: Device) -> bool:
    """Whether the device's own file, the top layer, shows in its config."""
    if config.get("device_type") != device.device_type:
        return False
    return all(_leaf(config, path) == value for path, value in _leaves(device.override))


def _leaves(
    data: Config, prefix: tuple[str, ...] = ()
) -> list[tuple[tuple[str, ...], Any]]:
    found = []
    for key, value in data.items():
        if isinstance(value, dict):
            found += _leaves(value, (*prefix, key))
        else:
            found.append(((*prefix, key), value))
    return found


def _leaf(config: Config, path: tuple[str, ...]) -> Any:
    value: Any = config
    for key in path:
        value = value.get(key) if isinstance(value, dict) else None
    return value


def _throughput(
    port: int, pid: int, plan: Plan, devices: list[Device]
) -> list[_wrk.Load]:
    """wrk cycling over every device id in a shuffled order."""
    paths = [f"/config/{d.host}" for d in devices]
    random.Random(plan.seed).shuffle(paths)
    paths_file = plan.out / "fleet-paths.txt"
    paths_file.write_text("\n".join(paths) + "\n")
    _wrk.run(port, paths[0], plan.warmup, pid, WRK_CPU, paths_file)
    return [
        _wrk.measure(port, paths[0], plan.seconds, pid, WRK_CPU, paths_file)
        for _ in range(plan.rounds)
    ]


def _device_edits(port: int, folder: Path, device: Device, plan: Plan) -> Edits:
    """Set a new interval in one device's file, `plan.edits` times."""
    file = folder / "overrides/devices" / f"{device.host}.yaml"
    edits = Edits()
    for number in range(plan.edits):
        waited = _one_device_edit(port, file, device.host, 1000 + number)
        if waited is None:
            edits.error = f"not served within {EDIT_TIMEOUT:.0f} s"
            break
        edits.seconds.append(waited)
        time.sleep(SETTLE)
    return edits


def _one_device_edit(port: int, file: Path, host: str, interval: int) -> float | None:
    def changed(config: Config) -> bool:
        return config.get("interval") == interval

    start = _rewrite(file, lambda data: data.update(interval=interval))
    return _wait_until(port, host, changed, start, EDIT_TIMEOUT)


def _profile_edits(
    port: int, folder: Path, devices: list[Device], plan: Plan
) -> tuple[Edits, Edits]:
    """Flip one metric in the profile half the fleet uses.

    Returns the seconds until the first sampled device, and until every one,
    served the new value.
    """
    affected = [d.host for d in devices if d.device_type == EDIT_PROFILE]
    sample = random.Random(plan.seed).sample(
        affected, min(PROFILE_SAMPLE, len(affected))
    )
    bystander = next(d.host for d in devices if d.device_type != EDIT_PROFILE)
    file = folder / "profiles" / f"{EDIT_PROFILE}.yaml"
    first, every = Edits(), Edits()
    for _ in range(plan.profile_edits):
        untouched = _proc.request(port, f"/config/{bystander}").body
        outcome = _one_profile_edit(port, file, sample)
        if isinstance(outcome, str):
            first.error = every.error = outcome
            break
        first.seconds.append(outcome[0])
        every.seconds.append(outcome[1])
        if _proc.request(port, f"/config/{bystander}").body != untouched:
            every.error = f"{bystander}, not a {EDIT_PROFILE}, changed too"
            break
        time.sleep(SETTLE)
    return first, every


def _one_profile_edit(
    port: int, file: Path, sample: list[str]
) -> tuple[float, float] | str:
    value = not yaml.safe_load(file.read_text())["metrics"][EDIT_METRIC]

    def changed(config: Config) -> bool:
        return bool(config.get("metrics", {}).get(EDIT_METRIC) == value)

    start = _rewrite(file, lambda data: data["metrics"].update({EDIT_METRIC: value}))
    seen = []
    for host in sample:
        waited = _wait_until(port, host, changed, start, PROFILE_TIMEOUT)
        if waited is None:
            return f"{host} not served the edit within {PROFILE_TIMEOUT:.0f} s"
        seen.append(waited)
    return seen[0], seen[-1]


def _rewrite(file: Path, change: Callable[[Config], None]) -> float:
    """Apply `change` to a YAML file; return the monotonic time of the write."""
    data = yaml.safe_load(file.read_text())
    change(data)
    text = yaml.dump(data, Dumper=yaml.CSafeDumper, sort_keys=False)
    start = time.monotonic()
    file.write_text(text)
    return start


def _wait_until(
    port: int, host: str, done: Callable[[Config], bool], start: float, timeout: float
) -> float | None:
    """Poll the device's config until `done` holds; seconds since `start`."""
    while time.monotonic() - start < timeout:
        reply = _proc.request(port, f"/config/{host}")
        if reply.status == 200 and done(json.loads(reply.body)):
            return time.monotonic() - start
        time.sleep(0.005)
    return None


def _describe_edits(edits: Edits) -> str:
    timings = ", ".join(f"{s * 1000:.0f} ms" for s in edits.seconds) or "none"
    return timings if edits.error is None else f"{timings} ({edits.error})"
