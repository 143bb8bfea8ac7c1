from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from _repo import BASE, write_repo

from layercfg import Fleet, Problem, RepositoryError, ResolutionError, load_fleet
from layercfg.layers import DEVICE_TYPES


def _fleet(root: Path, files: dict[str, str]) -> Fleet:
    return load_fleet(write_repo(root, {**BASE, **files}))


def _problems(root: Path, files: dict[str, str]) -> list[Problem]:
    with pytest.raises(RepositoryError) as caught:
        _fleet(root, files)
    problems: list[Problem] = caught.value.problems
    return problems


def _config(root: Path, files: dict[str, str], host: str) -> dict[str, Any]:
    resolved = _fleet(root, files).resolve(host)
    assert resolved is not None
    config: dict[str, Any] = resolved.config
    return config


def _group(match: str, config: str, priority: int = 0) -> str:
    body = "".join(f"  {line}\n" for line in config.splitlines())
    return f"match: {match!r}\npriority: {priority}\nconfig:\n{body}"


# Layer order


@pytest.mark.parametrize(
    ("files", "expected"),
    [
        pytest.param(
            {"overrides/devices/rpi-1.yaml": "device_type: raspberry_pi\n"},
            5,
            id="profile-over-defaults",
        ),
        pytest.param(
            {
                "overrides/groups/rpis.yaml": _group(
                    "rpi-*", "device_type: raspberry_pi\ninterval: 7"
                )
            },
            7,
            id="group-over-profile",
        ),
        pytest.param(
            {
                "overrides/groups/a.yaml": _group("rpi-*", "interval: 3", 10),
                "overrides/groups/z.yaml": _group(
                    "rpi-*", "device_type: raspberry_pi\ninterval: 4"
                ),
            },
            3,
            id="higher-priority-group-over-lower-whatever-the-names",
        ),
        pytest.param(
            {
                "overrides/groups/high.yaml": _group("rpi-*", "interval: 3", 10),
                "overrides/groups/low.yaml": _group(
                    "rpi-1", "device_type: raspberry_pi\ninterval: 4"
                ),
            },
            3,
            id="higher-priority-group-over-more-specific-glob",
        ),
        pytest.param(
            {
                "overrides/groups/rpis.yaml": _group(
                    "rpi-*", "device_type: raspberry_pi\ninterval: 7"
                ),
                "state/devices/rpi-1.json": '{"config": {"interval": 8}}',
            },
            8,
            id="state-over-group",
        ),
        pytest.param(
            {
                "overrides/groups/rpis.yaml": _group(
                    "rpi-*", "device_type: raspberry_pi\ninterval: 7"
                ),
                "state/devices/rpi-1.json": '{"config": {"interval": 8}}',
                "overrides/devices/rpi-1.yaml": "interval: 9\n",
            },
            9,
            id="device-file-over-everything",
        ),
    ],
)
def test_resolve_later_layer_wins(
    tmp_path: Path, files: dict[str, str], expected: int
) -> None:
    assert _config(tmp_path, files, "rpi-1")["interval"] == expected


def test_resolve_applies_layers_in_order(tmp_path: Path) -> None:
    fleet = _fleet(
        tmp_path,
        {
            "overrides/groups/b-high.yaml": _group("lab-*", "interval: 2", 5),
            "overrides/groups/c-low.yaml": _group("lab-*", "device_type: jetson"),
            "overrides/groups/a-low.yaml": _group("lab-1", "port: 9200"),
            "overrides/groups/other.yaml": _group("rack-*", "interval: 9"),
            "overrides/devices/lab-1.yaml": "reload_port: 9201\n",
            "state/devices/lab-1.json": '{"config": {"metrics": {"m": true}}}',
        },
    )

    resolved = fleet.resolve("lab-1")

    assert resolved is not None
    assert [layer.file for layer in resolved.layers] == [
        "profiles/defaults.yaml",
        "profiles/jetson.yaml",
        "overrides/groups/a-low.yaml",
        "overrides/groups/c-low.yaml",
        "overrides/groups/b-high.yaml",
        "state/devices/lab-1.json",
        "overrides/devices/lab-1.yaml",
    ]
    assert resolved.groups == ("a-low", "c-low", "b-high")


def test_resolve_serves_device_type_first(tmp_path: Path) -> None:
    files = {"overrides/devices/lab-1.yaml": "interval: 2\ndevice_type: jetson\n"}

    body = _fleet(tmp_path, files).resolve("lab-1")

    assert body is not None
    assert list(body.config) == ["device_type", "interval", "port", "reload_port"]


