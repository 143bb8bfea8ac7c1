"""The exporter's config loading, re-created from its contract, against the server.

`ConfigLoader` does what the spec and the client notes say the exporter does:
GET with a timeout, raise_for_status, .json(), an empty object counts as no
config, and any failure falls back to the local config.yaml. A config from the
server is written back to that file; after a fallback the device registers
itself with a PUT from a background thread and only notes a non-2xx answer.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml
from conftest import Server, copy_fleet, start_server

# The collectors the client can build; any other device_type crashes it.
COLLECTORS = (
    "jetson_orin",
    "jetson_xavier",
    "jetson_nano",
    "jetson",
    "raspberry_pi",
    "orange_pi",
    "lattepanda",
    "shelly",
)
LOCAL = {
    "device_type": "raspberry_pi",
    "interval": 30,
    "port": 9100,
    "reload_port": 9101,
    "metrics": {"rpi_cpu_temp_celsius": True},
}
BAD_GROUP = 'match: "lab-orin-*-bad"\nconfig:\n  port: 80\n'


class ConfigLoader:
    """Server first, local file second, as the exporter loads its config."""

    def __init__(
        self, server_url: str, device_id: str, local_file: Path, timeout: int = 5
    ) -> None:
        self.config_server_url = server_url
        self.device_id = device_id
        self.local_file = local_file
        self.timeout = timeout
        self.source = ""
        self.warnings: list[str] = []
        self.registrations: list[int | str] = []
        self._threads: list[threading.Thread] = []

    def load(self) -> dict[str, Any]:
        try:
            config = self._fetch_from_server()
            if config:
                self.source = "server"
                self._save_local(config)
                return config
        except Exception as exc:  # noqa: BLE001 - the exporter falls back on any error
            self.warnings.append(f"Failed to fetch from central server: {exc}")
        try:
            config = self._load_local_config()
        except Exception as exc:
            raise RuntimeError("No config available") from exc
        self.source = "local"
        self._register(config)
        return config

    def wait_for_registration(self) -> list[int | str]:
        for thread in self._threads:
            thread.join(timeout=2 * self.timeout)
        return self.registrations

    def _url(self) -> str:
        return f"{self.config_server_url}/config/{self.device_id}"

    def _fetch_from_server(self) -> dict[str, Any]:
        response = requests.get(self._url(), timeout=self.timeout)
        response.raise_for_status()
        config: dict[str, Any] = response.json()
        return config

    def _load_local_config(self) -> dict[str, Any]:
        config: dict[str, Any] = yaml.safe_load(self.local_file.read_text())
        return config

    def _save_local(self, config: dict[str, Any]) -> None:
        self.local_file.write_text(yaml.safe_dump(config, sort_keys=False))

    def _register(self, config: dict[str, Any]) -> None:
        thread = threading.Thread(target=self._put, args=(config,), daemon=True)
        self._threads.append(thread)
        thread.start()

    def _put(self, config: dict[str, Any]) -> None:
        try:
            response = requests.put(self._url(), json=config, timeout=self.timeout)
        except requests.RequestException as exc:
            self.registrations.append(type(exc).__name__)
            return
        self.registrations.append(response.status_code)


def collector_for(config: dict[str, Any]) -> str:
    """The collector the exporter starts; raises where the exporter crashes."""
    device_type = config["device_type"]
    if device_type not in COLLECTORS:
        raise ValueError(f"unknown device_type {device_type!r}")
    return str(device_type)


@pytest.fixture
def local_file(tmp_path: Path) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(LOCAL, sort_keys=False))
    return path


@pytest.fixture
def loader(local_file: Path) -> Callable[[str, str], ConfigLoader]:
    def make(server_url: str, device_id: str) -> ConfigLoader:
        return ConfigLoader(server_url, device_id, local_file)

    return make


@pytest.fixture(scope="module")
def invalid_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """The example fleet plus a group that merges into port 80 for some names."""
    repo = copy_fleet(tmp_path_factory.mktemp("invalid") / "repo")
    (repo / "overrides/groups/bad-ports.yaml").write_text(BAD_GROUP)
    server = start_server(repo)
    yield server
    server.stop()


@pytest.mark.parametrize(
    ("device_id", "collector", "interval"),
    [
        pytest.param("edge-01", "jetson_orin", 1, id="device-file"),
        pytest.param("Edge-01", "jetson_orin", 1, id="capitals"),
        pytest.param("edge-01.lab", "jetson_orin", 1, id="domain"),
        pytest.param("lab-orin-77", "jetson_orin", 2, id="glob-only"),
        pytest.param("shelly-plug-02", "shelly", 10, id="shelly"),
    ],
)
def test_loader_known_device_uses_server_config(
    example_server: Server,
    loader: Callable[[str, str], ConfigLoader],
    device_id: str,
    collector: str,
    interval: int,
) -> None:
    client = loader(example_server.url, device_id)
    config = client.load()

    assert (client.source, collector_for(config)) == ("server", collector)
    assert config["interval"] == interval


def test_loader_server_config_written_to_local_file(
    example_server: Server, loader: Callable[[str, str], ConfigLoader], local_file: Path
) -> None:
    config = loader(example_server.url, "shelly-plug-01").load()

    assert yaml.safe_load(local_file.read_text()) == config
    assert config["shelly"]["host"] == "192.168.1.100"


def test_loader_server_url_with_trailing_slash(
    example_server: Server, loader: Callable[[str, str], ConfigLoader]
) -> None:
    client = loader(example_server.url + "/", "rpi-sensor-01")
    config = client.load()

    assert (client.source, collector_for(config)) == ("server", "raspberry_pi")
    assert config["interval"] == 5


def test_loader_every_listed_device_passes_client_checks(
    example_server: Server, loader: Callable[[str, str], ConfigLoader]
) -> None:
    listing = requests.get(example_server.url + "/devices", timeout=5).json()
    clients = [loader(example_server.url, d["hostname"]) for d in listing["devices"]]
    types = [collector_for(client.load()) for client in clients]

    assert {client.source for client in clients} == {"server"}
    assert types == [d["device_type"] for d in listing["devices"]]


def test_loader_unknown_device_falls_back_to_local_file(
    example_server: Server, loader: Callable[[str, str], ConfigLoader]
) -> None:
    client = loader(example_server.url, "unknown-99")
    config = client.load()

    assert (client.source, config) == ("local", LOCAL)
    assert "404 Client Error" in client.warnings[0]


def test_loader_unknown_device_registration_refused(
    example_server: Server, loader: Callable[[str, str], ConfigLoader]
) -> None:
    client = loader(example_server.url, "unknown-98")
    config = client.load()
    [status] = client.wait_for_registration()

    assert (client.source, config) == ("local", LOCAL)
    assert isinstance(status, int) and 400 <= status < 600


def test_loader_invalid_config_falls_back_to_local_file(
    invalid_server: Server, loader: Callable[[str, str], ConfigLoader]
) -> None:
    client = loader(invalid_server.url, "lab-orin-7-bad")
    config = client.load()

    assert (client.source, config) == ("local", LOCAL)
    assert "500 Server Error" in client.warnings[0]


def test_loader_server_down_falls_back_to_local_file(
    launch: Callable[..., Server], loader: Callable[[str, str], ConfigLoader]
) -> None:
    server = launch()
    server.stop()
    client = loader(server.url, "edge-01")
    config = client.load()

    assert (client.source, config) == ("local", LOCAL)
    assert client.wait_for_registration() == ["ConnectionError"]


def test_loader_runs_on_last_served_config_during_outage(
    launch: Callable[..., Server], loader: Callable[[str, str], ConfigLoader]
) -> None:
    server = launch()
    served = loader(server.url, "edge-02").load()
    server.stop()
    client = loader(server.url, "edge-02")
    config = client.load()

    assert (client.source, collector_for(config)) == ("local", "jetson_xavier")
    assert config == served


def test_loader_without_local_file_and_server_raises(
    example_server: Server, tmp_path: Path
) -> None:
    client = ConfigLoader(example_server.url, "unknown-97", tmp_path / "missing.yaml")

    with pytest.raises(RuntimeError, match="No config available"):
        client.load()
