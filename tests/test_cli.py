from __future__ import annotations

import argparse
import io
import json
import subprocess
import sys
from pathlib import Path

import pytest
from _repo import BASE, copy_example, write_repo

from layercfg import cli, load_fleet

LAYERCFG = Path(sys.executable).parent / "layercfg"
EDGE_01_METRICS = [
    "jetson_power_vdd_gpu_soc_watts",
    "jetson_temp_cpu_celsius",
    "jetson_ram_used_percent",
]
STATE = json.dumps(
    {
        "written_at": "2026-03-04T05:06:07Z",
        "config": {"metrics": {"jetson_fan_rpm": True}},
    }
)


def _run(*argv: str) -> tuple[int, str, str]:
    stdout, stderr = io.StringIO(), io.StringIO()
    code = cli.run(cli.build_parser().parse_args(argv), stdout, stderr)
    return code, stdout.getvalue(), stderr.getvalue()


def _shell(*argv: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        argv, capture_output=True, text=True, timeout=60, cwd=cwd, check=False
    )


@pytest.fixture
def example(tmp_path: Path) -> Path:
    return copy_example(tmp_path / "repo")


def _write_state(folder: Path) -> Path:
    (folder / "devices").mkdir(parents=True)
    (folder / "devices" / "edge-02.json").write_text(STATE)
    return folder


def _table(text: str) -> list[list[str]]:
    return [line.split() for line in text.splitlines()]


# resolve


@pytest.mark.parametrize(
    "command",
    [
        pytest.param([str(LAYERCFG)], id="console-script"),
        pytest.param([sys.executable, "-m", "layercfg"], id="python-m"),
    ],
)
def test_resolve_prints_served_config(example: Path, command: list[str]) -> None:
    done = _shell(*command, "resolve", "edge-01", "--repo", str(example))

    assert (done.returncode, done.stderr) == (cli.OK, "")
    config = json.loads(done.stdout)
    assert list(config)[:4] == ["device_type", "interval", "port", "reload_port"]
    assert config["enabled_metrics"] == EDGE_01_METRICS
    served = load_fleet(example).resolve("edge-01")
    assert served is not None and config == served.config


def test_resolve_indents_by_two_spaces(example: Path) -> None:
    code, out, _ = _run("resolve", "Edge-01", "--repo", str(example))

    assert code == cli.OK
    assert out.startswith('{\n  "device_type": "jetson_orin",\n  "interval": 1,\n')
    assert out.endswith("\n  ]\n}\n")


def test_resolve_repo_defaults_to_working_directory(example: Path) -> None:
    done = _shell(str(LAYERCFG), "resolve", "shelly-plug-01", cwd=example)

    assert done.returncode == cli.OK
    assert json.loads(done.stdout)["shelly"]["host"] == "192.168.1.100"


def test_resolve_unknown_device(example: Path) -> None:
    done = _shell(str(LAYERCFG), "resolve", "edge-99", "--repo", str(example))

    assert done.returncode == cli.NOT_FOUND == 3
    assert done.stdout == ""
    assert done.stderr == (
        "layercfg: unknown device 'edge-99': no group matches it and it has no "
        "file of its own\n"
    )


@pytest.mark.parametrize("host", ["lab-orin-*", "../groups/lab-orins", "edge 01"])
def test_resolve_refuses_what_is_not_a_hostname(example: Path, host: str) -> None:
    code, out, err = _run("resolve", host, "--repo", str(example))

    assert (code, out) == (cli.USAGE, "")
    assert err.startswith(f"layercfg: {host!r} is not a hostname")


def test_resolve_reads_state_dir(example: Path, tmp_path: Path) -> None:
    state = _write_state(tmp_path / "elsewhere")

    code, out, _ = _run(
        "resolve", "edge-02", "--repo", str(example), "--state-dir", str(state)
    )

    assert code == cli.OK
    assert json.loads(out)["metrics"]["jetson_fan_rpm"] is True


