"""The example fleet in this repository serves what the spec's examples serve."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from jsonschema import Draft202012Validator

from layercfg import Fleet, Resolved, load_fleet

REPO = Path(__file__).resolve().parents[1]
SCHEMA = json.loads((REPO / "schema" / "device-config.schema.json").read_text())
DEVICE_TYPES = (
    "jetson_orin",
    "jetson_xavier",
    "jetson_nano",
    "jetson",
    "raspberry_pi",
    "orange_pi",
    "lattepanda",
    "shelly",
)
PORTS = {"port": 9100, "reload_port": 9101}


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Fleet:
    # An empty state directory, so configs written back by devices during
    # local runs cannot leak into what the repository alone resolves to.
    return load_fleet(REPO, tmp_path_factory.mktemp("state"))


def _resolve(fleet: Fleet, hostname: str) -> Resolved:
    resolved = fleet.resolve(hostname)
    assert resolved is not None, f"{hostname} is not a known device"
    return resolved


def _pick(config: dict[str, Any], dotted: str) -> Any:
    value: Any = config
    for key in dotted.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(key)
    return value


def _typed(values: dict[str, Any]) -> dict[str, tuple[str, Any]]:
    # Pairs each value with its type name so that True never passes for 1.
    return {key: (type(value).__name__, value) for key, value in values.items()}


@pytest.mark.parametrize(
    ("hostname", "expected"),
    [
        pytest.param(
            "edge-01",
            {
                "device_type": "jetson_orin",
                "interval": 1,
                **PORTS,
                "enabled_metrics": [
                    "jetson_power_vdd_gpu_soc_watts",
                    "jetson_temp_cpu_celsius",
                    "jetson_ram_used_percent",
                ],
            },
            id="edge-01",
        ),
        pytest.param(
            "edge-02",
            {
                "device_type": "jetson_xavier",
                "interval": 2,
                **PORTS,
                "enabled_metrics": None,
            },
            id="edge-02",
        ),
        pytest.param(
            "rpi-sensor-01",
            {
                "device_type": "raspberry_pi",
                "interval": 5,
                **PORTS,
                "enabled_metrics": None,
            },
            id="rpi-sensor-01",
        ),
        pytest.param(
            "shelly-plug-01",
            {
                "device_type": "shelly",
                "interval": 10,
                **PORTS,
                "enabled_metrics": None,
                "shelly.host": "192.168.1.100",
                "shelly.switch_id": 0,
            },
            id="shelly-plug-01",
        ),
    ],
)
def test_spec_device_serves_spec_values(
    fleet: Fleet, hostname: str, expected: dict[str, Any]
) -> None:
    resolved = _resolve(fleet, hostname)

    actual = {key: _pick(resolved.config, key) for key in expected}
    assert _typed(actual) == _typed(expected)
    assert resolved.device_type == expected["device_type"]


def test_fleet_lists_example_devices(fleet: Fleet) -> None:
    inventory = {
        device.hostname: (device.device_type, tuple(sorted(device.groups)))
        for device in fleet.devices()
    }

    assert inventory == {
        "edge-01": ("jetson_orin", ()),
        "edge-02": ("jetson_xavier", ()),
        "lab-orin-01": ("jetson_orin", ("lab-orins",)),
        "lab-orin-02": ("jetson_orin", ("lab-orins",)),
        "lab-orin-03-debug": ("jetson_orin", ("debug", "lab-orins")),
        "nano-cam-01": ("jetson_nano", ()),
        "nx-dev-01": ("jetson", ()),
        "opi-gw-01": ("orange_pi", ()),
        "panda-kiosk-01": ("lattepanda", ()),
        "rack-rpi-01": ("raspberry_pi", ("rpi-rack",)),
        "rack-rpi-02": ("raspberry_pi", ("rpi-rack",)),
        "rpi-sensor-01": ("raspberry_pi", ()),
        "shelly-plug-01": ("shelly", ("shelly-plugs",)),
        "shelly-plug-02": ("shelly", ("shelly-plugs",)),
    }


def test_every_device_config_matches_schema(fleet: Fleet) -> None:
    validator = Draft202012Validator(SCHEMA)

    errors = {
        device.hostname: [
            f"{error.json_path}: {error.message}"
            for error in validator.iter_errors(_resolve(fleet, device.hostname).config)
        ]
        for device in fleet.devices()
    }
    assert {host: found for host, found in errors.items() if found} == {}


def test_every_device_applies_its_type_profile(fleet: Fleet) -> None:
    missing = []
    for device in fleet.devices():
        resolved = _resolve(fleet, device.hostname)
        layer_files = {layer.file for layer in resolved.layers}
        if f"profiles/{resolved.device_type}.yaml" not in layer_files:
            missing.append(device.hostname)

    assert missing == []


@pytest.mark.parametrize(
    "hostname",
    [
        pytest.param("edge-99", id="no-file-no-group"),
        pytest.param("printer-debug", id="debug-suffix-outside-typed-groups"),
    ],
)
def test_unlisted_hostname_is_unknown(fleet: Fleet, hostname: str) -> None:
    assert fleet.resolve(hostname) is None


@pytest.mark.parametrize("device_type", DEVICE_TYPES)
def test_profile_declares_its_own_device_type(device_type: str) -> None:
    profile = REPO / "profiles" / f"{device_type}.yaml"

    assert yaml.safe_load(profile.read_text())["device_type"] == device_type


def test_schema_is_valid_draft_2020_12() -> None:
    Draft202012Validator.check_schema(SCHEMA)


@pytest.mark.parametrize(
    "config",
    [
        pytest.param({"interval": 1, **PORTS}, id="device-type-missing"),
        pytest.param({"device_type": "toaster"}, id="device-type-unknown"),
        pytest.param({"device_type": "jetson", "port": 80}, id="port-privileged"),
        pytest.param(
            {"device_type": "jetson", "reload_port": 70000}, id="reload-port-too-high"
        ),
        pytest.param({"device_type": "jetson", "interval": 0}, id="interval-zero"),
        pytest.param({"device_type": "jetson", "intervall": 5}, id="top-level-typo"),
        pytest.param(
            {"device_type": "jetson", "metrics": {"jetson_temp_cpu_celsius": "yes"}},
            id="metric-flag-string",
        ),
        pytest.param(
            {"device_type": "jetson", "metrics": {"1st-metric": True}},
            id="metric-name-invalid",
        ),
        pytest.param(
            {"device_type": "jetson", "enabled_metrics": ["a_total", "a_total"]},
            id="enabled-metrics-repeated",
        ),
        pytest.param(
            {"device_type": "shelly", "shelly": {"hots": "192.168.1.100"}},
            id="shelly-typo",
        ),
        pytest.param(
            {"device_type": "shelly", "shelly": {"server_url": "localhost:8766"}},
            id="shelly-url-without-scheme",
        ),
        pytest.param(
            {"device_type": "shelly", "shelly": {"switch_id": -1}},
            id="shelly-switch-negative",
        ),
        pytest.param(
            {"device_type": "jetson", "jetson": {"use_tegrastats": "true"}},
            id="jetson-flag-string",
        ),
        pytest.param(
            {"device_type": "jetson", "ina260": {"i2c_address": 64}},
            id="ina260-address-integer",
        ),
    ],
)
def test_schema_rejects_invalid_config(config: dict[str, Any]) -> None:
    assert not Draft202012Validator(SCHEMA).is_valid(config)
