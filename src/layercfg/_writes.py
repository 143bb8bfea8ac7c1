"""PUT and PATCH of /config/{device_id}: what a write may change, and storing it.

A write never touches the operator's files. It replaces the device's state
layer with the smallest merge patch that makes the device served the config
asked for, so values it merely echoes back stay inherited and later edits of
profiles and groups still reach it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from . import _store, merge
from ._auth import (
    TOKENS_ENV,
    RateLimit,
    bearer_valid,
    forbidden_paths,
    load_tokens,
    parse_paths,
)
from ._body import BodyError, check_media_type, parse_object, read_limited
from .errors import RepositoryError, ResolutionError
from .fleet import Fleet, Resolved
from .layers import Layer
from .schema import json_path

if TYPE_CHECKING:
    from ._service import Service

logger = logging.getLogger("layercfg")

Loader = Callable[[Iterable[Path] | None], Fleet]

_MEDIA_TYPES = {
    "PUT": ("application/json",),
    "PATCH": ("application/merge-patch+json", "application/json"),
}


class Refusal(Exception):
    """A write the server declines, with the status and JSON to answer."""

    def __init__(
        self,
        status: int,
        error: str,
        message: str,
        headers: dict[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.error = error
        self.message = message
        self.headers = headers
        self.extra = extra

    def response(self) -> Response:
        document = {"error": self.error, "message": self.message, **self.extra}
        return Response(
            orjson.dumps(document),
            self.status,
            self.headers,
            media_type="application/json",
        )


@dataclass(frozen=True)
class Write:
    """One write request, its body read and parsed."""

    device_id: str
    method: str
    body: dict[str, Any]
    authorized: bool
    client: str
    if_match: str | None


class Writes:
    """Handles the writes of one server process."""

    def __init__(self, service: Service) -> None:
        options = service.options
        self.service = service
        self.tokens = load_tokens(options.token_file)
        self.writable = parse_paths(options.device_writable)
        self.registration = options.allow_registration
        self.max_body = options.max_body_bytes
        self.rate = RateLimit(options.write_rate)
        if not self.tokens:
            logger.warning(
                "Writes are open to every client: no write token is configured "
                "(--token-file or %s)",
                TOKENS_ENV,
            )

    async def __call__(self, request: Request, method: str, device_id: str) -> Response:
        client = request.client.host if request.client else "unknown"
        try:
            write = await self._read(request, method, device_id, client)
            # Shielded: a dropped connection must not stop a write half-way.
            return await asyncio.shield(self._locked(write))
        except Refusal as refusal:
            _log_refusal(method, device_id, client, refusal)
            return refusal.response()

    async def _read(
        self, request: Request, method: str, device_id: str, client: str
    ) -> Write:
        wait = self.rate.retry_after(client)
        if wait is not None:
            raise Refusal(
                429,
                "Too many requests",
                f"expected at most {self.rate.item} writes from one client, "
                f"found more; retry in {wait} s",
                {"Retry-After": str(wait)},
            )
        authorized = self._authorized(request.headers.get("authorization"))
        headers = request.headers
        try:
            check_media_type(headers.get("content-type"), _MEDIA_TYPES[method])
            raw = await read_limited(
                request.stream(), headers.get("content-length"), self.max_body
            )
            body = parse_object(raw)
        except BodyError as exc:
            raise Refusal(exc.status, exc.error, exc.message) from None
        return Write(
            device_id, method, body, authorized, client, headers.get("if-match")
        )

    def _authorized(self, header: str | None) -> bool:
        """Whether the request may change anything; 401 for a wrong token."""
        if not self.tokens:
            return True
        if header is None:
            return False
        if bearer_valid(header, self.tokens):
            return True
        raise Refusal(
            401,
            "Unauthorized",
            "expected Authorization: Bearer with a valid write token",
            {"WWW-Authenticate": 'Bearer realm="layercfg", error="invalid_token"'},
        )

    def operator_refusal(self, header: str | None) -> Response | None:
        """Why an operator action (a forced reload) is refused; None if it is not.

        With write tokens configured it needs one, like any change that is
        not a device syncing its metrics.
        """
        try:
            if self._authorized(header):
                return None
        except Refusal as refusal:
            return refusal.response()
        return Refusal(
            401,
            "Unauthorized",
            "expected Authorization: Bearer with a valid write token",
            {"WWW-Authenticate": 'Bearer realm="layercfg"'},
        ).response()

    async def _locked(self, write: Write) -> Response:
        owner = self.service.fleet.owner(write.device_id)
        if owner is None and not self.registration:
            # refused before the lock: no lock file for names nobody serves
            raise _not_found(write.device_id)
        name = owner or write.device_id.lower()
        if len(name) > _store.MAX_NAME:
            raise Refusal(
                400,
                "Invalid device id",
                f"expected a device id of at most {_store.MAX_NAME} characters to "
                f"store a config for, found {len(name)}",
                device_id=write.device_id,
            )
        resolved = await self.service.transact(
            lambda load: self._store(load, write, name)
        )
        return Response(
            orjson.dumps({"status": "updated", "device_id": write.device_id}),
            200,
            {"ETag": resolved.etag},
            media_type="application/json",
        )

    def _store(self, load: Loader, write: Write, name: str) -> Resolved:
        """Check and store one write; runs in a worker thread, start to end.

        The file lock serialises the writes of a device across worker
        processes; within one, the service runs one update at a time.
        """
        state_dir = self.service.fleet.state_dir
        path = _store.state_path(state_dir, name)
        fd = _store.lock(state_dir, name)
        try:
            fleet = _refresh(load, path)
            old, old_etag = _current(fleet, write.device_id, self.registration)
            _check_if_match(write.if_match, old_etag, old is not None)
            desired = _desired(write, old or {})
            if not write.authorized:
                self._check_writable(old or {}, desired)
            written_at = _store.now()
            document = _store.state_document(plan(fleet, name, desired), written_at)
            previous = _store.read(path)
            _store.replace(path, document)
            resolved = _publish(load, path, previous, write.device_id)
            _store.append_audit(
                state_dir,
                {
                    "time": written_at,
                    "device": name,
                    "client": write.client,
                    "method": write.method,
                    "change": merge.make_patch(old or {}, resolved.config),
                    "old_etag": old_etag,
                    "new_etag": resolved.etag,
                },
            )
        finally:
            _store.unlock(fd)
        logger.info(
            "Stored %s: %s from %s (%s)",
            path.name,
            write.method,
            write.client,
            "write token" if write.authorized and self.tokens else "no token",
        )
        return resolved

    def _check_writable(self, old: dict[str, Any], desired: dict[str, Any]) -> None:
        forbidden = forbidden_paths(merge.make_patch(old, desired), self.writable)
        if forbidden:
            raise Refusal(
                403,
                "Forbidden",
                "without a write token only "
                f"{', '.join('.'.join(p) for p in self.writable) or 'nothing'} may "
                f"change, found changes to {', '.join(forbidden)}",
                paths=forbidden,
            )


def _refresh(load: Loader, path: Path) -> Fleet:
    """The fleet with the device's state file as it is on disk now.

    Another worker process may have written it since this one last looked.
    """
    try:
        return load([path])
    except RepositoryError as exc:
        raise Refusal(
            503,
            "Service unavailable",
            "the layer files have problems; writes resume once they are fixed",
            problems=[p.to_json() for p in exc.problems],
        ) from None


def _publish(
    load: Loader, path: Path, previous: bytes | None, device_id: str
) -> Resolved:
    """Serve the written file at once; put `previous` back if it cannot be."""
    try:
        fleet = load([path])
    except RepositoryError as exc:
        _store.replace(path, previous)
        load([path])
        logger.error("Undid a write to %s that the server cannot load", path.name)
        raise Refusal(
            500,
            "Internal server error",
            "the written config could not be loaded; nothing was stored",
            problems=[p.to_json() for p in exc.problems],
        ) from None
    resolved = fleet.resolve(device_id)
    assert resolved is not None, "a device with a state layer is known"
    return resolved


def _current(
    fleet: Fleet, device_id: str, registration: bool
) -> tuple[dict[str, Any] | None, str | None]:
    """The config and ETag `device_id` is served; config None when it is unknown."""
    try:
        resolved = fleet.resolve(device_id)
    except ResolutionError:
        return {}, None  # known, but its config cannot be served as it is
    if resolved is not None:
        return resolved.config, resolved.etag
    if not registration:
        raise _not_found(device_id)
    return None, None


def _not_found(device_id: str) -> Refusal:
    return Refusal(
        404,
        "Device not found",
        "No configuration available for this device",
        device_id=device_id,
    )


def _check_if_match(header: str | None, etag: str | None, exists: bool) -> None:
    """RFC 9110 If-Match: `*` matches any existing device, tags compare strongly."""
    if header is None:
        return
    tags = [tag.strip() for tag in header.split(",")]
    if ("*" in tags and exists) or (etag is not None and etag in tags):
        return
    raise Refusal(
        412,
        "Precondition failed",
        f"expected If-Match to hold the device's current ETag {etag or '(none)'}, "
        f"found {header}",
        etag=etag,
    )


def _desired(write: Write, old: dict[str, Any]) -> dict[str, Any]:
    """The whole config the device asks for; null members mean absent."""
    if write.method == "PATCH":
        patched: dict[str, Any] = merge.merge_patch(old, write.body)
        return patched
    return _without_nulls(write.body)


def _without_nulls(value: dict[str, Any]) -> dict[str, Any]:
    return {
        key: _without_nulls(item) if isinstance(item, dict) else item
        for key, item in value.items()
        if item is not None
    }


def plan(fleet: Fleet, name: str, desired: dict[str, Any]) -> dict[str, Any]:
    """The state layer that has device `name` served exactly `desired`.

    It holds only what differs from what the device inherits from every other
    layer. Raises Refusal: 409 when the device's override file pins a value
    `desired` differs from, 422 when `desired` breaks the schema.
    """
    layers = _layers(fleet, name, desired)
    inherited = _merged(layers)
    state: dict[str, Any] = merge.make_patch(inherited, desired)
    _pin_type(layers, state, desired)
    own = [la for la in layers if la.kind == "device"]
    below = _merged([la for la in layers if la.kind != "device"])
    merge.apply_patch(below, state)
    served = _merged(own, below)
    pinned = sorted(
        ".".join(p) for p in merge.leaves(merge.make_patch(desired, served))
    )
    if pinned:
        raise Refusal(
            409,
            "Conflict",
            f"{own[0].file} sets {', '.join(pinned)} to other values; "
            "ask the operator to change that file",
            file=own[0].file,
            keys=pinned,
        )
    _validate(fleet, served)
    return state


def _pin_type(
    layers: tuple[Layer, ...], state: dict[str, Any], desired: dict[str, Any]
) -> None:
    """Keep device_type in `state` unless a layer other than a profile sets it.

    A profile states its own type but never picks it: the type comes from the
    highest other layer that sets one, so only the state layer can pick it
    for a device that no group or override types.
    """
    wanted = desired.get("device_type")
    setters = [la for la in layers if la.kind != "profile" and "device_type" in la.data]
    if isinstance(wanted, str) and (
        not setters or setters[-1].data["device_type"] != wanted
    ):
        state["device_type"] = wanted


def _layers(fleet: Fleet, name: str, desired: dict[str, Any]) -> tuple[Layer, ...]:
    """The other layers of `name`, with the profile its config will be typed by."""
    own = fleet.layer("device", name)
    device_type = desired.get("device_type")
    if own is not None and "device_type" in own.data:
        device_type = own.data["device_type"]
    layers = None
    if isinstance(device_type, str):
        layers = fleet.layers_for_type(name, device_type)
    if layers is None:
        _validate(fleet, desired)
        raise _invalid(
            [
                {
                    "json_path": "$.device_type",
                    "rule": "profile",
                    "message": f"device_type {device_type!r} has no profile "
                    f"(expected profiles/{device_type}.yaml)",
                    "value": device_type,
                }
            ]
        )
    return layers


def _merged(
    layers: list[Layer] | tuple[Layer, ...], start: dict[str, Any] | None = None
) -> dict[str, Any]:
    config: dict[str, Any] = start if start is not None else {}
    for layer in layers:
        merge.apply_patch(config, layer.data)
    return config


def _validate(fleet: Fleet, config: dict[str, Any]) -> None:
    """422 listing each value to blame for each rule `config` breaks."""
    problems = [
        {
            "json_path": json_path(path),
            "rule": violation.rule,
            "message": violation.message,
            "value": _at(config, path),
        }
        for violation in fleet.check(config)
        for path in violation.culprits
    ]
    if problems:
        raise _invalid(problems)


def _at(config: dict[str, Any], path: tuple[str | int, ...]) -> Any:
    value: Any = config
    for key in path:
        value = value[key]
    return value


def _invalid(problems: list[dict[str, Any]]) -> Refusal:
    return Refusal(
        422,
        "Invalid configuration",
        f"the config would break {len(problems)} rule(s) of the schema; "
        "nothing was stored",
        problems=problems,
    )


def _log_refusal(method: str, device_id: str, client: str, refusal: Refusal) -> None:
    level = logging.WARNING if refusal.status == 401 else logging.DEBUG
    logger.log(
        level,
        "Refused %s of %s from %s: %s %s",
        method,
        device_id,
        client,
        refusal.status,
        refusal.message,
    )