# device_type and profiles


@pytest.mark.parametrize(
    ("files", "device_type", "interval"),
    [
        pytest.param(
            {
                "profiles/defaults.yaml": (
                    "device_type: raspberry_pi\nport: 9100\nreload_port: 9101\n"
                ),
                "overrides/devices/lab-1.yaml": "# known by its file alone\n",
            },
            "raspberry_pi",
            5,
            id="from-defaults",
        ),
        pytest.param(
            {"overrides/groups/lab.yaml": _group("lab-*", "device_type: raspberry_pi")},
            "raspberry_pi",
            5,
            id="from-group",
        ),
        pytest.param(
            {
                "overrides/groups/lab.yaml": _group(
                    "lab-*", "device_type: raspberry_pi"
                ),
                "overrides/devices/lab-1.yaml": "device_type: jetson\n",
            },
            "jetson",
            None,
            id="device-file-over-group",
        ),
        pytest.param(
            {
                "overrides/groups/a.yaml": _group("lab-*", "device_type: jetson", 1),
                "overrides/groups/b.yaml": _group("lab-*", "device_type: raspberry_pi"),
            },
            "jetson",
            None,
            id="higher-priority-group",
        ),
        pytest.param(
            {
                "state/devices/lab-1.json": '{"config": {"device_type": "jetson"}}',
                "overrides/groups/b.yaml": _group("lab-*", "device_type: raspberry_pi"),
            },
            "jetson",
            None,
            id="state-over-group",
        ),
    ],
)
def test_resolve_device_type_picks_profile(
    tmp_path: Path, files: dict[str, str], device_type: str, interval: int | None
) -> None:
    files = {"profiles/defaults.yaml": "port: 9100\nreload_port: 9101\n", **files}

    resolved = _fleet(tmp_path, files).resolve("lab-1")

    assert resolved is not None
    assert resolved.device_type == device_type
    assert resolved.layers[1].file == f"profiles/{device_type}.yaml"
    assert resolved.config.get("interval") == interval


def test_profile_with_other_device_type_is_an_error(tmp_path: Path) -> None:
    files = {"profiles/jetson.yaml": "# generic\ndevice_type: shelly\n"}

    problems = _problems(tmp_path, files)

    assert [(p.file, p.line, p.message) for p in problems] == [
        (
            "profiles/jetson.yaml",
            2,
            "device_type: profile 'jetson' sets device_type to 'shelly'",
        )
    ]


def test_profile_named_after_no_device_type_is_an_error(tmp_path: Path) -> None:
    problems = _problems(tmp_path, {"profiles/toaster.yaml": "interval: 2\n"})

    assert [(p.file, p.line, p.message) for p in problems] == [
        (
            "profiles/toaster.yaml",
            None,
            (
                f"no device type is called 'toaster' (expected one of "
                f"{', '.join(DEVICE_TYPES)})"
            ),
        )
    ]


@pytest.mark.parametrize(
    ("files", "file", "line"),
    [
        pytest.param(
            {"overrides/devices/lab-1.yaml": "interval: 2\ndevice_type: orange_pi\n"},
            "overrides/devices/lab-1.yaml",
            2,
            id="device-file",
        ),
        pytest.param(
            {
                "overrides/groups/lab.yaml": _group("lab-*", "device_type: orange_pi"),
                "overrides/devices/lab-1.yaml": "interval: 2\n",
            },
            "overrides/groups/lab.yaml",
            4,
            id="group-file",
        ),
    ],
)
def test_device_type_without_profile_names_its_setter(
    tmp_path: Path, files: dict[str, str], file: str, line: int
) -> None:
    problems = _problems(tmp_path, files)

    assert problems[-1] == Problem(
        "device_type 'orange_pi' has no profile (expected profiles/orange_pi.yaml)",
        file=file,
        line=line,
        device="lab-1",
        json_path="$.device_type",
        rule="device_type",
    )


@pytest.mark.parametrize(
    ("device", "found"),
    [
        pytest.param("device_type: [jetson]\n", "['jetson']", id="list"),
        pytest.param("device_type: null\n", "None", id="removed"),
    ],
)
def test_device_type_not_a_name_is_an_error(
    tmp_path: Path, device: str, found: str
) -> None:
    files = {
        "overrides/groups/lab.yaml": _group("lab-*", "device_type: jetson"),
        "overrides/devices/lab-1.yaml": device,
    }

    problems = _problems(tmp_path, files)

    assert [str(p) for p in problems] == [
        "overrides/devices/lab-1.yaml:1: lab-1: $.device_type: "
        + f"expected device_type to name a profile, found {found}"
    ]


