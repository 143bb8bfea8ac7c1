"""Who may write what: write tokens, device-writable paths and rate limits."""

from __future__ import annotations

import hmac
import math
import os
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from limits import RateLimitItem, parse
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter

from . import merge

TOKENS_ENV = "LAYERCFG_WRITE_TOKENS"
DEVICE_WRITABLE = ("metrics", "enabled_metrics")


class AuthConfigError(ValueError):
    """A token file or rate that cannot be used as given."""


def load_tokens(
    token_file: str | None, environ: Mapping[str, str] = os.environ
) -> tuple[bytes, ...]:
    """The write tokens of `token_file` (one a line) and of LAYERCFG_WRITE_TOKENS.

    Blank lines and lines starting with '#' are skipped. A token file that
    holds no token is refused, so a truncated file cannot open writes to all.
    """
    tokens = [t.strip() for t in environ.get(TOKENS_ENV, "").split(",")]
    if token_file is not None:
        from_file = _file_tokens(Path(token_file))
        if not from_file:
            raise AuthConfigError(
                f"--token-file: expected at least one token in {token_file}, found none"
            )
        tokens.extend(from_file)
    return tuple(dict.fromkeys(t.encode() for t in tokens if t))


def _file_tokens(path: Path) -> list[str]:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8"
        raise AuthConfigError(f"--token-file: cannot read {path}: {reason}") from None
    lines = (line.strip() for line in text.splitlines())
    return [line for line in lines if line and not line.startswith("#")]


def bearer_valid(header: str, tokens: tuple[bytes, ...]) -> bool:
    """Whether `header` is `Bearer <token>` with a configured token.

    Every token is compared, each in constant time, so the time taken tells
    nothing about which token came close.
    """
    scheme, _, given = header.strip().partition(" ")
    if scheme.lower() != "bearer" or not given.strip():
        return False
    candidate = given.strip().encode("latin-1")
    matches = [hmac.compare_digest(candidate, token) for token in tokens]
    return any(matches)


def parse_paths(dotted: Iterable[str]) -> tuple[tuple[str, ...], ...]:
    return tuple(tuple(p.split(".")) for p in dotted if p)


def forbidden_paths(
    change: dict[str, Any], writable: tuple[tuple[str, ...], ...]
) -> list[str]:
    """The dotted paths `change` (a merge patch) touches outside `writable`."""
    touched = merge.leaves(change)
    return sorted(
        ".".join(path)
        for path in touched
        if not any(path[: len(allowed)] == allowed for allowed in writable)
    )


class RateLimit:
    """A moving window of write requests per client address, in this process."""

    def __init__(self, rate: str) -> None:
        self.item = parse_rate(rate)
        self._limiter = MovingWindowRateLimiter(MemoryStorage())

    def retry_after(self, client: str) -> int | None:
        """Count one request of `client`; the seconds to wait when over the limit."""
        if self._limiter.hit(self.item, client):
            return None
        reset = self._limiter.get_window_stats(self.item, client).reset_time
        return max(1, math.ceil(reset - time.time()))


def parse_rate(rate: str) -> RateLimitItem:
    """`rate` such as `20/minute` or `100 per hour`; AuthConfigError when unusable."""
    try:
        return parse(rate)
    except ValueError:
        raise AuthConfigError(
            f"--write-rate: expected a rate such as '20/minute', found {rate!r}"
        ) from None
