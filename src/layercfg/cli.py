"""The `layercfg` command: resolve, explain, validate and list devices, or serve."""

from __future__ import annotations

import argparse
import ssl
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

import orjson

from .errors import Problem, RepositoryError, ResolutionError
from .fleet import Explanation, Fleet, Origin, load_fleet
from .layers import Layer, scan, valid_hostname
from .schema import json_path

# Exit codes. USAGE is the code argparse itself exits with on a bad command line.
OK = 0
PROBLEMS = 1
USAGE = 2
NOT_FOUND = 3

_EPILOG = (
    f"exit status: {OK} success, {PROBLEMS} the repository has problems, "
    f"{USAGE} bad command line, {NOT_FOUND} unknown device"
)
_LOG_LEVELS = ("debug", "info", "warning", "error")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="layercfg",
        description="Layered configs for fleets of edge-metrics-exporter devices.",
        epilog=_EPILOG,
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    resolve = _command(commands, "resolve", "Print the config a device is served.")
    resolve.add_argument("host", metavar="HOST", help="Hostname of the device.")
    resolve.add_argument(
        "--explain",
        action="store_true",
        help="Show the layers applied and which file set each value instead.",
    )
    _command(commands, "validate", "Check every file and device of the repository.")
    _command(commands, "devices", "List the devices that have files of their own.")
    _add_serve(commands)
    return parser


def _command(commands: Any, name: str, summary: str) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = commands.add_parser(
        name, help=summary, description=summary, epilog=_EPILOG
    )
    parser.add_argument(
        "--repo",
        metavar="DIR",
        type=Path,
        default=Path("."),
        help="Config repository holding profiles/, overrides/ and schema/.",
    )
    parser.add_argument(
        "--state-dir",
        metavar="DIR",
        type=Path,
        help="Directory of the configs devices wrote back (default: REPO/state).",
    )
    return parser


def _add_serve(commands: Any) -> None:
    serve = _command(commands, "serve", "Serve device configs over HTTP.")
    serve.add_argument(
        "--host",
        default="0.0.0.0",
        help="Address to listen on (default: %(default)s).",
    )
    serve.add_argument(
        "--port",
        type=int,
        default=8080,
        help="Port to listen on (default: %(default)s).",
    )
    serve.add_argument(
        "--workers",
        metavar="N",
        type=int,
        default=1,
        help="Number of worker processes (default: %(default)s).",
    )
    serve.add_argument(
        "--no-access-log",
        action="store_true",
        help="Do not log one line per request.",
    )
    serve.add_argument(
        "--log-level",
        choices=_LOG_LEVELS,
        default="info",
        help="Lowest level of the messages logged (default: %(default)s).",
    )
    _add_write_options(serve)
    serve.add_argument(
        "--ssl-certfile",
        metavar="FILE",
        type=Path,
        help="PEM certificate chain; serve HTTPS instead of HTTP.",
    )
    serve.add_argument(
        "--ssl-keyfile",
        metavar="FILE",
        type=Path,
        help="PEM private key of the certificate, unless the certificate file has it.",
    )


def _add_write_options(serve: argparse.ArgumentParser) -> None:
    serve.add_argument(
        "--allow-registration",
        action="store_true",
        help="Let a PUT for an unknown device create its state, making it known.",
    )
    serve.add_argument(
        "--token-file",
        metavar="FILE",
        help="File of write tokens, one a line (more may come in "
        "LAYERCFG_WRITE_TOKENS); with no token at all, writes are open.",
    )
    serve.add_argument(
        "--device-writable",
        metavar="PATH",
        action="append",
        help="Dotted config path a write without a token may change; repeatable "
        "(default: metrics and enabled_metrics).",
    )
    serve.add_argument(
        "--write-rate",
        metavar="RATE",
        default="20/minute",
        help="Writes each client address may make (default: %(default)s).",
    )
    serve.add_argument(
        "--max-body-bytes",
        metavar="N",
        type=int,
        default=65_536,
        help="Largest request body accepted, in bytes (default: %(default)s).",
    )


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return run(args, sys.stdout, sys.stderr)