def test_missing_device_type_names_no_file(tmp_path: Path) -> None:
    problems = _problems(tmp_path, {"overrides/devices/lab-1.yaml": "interval: 2\n"})

    assert problems == [
        Problem(
            "no layer sets device_type (set it in profiles/defaults.yaml, a group "
            "or the device's file)",
            device="lab-1",
            json_path="$.device_type",
            rule="device_type",
        )
    ]
    assert str(problems[0]).startswith("lab-1: $.device_type: no layer sets")


# RFC 7386 across layers


@pytest.mark.parametrize(
    ("device", "key", "expected"),
    [
        pytest.param(
            "metrics:\n  b: false\n  c: true\n",
            "metrics",
            {"a": True, "b": False, "c": True},
            id="mappings-merge",
        ),
        pytest.param(
            "enabled_metrics: [c]\n", "enabled_metrics", ["c"], id="lists-replace"
        ),
        pytest.param("interval: 3\n", "interval", 3, id="scalars-replace"),
        pytest.param("ina260: null\n", "ina260", None, id="null-removes"),
    ],
)
def test_resolve_merges_per_rfc_7386(
    tmp_path: Path, device: str, key: str, expected: Any
) -> None:
    group = _group(
        "lab-*",
        "device_type: jetson\ninterval: 2\nmetrics: {a: true, b: true}\n"
        "enabled_metrics: [a, b]\nina260: {i2c_address: '0x40'}",
    )
    files = {"overrides/groups/lab.yaml": group, "overrides/devices/lab-1.yaml": device}

    assert _config(tmp_path, files, "lab-1").get(key) == expected


def test_resolve_does_not_leak_between_devices(tmp_path: Path) -> None:
    group = _group("lab-*", "device_type: jetson\nmetrics: {a: true}")
    fleet = _fleet(
        tmp_path,
        {
            "overrides/groups/lab.yaml": group,
            "overrides/devices/lab-1.yaml": "metrics: {a: false, b: true}\n",
            "overrides/devices/lab-2.yaml": "metrics: null\n",
        },
    )
    before = {host: _metrics(fleet, host) for host in ("lab-3", "lab-1", "lab-2")}

    after = {host: _metrics(fleet, host) for host in ("lab-2", "lab-1", "lab-3")}

    assert before == after
    assert after == {
        "lab-1": {"a": False, "b": True},
        "lab-2": None,
        "lab-3": {"a": True},
    }


def _metrics(fleet: Fleet, host: str) -> Any:
    resolved = fleet.compute(host)
    assert resolved is not None
    return resolved.config.get("metrics")


def test_resolved_config_can_be_changed_safely(tmp_path: Path) -> None:
    files = {"overrides/groups/lab.yaml": _group("lab-*", "device_type: jetson")}
    fleet = _fleet(tmp_path, files)
    first = fleet.resolve("lab-1")
    assert first is not None

    config = first.config
    config["interval"] = 60
    config.clear()

    again = fleet.resolve("lab-1")
    assert again is not None and again.config["interval"] == 1
    assert first.config["interval"] == 1


# Hostnames and globs


@pytest.mark.parametrize("host", ["edge-01", "Edge-01", "EDGE-01"])
def test_hostname_case_is_ignored(tmp_path: Path, host: str) -> None:
    fleet = _fleet(
        tmp_path, {"overrides/devices/Edge-01.yaml": "device_type: jetson\n"}
    )

    resolved = fleet.resolve(host)

    assert resolved is not None and resolved.device_type == "jetson"
    assert [d.hostname for d in fleet.devices()] == ["edge-01"]


@pytest.mark.parametrize(
    ("glob", "host", "matches"),
    [
        pytest.param("lab-orin-*", "lab-orin-1", True, id="star"),
        pytest.param("lab-orin-*", "lab-orin-", True, id="star-matches-nothing"),
        pytest.param("lab-orin-*", "xlab-orin-1", False, id="whole-name-start"),
        pytest.param("*-orin", "lab-orin-1", False, id="whole-name-end"),
        pytest.param("lab-orin-*", "LAB-ORIN-1", True, id="host-case-ignored"),
        pytest.param("Lab-Orin-*", "lab-orin-1", True, id="glob-case-ignored"),
        pytest.param("rack-[ab]", "rack-b", True, id="set-member"),
        pytest.param("rack-[ab]", "rack-c", False, id="set-non-member"),
        pytest.param("rack-[!ab]", "rack-c", True, id="negated-set"),
        pytest.param("node-?", "node-7", True, id="question-one-char"),
        pytest.param("node-?", "node-17", False, id="question-not-two"),
        pytest.param("node-?", "node-", False, id="question-not-zero"),
    ],
)
def test_group_glob_matching(
    tmp_path: Path, glob: str, host: str, matches: bool
) -> None:
    files = {"overrides/groups/g.yaml": _group(glob, "device_type: jetson")}

    assert (_fleet(tmp_path, files).resolve(host) is not None) is matches


