"""Reading a write request's JSON body: media type, size, encoding and shape."""

from __future__ import annotations

import json
import math
from collections.abc import AsyncIterator
from typing import Any, NoReturn

MAX_DEPTH = 32
_INT_LIMIT = 2**63  # what the served bodies' JSON encoder can write


class BodyError(Exception):
    """A request body the server refuses, with the status and JSON to answer."""

    def __init__(self, status: int, error: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.error = error
        self.message = message


class _Refused(ValueError):
    """Raised from inside the JSON decoder's hooks."""

    def __init__(self, error: str, message: str) -> None:
        super().__init__(message)
        self.error = error
        self.message = message


def check_media_type(header: str | None, accepted: tuple[str, ...]) -> None:
    """Raise a 415 BodyError unless `header` names one of `accepted` in UTF-8."""
    media, _, params = (header or "").partition(";")
    media = media.strip().lower()
    charset = _charset(params)
    if media in accepted and charset in (None, "utf-8", "utf8"):
        return
    found = repr(header) if header else "no Content-Type"
    raise BodyError(
        415,
        "Unsupported media type",
        f"expected Content-Type {' or '.join(accepted)} (UTF-8), found {found}",
    )


def _charset(params: str) -> str | None:
    for param in params.split(";"):
        name, _, value = param.partition("=")
        if name.strip().lower() == "charset":
            return value.strip().strip('"').lower()
    return None


async def read_limited(
    chunks: AsyncIterator[bytes], declared: str | None, limit: int
) -> bytes:
    """The whole body, or a 413 BodyError as soon as it is known to exceed `limit`.

    A declared Content-Length over the limit is refused before any byte is
    read; a body without one (or lying about it) is counted while it arrives.
    """
    if declared is not None:
        if not declared.strip().isdigit():
            raise BodyError(
                400,
                "Invalid Content-Length",
                f"expected a number of bytes, found {declared!r}",
            )
        if int(declared) > limit:
            raise _too_large(limit, f"Content-Length is {int(declared)}")
    received = bytearray()
    async for chunk in chunks:
        received += chunk
        if len(received) > limit:
            raise _too_large(limit, f"more than {limit} bytes arrived")
    return bytes(received)


def _too_large(limit: int, found: str) -> BodyError:
    return BodyError(
        413, "Body too large", f"expected a body of at most {limit} bytes, {found}"
    )


def parse_object(body: bytes) -> dict[str, Any]:
    """The JSON object `body` holds; a 400 BodyError says what is wrong with it."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BodyError(
            400,
            "Invalid encoding",
            f"expected UTF-8, found byte 0x{body[exc.start]:02x} at offset {exc.start}",
        ) from None
    try:
        value = json.loads(
            text,
            object_pairs_hook=_unique_keys,
            parse_constant=_no_constant,
            parse_float=_finite_float,
            parse_int=_bounded_int,
        )
    except _Refused as exc:
        raise BodyError(400, exc.error, exc.message) from None
    except json.JSONDecodeError as exc:
        raise BodyError(
            400,
            "Invalid JSON",
            f"{exc.msg.lower()} at line {exc.lineno} column {exc.colno}",
        ) from None
    except RecursionError:
        raise _too_deep() from None
    if not isinstance(value, dict):
        raise BodyError(
            400,
            "Not an object",
            f"expected a JSON object, found a JSON {_kind(value)}",
        )
    _check_tree(value)
    return value


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise _Refused(
                "Duplicate key",
                f"expected each key once in an object, found {key!r} twice",
            )
        result[key] = value
    return result


def _no_constant(name: str) -> NoReturn:
    raise _Refused("Invalid JSON", f"expected a JSON number, found {name}")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise _Refused("Invalid JSON", f"expected a finite number, found {text}")
    return value


def _bounded_int(text: str) -> int:
    # measured before int(): Python refuses to convert over 4300 digits at all
    value = int(text) if len(text) <= 20 else _INT_LIMIT
    if not -_INT_LIMIT <= value < _INT_LIMIT:
        shown = text if len(text) <= 24 else f"{text[:20]}... ({len(text)} digits)"
        raise _Refused(
            "Invalid JSON", f"expected an integer of at most 64 bits, found {shown}"
        )
    return value


def _too_deep() -> BodyError:
    return BodyError(
        400,
        "Too deeply nested",
        f"expected objects and arrays nested at most {MAX_DEPTH} deep",
    )


def _check_tree(root: dict[str, Any]) -> None:
    """Refuse nesting past MAX_DEPTH and strings holding lone surrogates."""
    pending: list[tuple[Any, int]] = [(root, 1)]
    while pending:
        value, depth = pending.pop()
        if isinstance(value, (dict, list)) and depth > MAX_DEPTH:
            raise _too_deep()
        if isinstance(value, dict):
            for key in value:
                _check_text(key)
            pending.extend((item, depth + 1) for item in value.values())
        elif isinstance(value, list):
            pending.extend((item, depth + 1) for item in value)
        elif isinstance(value, str):
            _check_text(value)


def _check_text(text: str) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        code = ord(text[exc.start])
        raise BodyError(
            400,
            "Invalid JSON",
            f"expected Unicode text, found a lone surrogate \\u{code:04x}",
        ) from None


def _kind(value: Any) -> str:
    if isinstance(value, list):
        return "array"
    if isinstance(value, str):
        return "string"
    if isinstance(value, bool):
        return "boolean"
    return "null" if value is None else "number"
