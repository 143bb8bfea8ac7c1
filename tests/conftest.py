"""Fixtures that run the real server: a uvicorn process on a loopback port."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests
from hypothesis import HealthCheck, settings

# Test machines are shared and noisy: a slow example is not a failure.
settings.register_profile(
    "layercfg", deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile("layercfg")

ROOT = Path(__file__).resolve().parent.parent
FLEET_DIRS = ("profiles", "overrides", "schema")


def copy_fleet(target: Path) -> Path:
    """A writable copy of the repository's example fleet."""
    for name in FLEET_DIRS:
        shutil.copytree(ROOT / name, target / name)
    return target


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Server:
    """A running `layercfg serve` process and where to reach it."""

    repo: Path
    url: str
    process: subprocess.Popen[bytes]
    log: Path
    args: list[str] = field(default_factory=list)

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self, sig: int = signal.SIGTERM) -> int:
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        return self.process.returncode


def start_server(
    repo: Path,
    *args: str,
    scheme: str = "http",
    verify: bool | str = True,
    timeout: float = 30.0,
) -> Server:
    """Start `python -m layercfg serve` on a free port; wait until it answers."""
    port = free_port()
    log = repo.parent / f"server-{port}.log"
    command = [
        sys.executable, "-m", "layercfg", "serve",
        "--repo", str(repo), "--host", "127.0.0.1", "--port", str(port), *args,
    ]
    with log.open("wb") as out:
        process = subprocess.Popen(
            command, stdout=out, stderr=subprocess.STDOUT, env=os.environ.copy()
        )
    server = Server(repo, f"{scheme}://127.0.0.1:{port}", process, log, list(args))
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited early:\n{server.output()}")
        try:
            requests.get(server.url + "/health", timeout=1, verify=verify)
            return server
        except requests.ConnectionError:
            time.sleep(0.05)
    server.stop(signal.SIGKILL)
    raise RuntimeError(f"server did not answer in {timeout} s:\n{server.output()}")


@pytest.fixture
def fleet_copy(tmp_path: Path) -> Path:
    return copy_fleet(tmp_path / "repo")


@pytest.fixture
def launch(tmp_path: Path) -> Iterator[Callable[..., Server]]:
    """Start servers on demand; every one is stopped after the test."""
    started: list[Server] = []

    def launch(repo: Path | None = None, *args: str, **kwargs: object) -> Server:
        server = start_server(repo or copy_fleet(tmp_path / "repo"), *args, **kwargs)
        started.append(server)
        return server

    yield launch
    for server in started:
        server.stop()


@pytest.fixture(scope="module")
def example_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One server on a copy of the example fleet, shared by a module's tests."""
    repo = copy_fleet(tmp_path_factory.mktemp("example") / "repo")
    server = start_server(repo)
    yield server
    server.stop()
