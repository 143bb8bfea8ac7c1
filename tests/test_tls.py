"""`layercfg serve --ssl-certfile/--ssl-keyfile`: HTTPS with a fresh certificate."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
from conftest import Server, copy_fleet, start_server

from layercfg.cli import USAGE, main

TIMEOUT = 5


@dataclass(frozen=True)
class Pair:
    cert: Path
    key: Path


def _make_certificate(folder: Path) -> Pair:
    # The cryptography package is not a dependency; the openssl command is
    # enough to make a self-signed certificate valid for the loopback address.
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.fail("the TLS tests need the openssl command to make a certificate")
    pair = Pair(folder / "cert.pem", folder / "key.pem")
    subprocess.run(
        [
            openssl,
            "req",
            "-x509",
            "-nodes",
            "-days",
            "1",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-keyout",
            str(pair.key),
            "-out",
            str(pair.cert),
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
        ],
        check=True,
        capture_output=True,
        timeout=30,
    )
    return pair


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Pair:
    return _make_certificate(tmp_path_factory.mktemp("tls"))


@pytest.fixture(scope="module")
def tls_server(
    tmp_path_factory: pytest.TempPathFactory, pair: Pair
) -> Iterator[Server]:
    repo = copy_fleet(tmp_path_factory.mktemp("tls-fleet") / "repo")
    server = start_server(
        repo,
        "--ssl-certfile",
        str(pair.cert),
        "--ssl-keyfile",
        str(pair.key),
        scheme="https",
        verify=str(pair.cert),
    )
    yield server
    server.stop()


def test_tls_config_served_over_https(tls_server: Server, pair: Pair) -> None:
    response = requests.get(
        tls_server.url + "/config/edge-01", verify=str(pair.cert), timeout=TIMEOUT
    )

    assert (response.status_code, response.url.startswith("https://")) == (200, True)
    assert response.json()["device_type"] == "jetson_orin"


def test_tls_plain_http_refused(tls_server: Server) -> None:
    plain = tls_server.url.replace("https://", "http://", 1)

    with pytest.raises(requests.ConnectionError):
        requests.get(plain + "/config/edge-01", timeout=TIMEOUT)


def test_tls_unknown_certificate_rejected_by_client(tls_server: Server) -> None:
    # Without the certificate as trust anchor, the client refuses the server.
    with pytest.raises(requests.exceptions.SSLError):
        requests.get(tls_server.url + "/health", timeout=TIMEOUT)


def test_tls_keyfile_without_certfile_refused(
    pair: Pair, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = str(pair.key.parent)
    status = main(["serve", "--repo", repo, "--ssl-keyfile", str(pair.key)])

    assert status == USAGE
    assert capsys.readouterr().err == "layercfg: --ssl-keyfile: needs --ssl-certfile\n"


def test_tls_certificate_without_its_key_refused(
    pair: Pair, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = str(pair.cert.parent)
    status = main(["serve", "--repo", repo, "--ssl-certfile", str(pair.cert)])

    assert status == USAGE
    assert capsys.readouterr().err.startswith(
        f"layercfg: --ssl-certfile: cannot use {str(pair.cert)!r}: "
    )