def test_group_matches_any_of_its_globs(tmp_path: Path) -> None:
    group = "match: [a-*, b-*]\nconfig:\n  device_type: jetson\n"
    fleet = _fleet(tmp_path, {"overrides/groups/g.yaml": group})

    assert [fleet.resolve(h) is not None for h in ("a-1", "b-1", "c-1")] == [
        True,
        True,
        False,
    ]


@pytest.mark.parametrize(
    ("first", "second"),
    [
        pytest.param("Edge-01.yaml", "edge-01.yaml", id="case"),
        pytest.param("edge-01.yaml", "edge-01.yml", id="suffix"),
    ],
)
def test_two_files_for_one_device_is_an_error(
    tmp_path: Path, first: str, second: str
) -> None:
    files = {
        f"overrides/devices/{name}": "device_type: jetson\n" for name in (first, second)
    }

    problems = _problems(tmp_path, files)

    assert [str(p) for p in problems] == [
        (
            f"overrides/devices/{second}: defines the same device layer as "
            f"overrides/devices/{first}"
        )
    ]


def test_device_file_not_named_as_a_hostname_is_an_error(tmp_path: Path) -> None:
    files = {"overrides/devices/edge_01.yaml": "device_type: jetson\n"}

    assert [str(p) for p in _problems(tmp_path, files)] == [
        (
            "overrides/devices/edge_01.yaml: file name 'edge_01' is not a hostname "
            "(expected letters, digits, '-' and '.', labels of 1 to 63 characters)"
        )
    ]


# Known and unknown devices


@pytest.fixture
def known(tmp_path: Path) -> Fleet:
    return _fleet(
        tmp_path,
        {
            "overrides/groups/lab.yaml": _group(
                "lab-*", "device_type: jetson\ninterval: 2"
            ),
            "overrides/groups/rpi.yaml": _group("rpi-?", "device_type: raspberry_pi"),
            "overrides/devices/lab-1.yaml": "interval: 3\n",
            "overrides/devices/edge-01.yaml": "device_type: raspberry_pi\n",
            "overrides/devices/edge-02.yaml": "device_type: jetson\n",
            "overrides/devices/edge-02.lab.yaml": "device_type: raspberry_pi\n",
        },
    )


@pytest.mark.parametrize(
    ("host", "interval"),
    [
        pytest.param("edge-01", 5, id="own-file"),
        pytest.param("lab-2", 2, id="group-only"),
        pytest.param("lab-1", 3, id="group-and-own-file"),
        pytest.param("edge-99", None, id="unknown"),
        pytest.param("rpi-22", None, id="glob-does-not-match"),
        pytest.param("edge-01.lab", 5, id="domain-falls-back-to-file"),
        pytest.param("EDGE-01.Lab.Example", 5, id="longer-domain-falls-back"),
        pytest.param("rpi-2.lab", 5, id="domain-falls-back-to-group"),
        pytest.param("lab-2.lab", 2, id="glob-matches-domain"),
        # a file names a device more precisely than a glob matching the FQDN
        pytest.param("lab-1.lab", 3, id="short-name-file-beats-glob-on-full-name"),
        pytest.param("edge-02.lab", 5, id="full-name-file-wins"),
        pytest.param("edge-99.lab", None, id="domain-of-unknown"),
        pytest.param("lab.edge-01", None, id="only-first-label-counts"),
    ],
)
def test_resolve_known_devices(known: Fleet, host: str, interval: int | None) -> None:
    resolved = known.resolve(host)

    found = None if resolved is None else resolved.config["interval"]
    assert found == interval


def test_devices_lists_only_devices_with_files(known: Fleet) -> None:
    assert [
        (d.hostname, d.device_type, d.groups, d.files) for d in known.devices()
    ] == [
        ("edge-01", "raspberry_pi", (), ("overrides/devices/edge-01.yaml",)),
        ("edge-02", "jetson", (), ("overrides/devices/edge-02.yaml",)),
        ("edge-02.lab", "raspberry_pi", (), ("overrides/devices/edge-02.lab.yaml",)),
        ("lab-1", "jetson", ("lab",), ("overrides/devices/lab-1.yaml",)),
    ]


