"""A short run of the load test: mixed GET and PUT, no error of any kind."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from conftest import ROOT

SECONDS = 5
Result = tuple[int, dict[str, Any], Path]


def _load(output: Path) -> tuple[int, dict[str, Any], str]:
    if shutil.which("wrk") is None:
        pytest.fail("the load test needs wrk on PATH (apt-get install wrk)")
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench.load",
            "--connections",
            "50",
            "--put-connections",
            "10",
            "--seconds",
            str(SECONDS),
            "--devices",
            "100",
            "--quiet-wait",
            "0",
            "--output",
            str(output),
        ],
        cwd=ROOT,
        check=False,
        capture_output=True,
        text=True,
        timeout=SECONDS + 120,
    )
    lines = done.stdout.strip().splitlines()
    summary = json.loads(lines[-1]) if lines else {}
    return done.returncode, summary, done.stderr


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Result:
    output = tmp_path_factory.mktemp("load") / "LOAD.md"
    status, summary, stderr = _load(output)
    assert summary, f"bench.load printed no summary:\n{stderr}"
    return status, summary, output


def test_load_passes_and_writes_figures(run: Result) -> None:
    status, summary, output = run

    assert (status, summary["problems"]) == (0, [])
    assert "| PUT | 10 |" in output.read_text()


@pytest.mark.parametrize("method", ["GET", "PUT"])
def test_load_no_error_and_no_server_error(run: Result, method: str) -> None:
    figures = run[1]["methods"][method]
    kinds = ("socket_errors", "server_errors", "unexpected", "bad_bodies")
    errors = {kind: figures[kind] for kind in kinds}

    assert figures["requests"] > 0
    assert errors == dict.fromkeys(kinds, 0)
