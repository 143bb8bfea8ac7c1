"""Property-based fuzzing of the real server against its own OpenAPI description.

Schemathesis generates requests for every operation of `/openapi.json`, valid
and invalid, sends them to a server process and checks each answer: no 5xx, a
documented status, the documented media type and a body matching the
documented schema.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import requests
import schemathesis
from conftest import ROOT, Server, copy_fleet, start_server
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from layercfg import _openapi

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
TIMEOUT = 10
# Health checks judge how fast data is generated, not how the server answers.
FUZZ = settings(
    max_examples=100, deadline=None, suppress_health_check=list(HealthCheck)
)


def _document() -> dict[str, Any]:
    device_schema = json.loads((ROOT / "schema/device-config.schema.json").read_text())
    return _openapi.document(device_schema)


# Built at collection from the repository's schema, as the server builds it; a
# test below checks that the server serves this very document.
schema = schemathesis.openapi.from_dict(_document())


@pytest.fixture(scope="module")
def fuzzed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    # Registration on, so generated PUTs to unknown ids reach the storage
    # code; a rate far above what the run sends, so 429 does not hide it.
    repo = copy_fleet(tmp_path_factory.mktemp("fuzz") / "repo")
    server = start_server(
        repo,
        "--allow-registration",
        "--write-rate",
        "100000/minute",
        "--no-access-log",
    )
    yield server
    server.stop()


def test_fuzz_description_is_what_server_serves(fuzzed: Server) -> None:
    response = requests.get(fuzzed.url + "/openapi.json", timeout=TIMEOUT)

    assert response.headers["content-type"] == "application/json"
    assert response.json() == _document()


@schema.parametrize()
@FUZZ
def test_fuzz_answers_conform(case: schemathesis.Case, fuzzed: Server) -> None:
    case.call_and_validate(base_url=fuzzed.url, checks=CHECKS, timeout=TIMEOUT)


def test_fuzz_acknowledged_write_served_exactly(fuzzed: Server) -> None:
    operation = schema["/config/{device_id}"]["PUT"]
    valid = operation.as_strategy(generation_mode=schemathesis.GenerationMode.POSITIVE)
    stored: list[str] = []

    # Derandomized, so that the run always includes writes that succeed.
    @given(case=valid)
    @settings(FUZZ, max_examples=25, derandomize=True)
    def write(case: schemathesis.Case) -> None:
        answer = case.call(base_url=fuzzed.url, timeout=TIMEOUT)
        if answer.status_code != 200:
            return
        device_id = case.path_parameters["device_id"]
        served = requests.get(f"{fuzzed.url}/config/{device_id}", timeout=TIMEOUT)
        sent = {key: value for key, value in case.body.items() if value is not None}
        etags = (served.headers["etag"], *answer.headers["etag"])
        assert (served.json(), etags[0]) == (sent, etags[1])
        stored.append(device_id)

    write()

    assert stored, "no generated write was accepted"