# Schema violations and where they come from


@pytest.mark.parametrize(
    ("files", "expected"),
    [
        pytest.param(
            {
                "overrides/groups/lab.yaml": _group(
                    "lab-*", "device_type: jetson\nport: 80"
                ),
                "overrides/devices/lab-1.yaml": "interval: 2\n",
            },
            Problem(
                "80 is less than the minimum of 1024",
                file="overrides/groups/lab.yaml",
                line=5,
                device="lab-1",
                json_path="$.port",
                rule="minimum",
            ),
            id="group-port-80",
        ),
        pytest.param(
            {"overrides/devices/lab-1.yaml": "device_type: jetson\nintervall: 5\n"},
            Problem(
                "Additional properties are not allowed ('intervall' was unexpected)",
                file="overrides/devices/lab-1.yaml",
                line=2,
                device="lab-1",
                json_path="$.intervall",
                rule="additionalProperties",
            ),
            id="unknown-key",
        ),
        pytest.param(
            {
                "overrides/devices/lab-1.yaml": (
                    "device_type: jetson\nshelly:\n  enabled: yes\n"
                )
            },
            Problem(
                "'yes' is not of type 'boolean'",
                file="overrides/devices/lab-1.yaml",
                line=3,
                device="lab-1",
                json_path="$.shelly.enabled",
                rule="type",
            ),
            id="yes-is-not-a-bool",
        ),
        pytest.param(
            {"overrides/devices/lab-1.yaml": "device_type: jetson\nport: 9100.0\n"},
            Problem(
                "9100.0 is not of type 'integer'",
                file="overrides/devices/lab-1.yaml",
                line=2,
                device="lab-1",
                json_path="$.port",
                rule="type",
            ),
            id="float-port",
        ),
        pytest.param(
            {"overrides/devices/lab-1.yaml": "device_type: jetson\nport: true\n"},
            Problem(
                "True is not of type 'integer'",
                file="overrides/devices/lab-1.yaml",
                line=2,
                device="lab-1",
                json_path="$.port",
                rule="type",
            ),
            id="bool-port",
        ),
        pytest.param(
            {"overrides/devices/lab-1.yaml": "device_type: jetson\ninterval: 0\n"},
            Problem(
                "0 is less than the minimum of 1",
                file="overrides/devices/lab-1.yaml",
                line=2,
                device="lab-1",
                json_path="$.interval",
                rule="minimum",
            ),
            id="interval-zero",
        ),
        pytest.param(
            {
                "overrides/devices/lab-1.yaml": (
                    "device_type: jetson\nina260:\n  i2c_address: 64\n"
                )
            },
            Problem(
                "64 is not of type 'string'",
                file="overrides/devices/lab-1.yaml",
                line=3,
                device="lab-1",
                json_path="$.ina260.i2c_address",
                rule="type",
            ),
            id="i2c-address-integer",
        ),
        pytest.param(
            {
                "state/devices/lab-1.json": (
                    '{"config": {"device_type": "jetson", "interval": -1}}'
                )
            },
            Problem(
                "-1 is less than the minimum of 1",
                file="state/devices/lab-1.json",
                line=None,
                device="lab-1",
                json_path="$.interval",
                rule="minimum",
            ),
            id="state-layer-has-no-lines",
        ),
    ],
)
def test_schema_problem_names_the_layer_that_set_the_value(
    tmp_path: Path, files: dict[str, str], expected: Problem
) -> None:
    assert expected in _problems(tmp_path, files)


def test_same_port_twice_blames_both_settings(tmp_path: Path) -> None:
    files = {"overrides/devices/lab-1.yaml": "device_type: jetson\nreload_port: 9100\n"}

    problems = _problems(tmp_path, files)

    message = "9100 is also the metrics port; the two must differ"
    assert [(p.file, p.line, p.json_path, p.message) for p in problems] == [
        ("profiles/defaults.yaml", 2, "$.port", message),
        ("overrides/devices/lab-1.yaml", 2, "$.reload_port", message),
    ]


def test_invalid_group_is_reported_without_a_device(tmp_path: Path) -> None:
    files = {
        "overrides/groups/lab.yaml": _group("lab-*", "device_type: jetson\nport: 80")
    }

    problems = _problems(tmp_path, files)

    assert [str(p) for p in problems] == [
        (
            "overrides/groups/lab.yaml:5: any host matching lab-*: $.port: 80 is less "
            "than the minimum of 1024"
        )
    ]


