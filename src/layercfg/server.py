"""The HTTP service: a thin Starlette app over the resolved fleet."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import signal
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from contextlib import asynccontextmanager
from dataclasses import asdict
from pathlib import Path
from typing import Any

import orjson
import uvicorn
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from . import __version__, _openapi
from ._auth import DEVICE_WRITABLE, AuthConfigError, load_tokens, parse_rate
from ._metrics import CONTENT_TYPE
from ._reload import Watcher
from ._service import Options, Service
from ._writes import Writes
from .errors import RepositoryError, ResolutionError
from .fleet import Fleet, Resolved, load_fleet
from .layers import valid_hostname

logger = logging.getLogger("layercfg")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

EXIT_OK = 0
EXIT_INVALID_REPO = 1
EXIT_BAD_OPTIONS = 2
_OPTIONS_ENV = "LAYERCFG_SERVER_OPTIONS"
_KNOWN_METHODS = {"GET", "HEAD", "PUT", "PATCH", "POST", "DELETE", "OPTIONS"}


def _json(
    status: int, document: Any, headers: dict[str, str] | None = None
) -> Response:
    return Response(
        orjson.dumps(document), status, headers, media_type="application/json"
    )


def _error(status: int, error: str, message: str, **extra: Any) -> Response:
    return _json(status, {"error": error, "message": message, **extra})


def _not_found(device_id: str) -> Response:
    return _error(
        404,
        "Device not found",
        "No configuration available for this device",
        device_id=device_id,
    )


def _invalid_id(device_id: str) -> Response:
    return _error(
        400,
        "Invalid device id",
        "A device id is a hostname: letters, digits, '-' and '.', labels of 1 "
        "to 63 characters, at most 253 in all",
        device_id=device_id,
    )


def _unservable(exc: ResolutionError) -> Response:
    return _error(
        500,
        "Invalid configuration",
        "The merged config of this device fails validation; fix the layer files",
        device_id=exc.device,
        problems=[p.to_json() for p in exc.problems],
    )


class ConfigEndpoint:
    """`/config/{device_id}`: the hot path sends prepared bytes and headers."""

    def __init__(self, service: Service) -> None:
        self.service = service
        self.writes = Writes(service)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # devices with files of their own were served by _Front already
        method = scope["method"]
        device_id: str = scope["path_params"]["device_id"]
        resolved = await self._slow_path(scope, receive, method, device_id)
        if isinstance(resolved, Response):
            await resolved(scope, receive, send)
        else:
            await _send_config(scope, send, resolved, method == "HEAD")

    async def _slow_path(
        self, scope: Scope, receive: Receive, method: str, device_id: str
    ) -> Resolved | Response:
        # isascii first: str.lower() folds some non-ASCII letters into ASCII ones
        if not device_id.isascii() or not valid_hostname(device_id.lower()):
            return _invalid_id(device_id)
        if method in ("PUT", "PATCH"):
            return await self.writes(Request(scope, receive), method, device_id)
        if method not in ("GET", "HEAD"):
            return _method_not_allowed(["GET", "HEAD", "PATCH", "PUT"])
        explain = Request(scope, receive).query_params.get("explain", "").lower()
        fleet = self.service.fleet
        try:
            if explain in ("1", "true", "yes"):
                return _explain(fleet, device_id)
            resolved = fleet.resolve(device_id)
        except ResolutionError as exc:
            self.service.metrics.resolution_failures.inc()
            logger.error("Refused to serve %s: %s", device_id, exc)
            return _unservable(exc)
        return _not_found(device_id) if resolved is None else resolved


async def _send_config(scope: Scope, send: Send, resolved: Resolved, head: bool) -> int:
    """Send the prepared response of `resolved`; returns the status sent."""
    if _etag_matches(scope, resolved.etag):
        start = {
            "type": "http.response.start",
            "status": 304,
            "headers": resolved.headers[1:3],
        }
        await send(start)
        await send({"type": "http.response.body", "body": b""})
        return 304
    start = {"type": "http.response.start", "status": 200, "headers": resolved.headers}
    await send(start)
    await send({"type": "http.response.body", "body": b"" if head else resolved.body})
    return 200


def _etag_matches(scope: Scope, etag: str) -> bool:
    """Whether If-None-Match (any number of header lines) names `etag` or `*`."""
    for name, value in scope["headers"]:
        if name == b"if-none-match":
            for tag in value.decode("latin-1").split(","):
                tag = tag.strip().removeprefix("W/")
                if tag == etag or tag == "*":
                    return True
    return False


def _method_not_allowed(allowed: list[str]) -> Response:
    return _json(
        405,
        {
            "error": "Method not allowed",
            "message": "Allowed: " + ", ".join(allowed),
            "allowed": allowed,
        },
        {"Allow": ", ".join(allowed)},
    )


def _explain(fleet: Fleet, device_id: str) -> Response:
    explanation = fleet.explain(device_id)
    if explanation is None:
        return _not_found(device_id)
    resolved = explanation.resolved
    document = {
        "device_id": explanation.hostname,
        "device_type": resolved.device_type,
        "etag": resolved.etag,
        "layers": [
            {"kind": la.kind, "name": la.name, "file": la.file}
            for la in resolved.layers
        ],
        "values": [
            {
                "path": o.path,
                "value": o.value,
                "file": o.layer.file,
                "line": o.line,
                "kind": o.layer.kind,
                **({"written_at": o.layer.written_at} if o.layer.written_at else {}),
                "replaced": [
                    {"file": la.file, "line": line, "value": value}
                    for la, line, value in o.replaced
                ],
            }
            for o in explanation.origins
        ],
    }
    return _json(200, document)


async def health(request: Request) -> Response:
    service: Service = request.app.state.service
    fleet = service.fleet
    document: dict[str, Any] = {
        "status": "degraded" if service.problems else "healthy",
        "service": "layercfg",
        "version": __version__,
        "revision": fleet.revision,
        "devices": fleet.device_count,
    }
    if service.problems:
        document["reason"] = (
            "the files changed and the new set is invalid; "
            "serving the last good revision"
        )
        document["problems"] = service.problems
    return _json(200, document)


async def devices(request: Request) -> Response:
    fleet: Fleet = request.app.state.service.fleet
    listing = [
        {**asdict(info), "groups": list(info.groups), "files": list(info.files)}
        for info in fleet.devices()
    ]
    return _json(200, {"revision": fleet.revision, "devices": listing})


async def metrics(request: Request) -> Response:
    service: Service = request.app.state.service
    return Response(service.metrics.render(), media_type=CONTENT_TYPE)


async def openapi(request: Request) -> Response:
    fleet: Fleet = request.app.state.service.fleet
    return _json(200, _openapi.document(fleet.schema.document))


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if exc.status_code == 404:
        return _error(404, "Not found", f"No route for {request.url.path}")
    if exc.status_code == 405:
        allowed = sorted(
            (exc.headers or {}).get("Allow", "").replace(" ", "").split(",")
        )
        return _method_not_allowed(allowed)
    return _error(exc.status_code, "HTTP error", str(exc.detail))


async def _server_error(request: Request, exc: Exception) -> Response:
    logger.exception("Request %s %s failed", request.method, request.url.path)
    return _error(500, "Internal server error", "An unexpected error occurred")


async def reload(request: Request) -> Response:
    service: Service = request.app.state.service
    writes: Writes = request.app.state.writes
    refusal = writes.operator_refusal(request.headers.get("authorization"))
    if refusal is not None:
        return refusal
    try:
        fleet = await service.update(None)
    except RepositoryError as exc:
        return _error(
            422,
            "Invalid repository",
            "The files have problems; still serving the last good revision",
            revision=service.fleet.revision,
            problems=[p.to_json() for p in exc.problems],
        )
    return _json(
        200,
        {
            "status": "reloaded",
            "revision": fleet.revision,
            "devices": fleet.device_count,
        },
    )


@asynccontextmanager
async def _watching(service: Service) -> AsyncIterator[None]:
    """Reload on file changes and on SIGHUP while the app runs."""
    fleet = service.fleet
    (fleet.state_dir / "devices").mkdir(parents=True, exist_ok=True)
    stop = asyncio.Event()
    watcher = Watcher(fleet.repo, fleet.state_dir, service.update)
    task = asyncio.create_task(watcher.run(stop))
    loop = asyncio.get_running_loop()
    pending: set[asyncio.Task[Any]] = set()

    def on_hangup() -> None:
        logger.info("Received SIGHUP; reading every file again")
        job = loop.create_task(watcher._apply(None))
        pending.add(job)
        job.add_done_callback(pending.discard)

    loop.add_signal_handler(signal.SIGHUP, on_hangup)
    try:
        yield
    finally:
        loop.remove_signal_handler(signal.SIGHUP)
        stop.set()
        await task


class _Front:
    """Normalises the paths real clients produce and counts every response.

    A server URL configured with a trailing slash gives `//config/x`; some
    clients add a trailing slash. Both are served as the canonical path, with
    no redirect (the exporter would not follow one for a PUT).
    """

    def __init__(self, app: Starlette, service: Service) -> None:
        self.app = app
        self.service = service
        self.metrics = service.metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        if path.startswith("//") or (path.endswith("/") and len(path) > 1):
            path = scope["path"] = "/" + path.strip("/")
        if await self._served_ready(scope, send, path):
            return
        method = scope["method"] if scope["method"] in _KNOWN_METHODS else "OTHER"
        route = _route_of(scope["path"])
        metrics = self.metrics

        async def counted(message: Message) -> None:
            if message["type"] == "http.response.start":
                metrics.count(route, method, message["status"])
            await send(message)

        if not path.isprintable():
            # Starlette's route patterns end in `$`, which also matches before
            # a final newline: `/config/edge-01%0a` would be edge-01
            refused = (
                _invalid_id(path.removeprefix("/config/"))
                if path.startswith("/config/")
                else _error(400, "Invalid path", "expected printable characters")
            )
            await refused(scope, receive, counted)
            return
        await self.app(scope, receive, counted)

    async def _served_ready(self, scope: Scope, send: Send, path: str) -> bool:
        """The hot path: a device with files of its own gets its prepared
        response without routing. Only an exact match is served, and every
        name in the table is a valid hostname, so nothing unchecked gets by."""
        method = scope["method"]
        if (
            method not in ("GET", "HEAD")
            or not path.startswith("/config/")
            or scope["query_string"]
        ):
            return False
        device_id = path[len("/config/") :]
        if not device_id.isascii():  # str.lower() folds some letters into ASCII
            return False
        resolved = self.service.fleet._entries.get(device_id.lower())
        if resolved is None:
            return False
        status = await _send_config(scope, send, resolved, method == "HEAD")
        self.metrics.count(CONFIG_ROUTE, method, status)
        return True


CONFIG_ROUTE = "/config/{device_id}"
_ROUTES = ("/health", "/devices", "/metrics", "/-/reload", "/openapi.json")


def _route_of(path: str) -> str:
    if path.startswith("/config/"):
        return CONFIG_ROUTE
    return path if path in _ROUTES else "other"


def create_app(fleet: Fleet, options: Options | None = None) -> _Front:
    """The ASGI app serving `fleet`."""
    service = Service(fleet, options or Options(repo=str(fleet.repo)))

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        logger.info(
            "Serving revision %s with %d devices from %s",
            fleet.revision,
            fleet.device_count,
            fleet.repo,
        )
        async with _watching(service):
            yield
        logger.info("Stopped serving %s", fleet.repo)

    config = ConfigEndpoint(service)
    app = Starlette(
        routes=[
            Route("/config/{device_id:path}", config),
            Route("/health", health),
            Route("/devices", devices),
            Route("/metrics", metrics),
            Route("/openapi.json", openapi),
            Route("/-/reload", reload, methods=["POST"]),
        ],
        exception_handlers={HTTPException: _http_error, Exception: _server_error},
        lifespan=lifespan,
    )
    app.router.redirect_slashes = False  # _Front already strips slashes
    app.state.service = service
    app.state.writes = config.writes
    return _Front(app, service)


def app_from_environment() -> _Front:
    """App factory for uvicorn worker processes: options come in the environment."""
    options = Options(**json.loads(os.environ[_OPTIONS_ENV]))
    _configure_logging(options.log_level)
    return create_app(_load(options), options)


def _load(options: Options) -> Fleet:
    repo = Path(options.repo)
    state = Path(options.state_dir) if options.state_dir else None
    logger.info("Loading %s", repo)
    started = time.perf_counter()
    fleet = load_fleet(repo, state)
    logger.info(
        "Loaded revision %s with %d devices in %.1f s",
        fleet.revision,
        fleet.device_count,
        time.perf_counter() - started,
    )
    return fleet


def serve(args: argparse.Namespace) -> int:
    """Validate the repository, then serve it with uvicorn until stopped."""
    _configure_logging(args.log_level)
    options = Options(
        repo=str(args.repo),
        state_dir=str(args.state_dir) if args.state_dir else None,
        log_level=args.log_level,
        allow_registration=args.allow_registration,
        token_file=args.token_file,
        device_writable=tuple(args.device_writable or DEVICE_WRITABLE),
        write_rate=args.write_rate,
        max_body_bytes=args.max_body_bytes,
    )
    try:
        load_tokens(options.token_file)
        parse_rate(options.write_rate)
    except AuthConfigError as exc:
        print(f"layercfg: {exc}", file=sys.stderr)
        return EXIT_BAD_OPTIONS
    try:
        fleet = _load(options)
    except RepositoryError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        print(
            f"Refusing to start: {len(exc.problems)} problem(s) in {args.repo}",
            file=sys.stderr,
        )
        return EXIT_INVALID_REPO
    settings: dict[str, Any] = {
        "host": args.host,
        "port": args.port,
        "access_log": not args.no_access_log,
        "log_level": args.log_level,
        "http": "httptools",
        "loop": "uvloop",
        "log_config": None,
        "ssl_certfile": args.ssl_certfile,
        "ssl_keyfile": args.ssl_keyfile,
    }
    if args.workers > 1:
        os.environ[_OPTIONS_ENV] = json.dumps(asdict(options))
        uvicorn.run(
            "layercfg.server:app_from_environment",
            factory=True,
            workers=args.workers,
            **settings,
        )
    else:
        uvicorn.run(create_app(fleet, options), **settings)
    return EXIT_OK


def _configure_logging(level: str) -> None:
    logging.basicConfig(
        level=level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    # watchfiles reports every batch of events; layercfg logs what it loads
    logging.getLogger("watchfiles").setLevel(logging.WARNING)
