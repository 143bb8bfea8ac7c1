"""Generate a deterministic synthetic fleet repo: python -m bench.genfleet OUT."""

from __future__ import annotations

import argparse
import functools
import json
import random
import shutil
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from bench._metrics import JETSON_RAILS, SBC_PREFIX, metric_map

# device_type, hostname label, share of the fleet in percent.
TYPE_MIX = [
    ("raspberry_pi", "rpi", 50),
    ("shelly", "shelly", 15),
    ("jetson_orin", "orin", 12),
    ("jetson_nano", "nano", 8),
    ("jetson_xavier", "xavier", 5),
    ("orange_pi", "opi", 4),
    ("lattepanda", "lp", 3),
    ("jetson", "jetson", 3),
]
GENERIC_LABEL = "node"
GENERIC_SHARE = 0.05
INTERVALS = [1, 2, 5, 10, 30, 60]
# The scale benchmark flips this metric in this profile: no group or device
# touches it, so the edit reaches every device of the type (half the fleet).
EDIT_PROFILE = "raspberry_pi"
EDIT_METRIC = "rpi_uptime_seconds"
SCHEMA = Path(__file__).resolve().parent.parent / "schema/device-config.schema.json"
MARKER = ".genfleet.json"
Body = dict[str, Any]


@dataclass(frozen=True)
class Device:
    host: str
    device_type: str
    site: int
    label: str
    override: Body


@dataclass
class Fleet:
    profiles: dict[str, Body]
    groups: dict[str, Body]
    devices: list[Device] = field(default_factory=list)
    stats: dict[str, Any] = field(default_factory=dict)


def generate(devices: int, groups: int, seed: int = 1) -> Fleet:
    """Plan a fleet of `devices` devices and `groups` glob groups."""
    if not 16 <= groups < 2000:
        raise ValueError(f"{groups} groups: expected 16 to 1999 (three-digit sites)")
    rng = random.Random(seed)
    sites = groups // 2
    fleet = Fleet(_profiles(), {})
    fleet.groups.update(_type_groups())
    fleet.groups.update(_site_groups(rng, sites))
    pairs = _site_label_groups(rng, sites, groups - len(fleet.groups), fleet.groups)
    fleet.devices = _devices(rng, devices, sites)
    fleet.stats = _stats(fleet, pairs)
    return fleet


def _profiles() -> dict[str, Body]:
    profiles: dict[str, Body] = {
        "defaults": {
            "interval": 1,
            "port": 9100,
            "reload_port": 9101,
        }
    }
    for device_type, _, _ in TYPE_MIX:
        body: Body = {"device_type": device_type, "metrics": metric_map(device_type)}
        body.update(_profile_extras(device_type))
        profiles[device_type] = body
    return profiles


def _profile_extras(device_type: str) -> Body:
    if device_type in JETSON_RAILS:
        return {"jetson": {"use_tegrastats": True}}
    if device_type in SBC_PREFIX:
        return {"ina260": {"i2c_address": "0x40"}}
    server = "http://localhost:8766"
    return {"shelly": {"enabled": True, "server_url": server, "switch_id": 0}}


def _type_groups() -> dict[str, Body]:
    return {
        f"type-{label}": {
            "match": f"site???-{label}-*",
            "priority": 10,
            "config": {"device_type": device_type},
        }
        for device_type, label, _ in TYPE_MIX
    }


def _site_groups(rng: random.Random, sites: int) -> dict[str, Body]:
    return {
        f"site{site:03d}": {
            "match": f"site{site:03d}-*",
            "config": {"interval": rng.choice(INTERVALS)},
        }
        for site in range(sites)
    }


def _site_label_groups(
    rng: random.Random, sites: int, count: int, groups: dict[str, Body]
) -> set[tuple[int, str]]:
    """Add `count` groups like `site042-orin-*`; some match two sites' devices."""
    pairs = [(site, label) for site in range(sites) for _, label, _ in TYPE_MIX]
    rng.shuffle(pairs)
    used: set[tuple[int, str]] = set()
    for site, label in pairs:
        if count == 0:
            break
        if (site, label) in used:
            continue
        members = [(site, label)]
        neighbour = ((site + 1) % sites, label)
        if rng.random() < 0.25 and neighbour not in used and neighbour != members[0]:
            members.append(neighbour)
        used.update(members)
        groups[_pair_name(members)] = _pair_group(rng, members)
        count -= 1
    return used


def _pair_name(members: list[tuple[int, str]]) -> str:
    sites = "-".join(f"{site:03d}" for site, _ in members)
    return f"site{sites}-{members[0][1]}"


def _pair_group(rng: random.Random, members: list[tuple[int, str]]) -> Body:
    globs = [f"site{site:03d}-{label}-*" for site, label in members]
    device_type = next(dt for dt, label, _ in TYPE_MIX if label == members[0][1])
    return {
        "match": globs[0] if len(globs) == 1 else globs,
        "priority": 20,
        "config": _pair_config(rng, device_type, members[0][0]),
    }


def _pair_config(rng: random.Random, device_type: str, site: int) -> Body:
    if device_type == "shelly":
        return {"shelly": {"server_url": f"http://bridge-{site:03d}.lan:8766"}}
    config: Body = {"metrics": _toggles(rng, device_type, rng.randint(2, 6))}
    if device_type in JETSON_RAILS and rng.random() < 0.1:
        config["jetson"] = {"use_tegrastats": False}
    if device_type in SBC_PREFIX and rng.random() < 0.1:
        config["ina260"] = {"i2c_address": "0x41"}
    return config


def _toggles(rng: random.Random, device_type: str, count: int) -> dict[str, bool]:
    names = _names(device_type, EDIT_METRIC)
    picked = rng.sample(names, min(count, len(names)))
    return {name: rng.random() < 0.5 for name in picked}


