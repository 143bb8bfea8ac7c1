"""Helpers for the write tests: what a server wrote, and requests that write."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import requests
from conftest import Server

TIMEOUT = 10
MERGE_PATCH = {"Content-Type": "application/merge-patch+json"}


def files(root: Path) -> dict[str, bytes]:
    """Every file under `root` by relative path, lock and temporary files aside."""
    if not root.exists():
        return {}
    return {
        str(path.relative_to(root)): path.read_bytes()
        for path in sorted(root.rglob("*"))
        if path.is_file() and not path.name.startswith(".")
    }


def stored(repo: Path, device: str) -> dict[str, Any]:
    """The state document the server wrote for `device`."""
    document: dict[str, Any] = json.loads(
        (repo / "state" / "devices" / f"{device}.json").read_text()
    )
    return document


def audit(repo: Path) -> list[dict[str, Any]]:
    path = repo / "state" / "audit.log"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines()]


def config(server: Server, device: str) -> dict[str, Any]:
    response = requests.get(f"{server.url}/config/{device}", timeout=TIMEOUT)
    response.raise_for_status()
    found: dict[str, Any] = response.json()
    return found


def put(server: Server, device: str, body: Any, **kwargs: Any) -> requests.Response:
    kwargs.setdefault("timeout", TIMEOUT)
    return requests.put(f"{server.url}/config/{device}", json=body, **kwargs)


def put_raw(
    server: Server, device: str, data: Any, content_type: str = "application/json"
) -> requests.Response:
    return requests.put(
        f"{server.url}/config/{device}",
        data=data,
        headers={"Content-Type": content_type},
        timeout=TIMEOUT,
    )


def patch(server: Server, device: str, body: Any, **kwargs: Any) -> requests.Response:
    return requests.patch(
        f"{server.url}/config/{device}",
        data=json.dumps(body),
        headers=MERGE_PATCH,
        timeout=TIMEOUT,
        **kwargs,
    )