def test_repository_error_lists_every_problem(tmp_path: Path) -> None:
    files = {
        "overrides/devices/a-1.yaml": "device_type: jetson\nport: 1\n",
        "overrides/devices/b-1.yaml": "device_type: jetson\nport: 2\n",
        "overrides/devices/c-1.yaml": "a: 1\na: 2\n",
    }

    problems = _problems(tmp_path, files)

    assert [(p.file, p.line) for p in problems] == [
        ("overrides/devices/c-1.yaml", 2),
        ("overrides/devices/a-1.yaml", 2),
        ("overrides/devices/b-1.yaml", 2),
    ]


def test_invalid_mix_of_groups_fails_only_that_host(tmp_path: Path) -> None:
    files = {
        "overrides/groups/a.yaml": _group("lab-*", "device_type: jetson\nport: 9200"),
        "overrides/groups/b.yaml": _group("lab-1", "reload_port: 9200", 1),
    }
    fleet = _fleet(tmp_path, files)

    with pytest.raises(ResolutionError) as caught:
        fleet.resolve("lab-1")

    assert fleet.resolve("lab-2") is not None
    assert [(p.file, p.device, p.rule) for p in caught.value.problems] == [
        ("overrides/groups/a.yaml", "lab-1", "distinct-ports"),
        ("overrides/groups/b.yaml", "lab-1", "distinct-ports"),
    ]


# Group ties


@pytest.mark.parametrize(
    ("first", "second", "path"),
    [
        pytest.param(
            _group("lab-*", "interval: 2"),
            _group("lab-1*", "interval: 3"),
            "$.interval",
            id="same-key-other-value",
        ),
        pytest.param(
            _group("lab-*", "metrics: {a: true}"),
            _group("lab-*", "metrics: {a: false}"),
            "$.metrics.a",
            id="nested-key",
        ),
        pytest.param(
            _group("[ab]-*", "interval: 2"),
            _group("b-?", "interval: 3"),
            "$.interval",
            id="globs-overlap",
        ),
        pytest.param(
            _group("lab-*", "ina260: null"),
            _group("lab-*", "ina260: {i2c_address: '0x40'}"),
            "$.ina260",
            id="first-removes-what-second-sets",
        ),
        pytest.param(
            _group("lab-*", "ina260: {i2c_address: '0x40'}"),
            _group("lab-*", "ina260: null"),
            "$.ina260",
            id="second-removes-what-first-sets",
        ),
    ],
)
def test_equal_priority_groups_disagreeing_is_an_error(
    tmp_path: Path, first: str, second: str, path: str
) -> None:
    files = {"overrides/groups/a.yaml": first, "overrides/groups/b.yaml": second}

    problems = _problems(tmp_path, files)

    assert [(p.file, p.json_path, p.rule) for p in problems] == [
        ("overrides/groups/b.yaml", path, "group-tie")
    ]


@pytest.mark.parametrize(
    ("first", "second"),
    [
        pytest.param(
            _group("lab-*", "interval: 2", 1),
            _group("lab-*", "interval: 3"),
            id="priorities-differ",
        ),
        pytest.param(
            _group("a-*", "interval: 2"),
            _group("b-*", "interval: 3"),
            id="globs-cannot-overlap",
        ),
        pytest.param(
            _group("lab-?", "interval: 2"),
            _group("lab-??", "interval: 3"),
            id="lengths-cannot-overlap",
        ),
        pytest.param(
            _group("lab-*", "interval: 2"),
            _group("lab-*", "interval: 2"),
            id="same-value",
        ),
        pytest.param(
            _group("lab-*", "metrics: {a: true}"),
            _group("lab-*", "metrics: {b: false}"),
            id="different-keys",
        ),
        pytest.param(
            _group("lab-*", "metrics: {}"),
            _group("lab-*", "metrics: {b: false}"),
            id="empty-mapping-changes-nothing",
        ),
    ],
)
def test_groups_that_cannot_disagree_are_accepted(
    tmp_path: Path, first: str, second: str
) -> None:
    files = {"overrides/groups/a.yaml": first, "overrides/groups/b.yaml": second}

    _fleet(tmp_path, files)