def run(args: argparse.Namespace, stdout: TextIO, stderr: TextIO) -> int:
    """Carry out one parsed command line; returns the exit status."""
    if not args.repo.is_dir():
        stderr.write(f"layercfg: --repo: {str(args.repo)!r} is not a directory\n")
        return USAGE
    if args.command == "serve":
        from .server import serve

        problem = _tls_problem(args.ssl_certfile, args.ssl_keyfile)
        if problem:
            stderr.write(f"layercfg: {problem}\n")
            return USAGE
        return serve(args)
    try:
        fleet = load_fleet(args.repo, args.state_dir)
    except RepositoryError as exc:
        return _report(exc.problems, stderr)
    if args.command == "validate":
        return _validate(fleet, stdout)
    if args.command == "devices":
        return _devices(fleet, stdout)
    return _resolve(fleet, args, stdout, stderr)


def _tls_problem(certfile: Path | None, keyfile: Path | None) -> str | None:
    if certfile is None:
        return "--ssl-keyfile: needs --ssl-certfile" if keyfile else None
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:
        context.load_cert_chain(certfile, keyfile)
    except (OSError, ssl.SSLError) as exc:
        return f"--ssl-certfile: cannot use {str(certfile)!r}: {exc}"
    return None


def _report(problems: list[Problem], stderr: TextIO) -> int:
    stderr.writelines(f"{problem}\n" for problem in problems)
    count = len(problems)
    stderr.write(f"{count} problem{'' if count == 1 else 's'} found\n")
    return PROBLEMS


def _validate(fleet: Fleet, stdout: TextIO) -> int:
    refs = scan(fleet.repo, fleet.state_dir).values()
    groups = sum(1 for ref in refs if ref.kind == "group")
    stdout.write(
        f"OK: {fleet.device_count} devices, {groups} groups, "
        f"revision {fleet.revision}\n"
    )
    return OK


def _devices(fleet: Fleet, stdout: TextIO) -> int:
    rows = [
        (
            info.hostname,
            info.device_type,
            ", ".join(info.groups) or "-",
            ", ".join(info.files),
        )
        for info in fleet.devices()
    ]
    _table(("HOST", "TYPE", "GROUPS", "FILES"), rows, stdout)
    return OK


def _resolve(
    fleet: Fleet, args: argparse.Namespace, stdout: TextIO, stderr: TextIO
) -> int:
    host: str = args.host
    if not host.isascii() or not valid_hostname(host.lower()):
        stderr.write(
            f"layercfg: {host!r} is not a hostname (expected letters, digits, '-' "
            "and '.', labels of 1 to 63 characters)\n"
        )
        return USAGE
    try:
        found = fleet.explain(host) if args.explain else fleet.resolve(host)
    except ResolutionError as exc:
        return _report(exc.problems, stderr)
    if found is None:
        stderr.write(
            f"layercfg: unknown device {args.host!r}: no group matches it and it has "
            "no file of its own\n"
        )
        return NOT_FOUND
    if isinstance(found, Explanation):
        _explain(found, stdout)
    else:
        stdout.write(_json(found.config, indent=True) + "\n")
    return OK


def _explain(explanation: Explanation, stdout: TextIO) -> None:
    resolved = explanation.resolved
    stdout.write(f"{explanation.hostname}: {resolved.device_type}\n")
    stdout.write("Layers, each overriding the ones above it:\n")
    stdout.writelines(
        f"  {number}. {layer.kind:<9} {layer.file}\n"
        for number, layer in enumerate(resolved.layers, 1)
    )
    stdout.write("\n")
    rows = [_origin_row(origin) for origin in explanation.origins]
    _table(("PATH", "VALUE", "SET BY", "REPLACED"), rows, stdout)


def _origin_row(origin: Origin) -> tuple[str, ...]:
    replaced = ""
    if origin.replaced:
        layer, line, value = origin.replaced[-1]
        replaced = f"{_json(value)} from {_where(layer, line)}"
    return (
        json_path(origin.path),
        _json(origin.value),
        _where(origin.layer, origin.line),
        replaced,
    )


def _where(layer: Layer, line: int | None) -> str:
    if layer.kind == "state":
        when = f" at {layer.written_at}" if layer.written_at else ""
        return f"{layer.file} (written by the device{when})"
    return layer.file if line is None else f"{layer.file}:{line}"


def _json(value: Any, indent: bool = False) -> str:
    option = orjson.OPT_INDENT_2 if indent else 0
    return orjson.dumps(value, option=option).decode()


def _table(
    header: tuple[str, ...], rows: Sequence[tuple[str, ...]], out: TextIO
) -> None:
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        cells = (cell.ljust(width) for cell, width in zip(row, widths, strict=True))
        out.write("  ".join(cells).rstrip() + "\n")