@functools.cache
def _names(device_type: str, leave_out: str = "") -> list[str]:
    return [name for name in metric_map(device_type) if name != leave_out]


def _devices(rng: random.Random, count: int, sites: int) -> list[Device]:
    weights = [share for _, _, share in TYPE_MIX]
    serial: Counter[tuple[int, str]] = Counter()
    devices = []
    for _ in range(count):
        device_type, label, _ = rng.choices(TYPE_MIX, weights)[0]
        site = rng.randrange(sites)
        if rng.random() < GENERIC_SHARE:
            label = GENERIC_LABEL
        serial[site, label] += 1
        host = f"site{site:03d}-{label}-{serial[site, label]:04d}"
        override = _override(rng, device_type, label, serial[site, label], site)
        devices.append(Device(host, device_type, site, label, override))
    return devices


def _override(
    rng: random.Random, device_type: str, label: str, serial: int, site: int
) -> Body:
    """A device file: most set one or two things; Shelly plugs name their host."""
    body: Body = {}
    if label == GENERIC_LABEL:
        body["device_type"] = device_type
    if device_type == "shelly":
        host = f"10.{site}.{serial // 250}.{serial % 250 + 1}"
        switch = 0 if rng.random() < 0.9 else rng.randint(1, 3)
        body["shelly"] = {"host": host, "switch_id": switch}
    body.update(_optional_keys(rng, device_type))
    if not body:
        body = _one_key(rng, device_type)
    return body


def _optional_keys(rng: random.Random, device_type: str) -> Body:
    body: Body = {}
    if rng.random() < 0.25:
        body["interval"] = rng.choice(INTERVALS)
    if rng.random() < 0.35:
        body["metrics"] = _toggles(rng, device_type, rng.randint(1, 4))
    if rng.random() < 0.05:
        names = _names(device_type)
        body["enabled_metrics"] = sorted(rng.sample(names, min(len(names), 6)))
    if device_type in JETSON_RAILS and rng.random() < 0.05:
        body["jetson"] = {"use_tegrastats": False}
    if device_type in SBC_PREFIX and rng.random() < 0.03:
        body["ina260"] = {"i2c_address": rng.choice(["0x41", "0x44", "0x45"])}
    if rng.random() < 0.02:
        body["port"] = 9200
        body["reload_port"] = 9201
    return body


def _one_key(rng: random.Random, device_type: str) -> Body:
    if rng.random() < 0.5:
        return {"interval": rng.choice(INTERVALS)}
    return {"metrics": _toggles(rng, device_type, 1)}


def _stats(fleet: Fleet, pairs: set[tuple[int, str]]) -> dict[str, Any]:
    keys_per_file: Counter[str] = Counter()
    key_use: Counter[str] = Counter()
    matches: Counter[int] = Counter()
    for device in fleet.devices:
        size = len(device.override)
        keys_per_file[str(size) if size < 4 else "4+"] += 1
        key_use.update(device.override.keys())
        generic = device.label == GENERIC_LABEL
        matches[1 + (not generic) + ((device.site, device.label) in pairs)] += 1
    return {
        "devices": len(fleet.devices),
        "groups": len(fleet.groups),
        "list_groups": sum(isinstance(g["match"], list) for g in fleet.groups.values()),
        "types": Counter(device.device_type for device in fleet.devices),
        "generic_hosts": sum(d.label == GENERIC_LABEL for d in fleet.devices),
        "keys_per_file": keys_per_file,
        "key_use": key_use,
        "groups_per_device": matches,
        "profile_metrics": {
            name: len(body.get("metrics", {})) for name, body in fleet.profiles.items()
        },
    }


def write(fleet: Fleet, out: Path, schema: Path = SCHEMA) -> None:
    """Write the fleet as a layercfg repo, replacing an earlier generated one."""
    if not schema.is_file():
        raise FileNotFoundError(f"{schema}: schema file not found; pass --schema")
    _clear(out)
    _dump_all(out / "profiles", fleet.profiles)
    _dump_all(out / "overrides/groups", fleet.groups)
    _dump_all(out / "overrides/devices", {d.host: d.override for d in fleet.devices})
    (out / "schema").mkdir()
    shutil.copyfile(schema, out / "schema/device-config.schema.json")
    sizes = [f.stat().st_size for f in (out / "overrides/devices").iterdir()]
    fleet.stats["mean_device_file_bytes"] = sum(sizes) / max(len(sizes), 1)
    (out / MARKER).write_text(json.dumps(fleet.stats, indent=1, sort_keys=True))


def _clear(out: Path) -> None:
    if out.exists() and any(out.iterdir()):
        if not (out / MARKER).is_file():
            raise FileExistsError(f"{out}: not empty and not made by genfleet")
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)


def _dump_all(folder: Path, bodies: dict[str, Body]) -> None:
    folder.mkdir(parents=True)
    for name, body in bodies.items():
        text = yaml.dump(
            body, Dumper=yaml.CSafeDumper, sort_keys=False, default_flow_style=False
        )
        (folder / f"{name}.yaml").write_text(text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("out", type=Path, help="Directory to write the repo to.")
    parser.add_argument("--devices", type=int, default=100_000, help="Device count.")
    parser.add_argument("--groups", type=int, default=200, help="Glob group count.")
    parser.add_argument("--seed", type=int, default=1, help="Random seed.")
    parser.add_argument("--schema", type=Path, default=SCHEMA, help="Schema to copy.")
    args = parser.parse_args(argv)
    try:
        fleet = generate(args.devices, args.groups, args.seed)
        write(fleet, args.out, args.schema)
    except (ValueError, OSError) as exc:
        print(f"genfleet: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(fleet.stats, indent=1, sort_keys=True))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