def test_resolve_invalid_mix_of_groups(tmp_path: Path) -> None:
    repo = write_repo(
        tmp_path,
        {
            **BASE,
            "overrides/groups/a.yaml": "match: 'lab-*'\nconfig:\n  port: 9200\n"
            "  device_type: jetson\n",
            "overrides/groups/b.yaml": "match: 'lab-1'\npriority: 1\nconfig:\n"
            "  reload_port: 9200\n",
        },
    )

    code, out, err = _run("resolve", "lab-1", "--repo", str(repo))

    assert (code, out) == (cli.PROBLEMS, "")
    assert err.splitlines() == [
        (
            "overrides/groups/a.yaml:3: lab-1: $.port: 9200 is also the metrics port; "
            "the two must differ"
        ),
        (
            "overrides/groups/b.yaml:4: lab-1: $.reload_port: 9200 is also the metrics "
            "port; the two must differ"
        ),
        "2 problems found",
    ]


# resolve --explain


def test_explain_lists_layers_in_order(example: Path) -> None:
    code, out, _ = _run(
        "resolve", "lab-orin-03-debug", "--repo", str(example), "--explain"
    )

    assert code == cli.OK
    assert out.splitlines()[:8] == [
        "lab-orin-03-debug: jetson_orin",
        "Layers, each overriding the ones above it:",
        "  1. defaults  profiles/defaults.yaml",
        "  2. profile   profiles/jetson_orin.yaml",
        "  3. group     overrides/groups/lab-orins.yaml",
        "  4. group     overrides/groups/debug.yaml",
        "  5. device    overrides/devices/lab-orin-03-debug.yaml",
        "",
    ]


@pytest.mark.parametrize(
    "row",
    [
        pytest.param(
            [
                "$.interval",
                "1",
                "overrides/groups/debug.yaml:9",
                "2",
                "from",
                "overrides/groups/lab-orins.yaml:6",
            ],
            id="group-over-group",
        ),
        pytest.param(
            ["$.port", "9100", "profiles/defaults.yaml:4"], id="untouched-default"
        ),
        pytest.param(
            [
                "$.metrics.jetson_cpu_core0_freq_mhz",
                "true",
                "overrides/devices/lab-orin-03-debug.yaml:3",
                "false",
                "from",
                "profiles/jetson_orin.yaml:36",
            ],
            id="device-over-profile",
        ),
        pytest.param(
            ["$.ina260.i2c_address", '"0x40"', "overrides/groups/lab-orins.yaml:8"],
            id="string-value-as-json",
        ),
    ],
)
def test_explain_row_per_value(example: Path, row: list[str]) -> None:
    _, out, _ = _run(
        "resolve", "lab-orin-03-debug", "--repo", str(example), "--explain"
    )

    assert row in _table(out)


def test_explain_table_is_aligned(example: Path) -> None:
    _, out, _ = _run(
        "resolve", "lab-orin-03-debug", "--repo", str(example), "--explain"
    )

    lines = out.splitlines()[8:]
    header = lines[0]
    assert header.split() == ["PATH", "VALUE", "SET", "BY", "REPLACED"]
    column = header.index("SET BY")
    assert {line[column - 2 : column] for line in lines[1:]} == {"  "}
    assert all(line[column] != " " for line in lines[1:])
    explanation = load_fleet(example).explain("lab-orin-03-debug")
    assert explanation is not None and len(lines) == 1 + len(explanation.origins)


def test_explain_names_device_written_values(example: Path) -> None:
    _write_state(example / "state")

    _, out, _ = _run("resolve", "edge-02", "--repo", str(example), "--explain")

    assert "  3. state     state/devices/edge-02.json" in out.splitlines()
    row = next(line for line in out.splitlines() if "jetson_fan_rpm" in line)
    assert row.split("  ")[-1].strip() == (
        "state/devices/edge-02.json (written by the device at 2026-03-04T05:06:07Z)"
    )


def test_explain_unknown_device(example: Path) -> None:
    code, out, err = _run("resolve", "edge-99", "--repo", str(example), "--explain")

    assert (code, out) == (cli.NOT_FOUND, "")
    assert "'edge-99'" in err


# validate


