"""Metric names per device type, as the edge-metrics-exporter reports them."""

from __future__ import annotations

JETSON_RAILS = {
    "jetson_orin": ["vdd_gpu_soc", "vdd_cpu_cv", "vddq_vdd2_1v8ao", "vin_sys_5v0"],
    "jetson_xavier": ["gpu", "cpu", "soc", "cv", "vddrq", "sys5v"],
    "jetson_nano": ["pom_5v_in", "pom_5v_gpu", "pom_5v_cpu"],
    "jetson": ["vdd_in", "vdd_cpu_gpu_cv", "vdd_soc"],
}
JETSON_CORES = {"jetson_orin": 12, "jetson_xavier": 8, "jetson_nano": 4, "jetson": 6}
JETSON_TEMPS = ["cpu", "gpu", "soc0", "soc1", "soc2", "tboard", "tdiode", "tj"]
JETSON_SYSTEM = [
    "ram_used_mb",
    "ram_total_mb",
    "ram_used_percent",
    "swap_used_mb",
    "swap_total_mb",
    "lfb_blocks",
    "lfb_total_mb",
    "cpu_avg_usage_percent",
    "cpu_active_cores",
    "gpu_usage_percent",
    "gpu_freq0_mhz",
    "gpu_freq1_mhz",
    "emc_freq_mhz",
    "emc_usage_percent",
    "vic_freq_mhz",
    "ape_freq_mhz",
]
POWER_SENSOR = ["power_total_watts", "power_voltage_volts", "power_current_amps"]
SBC_PREFIX = {"raspberry_pi": "rpi", "orange_pi": "opi", "lattepanda": "lp"}
SBC_CORES = {"raspberry_pi": 4, "orange_pi": 8, "lattepanda": 4}
SBC_SYSTEM = [
    "cpu_temp_celsius",
    "cpu_usage_percent",
    "cpu_freq_mhz",
    "ram_used_mb",
    "ram_total_mb",
    "ram_used_percent",
    "swap_used_mb",
    "disk_used_percent",
    "disk_read_bytes_total",
    "disk_write_bytes_total",
    "net_rx_bytes_total",
    "net_tx_bytes_total",
    "load1",
    "load5",
    "load15",
    "uptime_seconds",
]
SBC_EXTRA = {
    "raspberry_pi": ["gpu_temp_celsius", "throttled", "under_voltage"],
    "orange_pi": ["gpu_temp_celsius", "npu_usage_percent"],
    "lattepanda": ["cpu_package_watts", "gpu_temp_celsius"],
}
SHELLY = [
    *POWER_SENSOR,
    "shelly_temperature_celsius",
    "shelly_energy_wh_total",
    "shelly_switch_output",
    "shelly_wifi_rssi_dbm",
]
# Metrics a fresh device starts with disabled: noisy per-core and clock series.
QUIET_SUFFIXES = ("_status", "_freq_mhz")


def metric_map(device_type: str) -> dict[str, bool]:
    """The profile's metrics map for `device_type`: name to enabled."""
    names = _names(device_type)
    return {name: not name.endswith(QUIET_SUFFIXES) for name in names}


def _names(device_type: str) -> list[str]:
    if device_type in JETSON_RAILS:
        return _jetson(device_type)
    if device_type in SBC_PREFIX:
        return _sbc(device_type)
    return list(SHELLY)


def _jetson(device_type: str) -> list[str]:
    names = []
    for rail in JETSON_RAILS[device_type]:
        names += [f"jetson_power_{rail}_watts", f"jetson_power_{rail}_avg_watts"]
    names += [f"jetson_temp_{sensor}_celsius" for sensor in JETSON_TEMPS]
    names += [f"jetson_{name}" for name in JETSON_SYSTEM]
    for core in range(JETSON_CORES[device_type]):
        names += [
            f"jetson_cpu_core{core}_usage_percent",
            f"jetson_cpu_core{core}_freq_mhz",
            f"jetson_cpu_core{core}_status",
        ]
    return names


def _sbc(device_type: str) -> list[str]:
    prefix = SBC_PREFIX[device_type]
    names = [f"{prefix}_{name}" for name in SBC_SYSTEM + SBC_EXTRA[device_type]]
    names += [
        f"{prefix}_cpu_core{core}_usage_percent"
        for core in range(SBC_CORES[device_type])
    ]
    return names + POWER_SENSOR