def test_group_tie_message(tmp_path: Path) -> None:
    files = {
        "overrides/groups/a.yaml": _group("lab-*", "interval: 2"),
        "overrides/groups/b.yaml": _group("lab-1*", "interval: 3"),
    }

    assert [str(p) for p in _problems(tmp_path, files)] == [
        (
            "overrides/groups/b.yaml:4: $.interval: groups 'a' and 'b' have the same "
            "priority (0), can match the same host and set $.interval to different "
            "values; give one a higher priority"
        )
    ]


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        pytest.param(
            "match: 'a-*'\ncolor: red\n",
            2,
            "color: unknown key in a group file (expected match, priority and config)",
            id="unknown-key",
        ),
        pytest.param(
            "config: {}\n",
            None,
            "match: expected a glob or a list of globs, found None",
            id="no-match",
        ),
        pytest.param(
            "match: []\n",
            1,
            "match: expected a glob or a list of globs, found []",
            id="empty-match",
        ),
        pytest.param(
            "match: 'a-*'\npriority: high\n",
            2,
            "priority: expected an integer, found 'high'",
            id="priority-string",
        ),
        pytest.param(
            "match: 'a-*'\nconfig: [1]\n",
            2,
            "config: expected a mapping, found [1]",
            id="config-list",
        ),
    ],
)
def test_malformed_group_file_is_an_error(
    tmp_path: Path, text: str, line: int | None, message: str
) -> None:
    problems = _problems(tmp_path, {"overrides/groups/g.yaml": text})

    assert [(p.file, p.line, p.message) for p in problems] == [
        ("overrides/groups/g.yaml", line, message)
    ]


# Loading


@pytest.mark.parametrize(
    ("text", "line", "start"),
    [
        pytest.param(
            "a: 1\na: 2\n", 2, "duplicate key 'a' (first set on line 1)", id="dup"
        ),
        pytest.param(
            "- jetson\n",
            1,
            "expected a mapping at the top level, found a sequence",
            id="list",
        ),
        pytest.param("a: [1\n", 2, "while parsing a flow sequence", id="invalid-yaml"),
    ],
)
def test_unusable_layer_file_names_file_and_line(
    tmp_path: Path, text: str, line: int, start: str
) -> None:
    problems = _problems(tmp_path, {"profiles/jetson.yaml": text})

    assert [(p.file, p.line) for p in problems] == [("profiles/jetson.yaml", line)]
    assert problems[0].message.startswith(start)


def test_empty_layer_file_is_an_empty_layer(tmp_path: Path) -> None:
    files = {
        "profiles/jetson.yaml": "",
        "overrides/devices/lab-1.yaml": "# nothing yet\n",
        "overrides/groups/lab.yaml": _group("lab-*", "device_type: jetson"),
    }

    assert _config(tmp_path, files, "lab-1") == {
        "device_type": "jetson",
        "interval": 1,
        "port": 9100,
        "reload_port": 9101,
    }


def test_yaml_1_1_surprises_stay_strings(tmp_path: Path) -> None:
    device = "device_type: jetson\nina260:\n  i2c_address: 0x40\nmetrics:\n  no: true\n"

    config = _config(tmp_path, {"overrides/devices/lab-1.yaml": device}, "lab-1")

    assert config["ina260"] == {"i2c_address": "0x40"}
    assert config["metrics"] == {"no": True}


def test_unreadable_file_is_an_error(tmp_path: Path) -> None:
    # a directory where a file should be: unreadable even for root
    (tmp_path / "overrides/devices/lab-1.yaml").mkdir(parents=True)

    problems = _problems(tmp_path, {})

    assert [str(p) for p in problems] == [
        "overrides/devices/lab-1.yaml: cannot read the file: Is a directory"
    ]


def test_missing_schema_is_an_error(tmp_path: Path) -> None:
    write_repo(tmp_path, BASE)
    (tmp_path / "schema/device-config.schema.json").unlink()

    with pytest.raises(RepositoryError) as caught:
        load_fleet(tmp_path)

    assert [str(p) for p in caught.value.problems] == [
        "schema/device-config.schema.json: the schema file is missing"
    ]


# Independence from the file system's order and timestamps

ORDER_FILES = {
    "overrides/groups/b.yaml": _group("lab-*", "interval: 2", 1),
    "overrides/groups/a.yaml": _group("lab-*", "device_type: jetson"),
    "overrides/groups/c.yaml": _group("lab-1", "port: 9200", 1),
    "overrides/devices/lab-2.yaml": "interval: 4\n",
    "overrides/devices/lab-1.yaml": "metrics: {m: true}\n",
}


def _snapshot(fleet: Fleet) -> tuple[str, dict[str, bytes]]:
    bodies = {}
    for host in ("lab-1", "lab-2", "lab-3"):
        resolved = fleet.resolve(host)
        assert resolved is not None
        bodies[host] = resolved.body
    return fleet.revision, bodies