def test_validate_example_fleet(example: Path) -> None:
    code, out, err = _run("validate", "--repo", str(example))

    revision = load_fleet(example).revision
    assert (code, out, err) == (
        cli.OK,
        f"OK: 14 devices, 4 groups, revision {revision}\n",
        "",
    )


def test_validate_broken_file_names_file_and_line(example: Path) -> None:
    (example / "overrides/devices/edge-02.yaml").write_text(
        "device_type: jetson_xavier\ninterval: 2\ninterval: 3\n"
    )

    done = _shell(str(LAYERCFG), "validate", "--repo", str(example))

    assert (done.returncode, done.stdout) == (cli.PROBLEMS, "")
    assert done.stderr == (
        "overrides/devices/edge-02.yaml:3: duplicate key 'interval' (first set on "
        "line 2)\n1 problem found\n"
    )


def test_validate_reports_every_problem(example: Path) -> None:
    (example / "overrides/devices/edge-01.yaml").write_text(
        "device_type: jetson_orin\nport: 80\n"
    )
    (example / "overrides/devices/edge-02.yaml").write_text("- jetson_xavier\n")
    (example / "overrides/groups/shelly-plugs.yaml").write_text(
        "match: 'shelly-plug-*'\nconfig:\n  device_type: shelly\n  intervall: 5\n"
    )

    code, out, err = _run("validate", "--repo", str(example))

    assert (code, out) == (cli.PROBLEMS, "")
    lines = err.splitlines()
    assert lines[-1] == f"{len(lines) - 1} problems found"
    assert lines[:2] == [
        (
            "overrides/devices/edge-02.yaml:1: expected a mapping at the top level, "
            "found a sequence"
        ),
        (
            "overrides/groups/shelly-plugs.yaml:4: any host matching shelly-plug-*: "
            "$.intervall: Additional properties are not allowed ('intervall' was "
            "unexpected)"
        ),
    ]
    assert (
        "overrides/devices/edge-01.yaml:2: edge-01: $.port: 80 is less than the "
        "minimum of 1024"
    ) in lines
    assert sum("shelly-plug-0" in line for line in lines) == 2


def test_validate_reports_equal_priority_groups_that_disagree(example: Path) -> None:
    (example / "overrides/groups/lab-slow.yaml").write_text(
        "match: 'lab-orin-0?'\nconfig:\n  interval: 10\n"
    )

    code, _, err = _run("validate", "--repo", str(example))

    assert code == cli.PROBLEMS
    assert err.splitlines() == [
        (
            "overrides/groups/lab-slow.yaml:3: $.interval: groups 'lab-orins' and "
            "'lab-slow' have the same priority (0), can match the same host and set "
            "$.interval to different values; give one a higher priority"
        ),
        "1 problem found",
    ]


@pytest.mark.parametrize(
    "group",
    [
        pytest.param(
            "match: 'lab-orin-0?'\npriority: 1\nconfig:\n  interval: 10\n",
            id="priorities-differ",
        ),
        pytest.param(
            "match: 'lab-xavier-*'\nconfig:\n  device_type: jetson_xavier\n"
            "  interval: 10\n",
            id="globs-cannot-overlap",
        ),
    ],
)
def test_validate_accepts_groups_that_cannot_disagree(
    example: Path, group: str
) -> None:
    (example / "overrides/groups/lab-slow.yaml").write_text(group)

    code, out, err = _run("validate", "--repo", str(example))

    assert (code, err) == (cli.OK, "")
    assert out.startswith("OK: 14 devices, 5 groups, revision ")


def test_validate_missing_repo_is_a_usage_error(tmp_path: Path) -> None:
    code, out, err = _run("validate", "--repo", str(tmp_path / "nowhere"))

    assert (code, out) == (cli.USAGE, "")
    assert (
        err == f"layercfg: --repo: {str(tmp_path / 'nowhere')!r} is not a directory\n"
    )


def test_validate_empty_repo_lists_problem(tmp_path: Path) -> None:
    code, _, err = _run("validate", "--repo", str(tmp_path))

    assert code == cli.PROBLEMS
    assert err == (
        "schema/device-config.schema.json: the schema file is missing\n"
        "1 problem found\n"
    )