@pytest.mark.parametrize("order", [sorted, lambda names: sorted(names, reverse=True)])
def test_result_ignores_directory_listing_order(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, order: Any
) -> None:
    expected = _snapshot(_fleet(tmp_path / "plain", ORDER_FILES))
    listdir = os.listdir
    monkeypatch.setattr(os, "listdir", lambda path: order(listdir(path)))

    assert _snapshot(_fleet(tmp_path / "ordered", ORDER_FILES)) == expected


def test_result_ignores_creation_order_and_timestamps(tmp_path: Path) -> None:
    expected = _snapshot(_fleet(tmp_path / "first", ORDER_FILES))
    reversed_files = dict(reversed(list(ORDER_FILES.items())))
    repo = write_repo(tmp_path / "second", {**BASE, **reversed_files})
    for number, path in enumerate(sorted(repo.rglob("*.yaml"))):
        os.utime(path, (1_000_000 + number, 2_000_000_000 - number))

    assert _snapshot(load_fleet(repo)) == expected


# Provenance


@pytest.fixture
def explained(tmp_path: Path) -> dict[str, Any]:
    fleet = _fleet(
        tmp_path,
        {
            "overrides/groups/lab.yaml": _group(
                "lab-*", "device_type: jetson\ninterval: 2\nmetrics:\n  a: true"
            ),
            "state/devices/lab-1.json": (
                '{"written_at": "2026-01-02T03:04:05Z", '
                '"config": {"metrics": {"b": false}}}'
            ),
            "overrides/devices/lab-1.yaml": "# slow link\ninterval: 30\n",
        },
    )
    explanation = fleet.explain("Lab-1")
    assert explanation is not None
    return {
        ".".join(origin.path): (
            origin.value,
            origin.layer.file,
            origin.line,
            [(layer.file, line, value) for layer, line, value in origin.replaced],
        )
        for origin in explanation.origins
    }


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        pytest.param(
            "interval",
            (
                30,
                "overrides/devices/lab-1.yaml",
                2,
                [
                    ("profiles/defaults.yaml", 1, 1),
                    ("overrides/groups/lab.yaml", 5, 2),
                ],
            ),
            id="device-replaces-group-and-defaults",
        ),
        pytest.param(
            "device_type",
            (
                "jetson",
                "overrides/groups/lab.yaml",
                4,
                [("profiles/jetson.yaml", 1, "jetson")],
            ),
            id="group-repeats-profile",
        ),
        pytest.param(
            "port", (9100, "profiles/defaults.yaml", 2, []), id="default-untouched"
        ),
        pytest.param(
            "metrics.a",
            (True, "overrides/groups/lab.yaml", 7, []),
            id="nested-key-line",
        ),
        pytest.param(
            "metrics.b", (False, "state/devices/lab-1.json", None, []), id="state-layer"
        ),
    ],
)
def test_explain_names_setter_and_replaced(
    explained: dict[str, Any], path: str, expected: tuple[Any, ...]
) -> None:
    assert explained[path] == expected


def test_explain_covers_every_leaf(explained: dict[str, Any]) -> None:
    assert sorted(explained) == [
        "device_type",
        "interval",
        "metrics.a",
        "metrics.b",
        "port",
        "reload_port",
    ]


@pytest.mark.parametrize(
    "state",
    [
        pytest.param({"ina260": None}, id="block-removed"),
        pytest.param({"ina260": {"i2c_address": None}}, id="key-removed"),
    ],
)
def test_explain_forgets_values_removed_in_between(
    tmp_path: Path, state: dict[str, Any]
) -> None:
    fleet = _fleet(
        tmp_path,
        {
            "overrides/groups/lab.yaml": _group(
                "lab-*", "device_type: jetson\nina260: {i2c_address: '0x40'}"
            ),
            "state/devices/lab-1.json": json.dumps({"config": state}),
            "overrides/devices/lab-1.yaml": "ina260:\n  i2c_address: '0x41'\n",
        },
    )

    explanation = fleet.explain("lab-1")

    assert explanation is not None
    origin = next(o for o in explanation.origins if o.path[0] == "ina260")
    assert (origin.value, origin.layer.file, origin.line, origin.replaced) == (
        "0x41",
        "overrides/devices/lab-1.yaml",
        2,
        (),
    )


def test_explain_unknown_device_is_none(tmp_path: Path) -> None:
    assert _fleet(tmp_path, {}).explain("edge-99") is None