def test_validate_unlistable_folder_lists_problem(tmp_path: Path) -> None:
    repo = write_repo(tmp_path, {"profiles": "not a folder\n"})

    code, _, err = _run("validate", "--repo", str(repo))

    assert code == cli.PROBLEMS
    assert err == (
        "profiles: cannot read the folder: Not a directory\n"
        "1 problem found\n"
    )


# devices


def test_devices_table(example: Path) -> None:
    code, out, _ = _run("devices", "--repo", str(example))

    rows = _table(out)
    assert code == cli.OK
    assert rows[0] == ["HOST", "TYPE", "GROUPS", "FILES"]
    assert len(rows) == 1 + 14
    assert [
        "lab-orin-03-debug",
        "jetson_orin",
        "lab-orins,",
        "debug",
        "overrides/devices/lab-orin-03-debug.yaml",
    ] in rows
    assert ["edge-01", "jetson_orin", "-", "overrides/devices/edge-01.yaml"] in rows


def test_devices_broken_repo(example: Path) -> None:
    (example / "profiles/defaults.yaml").write_text("port: [\n")

    code, out, err = _run("devices", "--repo", str(example))

    assert (code, out) == (cli.PROBLEMS, "")
    assert err.startswith("profiles/defaults.yaml:2: ")


# Command line


@pytest.mark.parametrize(
    "argv",
    [
        pytest.param([], id="no-command"),
        pytest.param(["resolve"], id="no-host"),
        pytest.param(["frobnicate"], id="unknown-command"),
        pytest.param(["serve", "--port", "eighty"], id="port-not-a-number"),
        pytest.param(["serve", "--log-level", "loud"], id="unknown-log-level"),
        pytest.param(["validate", "--explain"], id="option-of-another-command"),
    ],
)
def test_bad_command_line_exits_with_usage(argv: list[str]) -> None:
    done = _shell(str(LAYERCFG), *argv)

    assert done.returncode == cli.USAGE == 2
    assert done.stderr.startswith("usage: layercfg")
    assert "Traceback" not in done.stderr


def test_exit_codes_are_distinct() -> None:
    codes = [cli.OK, cli.PROBLEMS, cli.USAGE, cli.NOT_FOUND]

    assert len(set(codes)) == len(codes)


def test_every_option_has_help() -> None:
    parser = cli.build_parser()
    commands = next(
        a for a in parser._actions if isinstance(a, argparse._SubParsersAction)
    )

    missing = [
        f"{name} {'/'.join(action.option_strings) or action.dest}"
        for name, sub in commands.choices.items()
        for action in sub._actions
        if not action.help
    ]
    assert missing == []


def test_serve_options_and_defaults() -> None:
    args = cli.build_parser().parse_args(["serve"])

    assert (
        args.repo,
        args.state_dir,
        args.host,
        args.port,
        args.workers,
        args.no_access_log,
        args.log_level,
    ) == (Path("."), None, "0.0.0.0", 8080, 1, False, "info")


def test_serve_hands_parsed_options_to_server(
    example: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from layercfg import server

    seen: list[argparse.Namespace] = []

    def serve(args: argparse.Namespace) -> int:
        seen.append(args)
        return 7

    monkeypatch.setattr(server, "serve", serve)
    argv = [
        "serve",
        "--repo",
        str(example),
        "--port",
        "9000",
        "--workers",
        "2",
        "--no-access-log",
        "--log-level",
        "debug",
        "--host",
        "127.0.0.1",
    ]

    code, _, _ = _run(*argv)

    assert code == 7
    assert (seen[0].port, seen[0].workers, seen[0].no_access_log) == (9000, 2, True)
    assert (seen[0].log_level, seen[0].host) == ("debug", "127.0.0.1")


def test_main_parses_and_runs(
    example: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = cli.main(["resolve", "edge-02", "--repo", str(example)])

    assert code == cli.OK
    assert json.loads(capsys.readouterr().out)["interval"] == 2
