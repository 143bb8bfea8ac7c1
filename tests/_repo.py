"""Small config repositories written into a test's temporary directory."""

from __future__ import annotations

import shutil
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SCHEMA = "schema/device-config.schema.json"

# The least a repository needs for devices of two types to resolve.
BASE = {
    "profiles/defaults.yaml": "interval: 1\nport: 9100\nreload_port: 9101\n",
    "profiles/jetson.yaml": "device_type: jetson\n",
    "profiles/raspberry_pi.yaml": "device_type: raspberry_pi\ninterval: 5\n",
}


def write_repo(root: Path, files: dict[str, str]) -> Path:
    """`root` holding the real schema and `files` (path: text); returns `root`."""
    (root / "schema").mkdir(parents=True, exist_ok=True)
    shutil.copyfile(ROOT / SCHEMA, root / SCHEMA)
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def copy_example(root: Path) -> Path:
    """A writable copy of the example fleet at `root`; returns `root`."""
    for name in ("profiles", "overrides", "schema"):
        shutil.copytree(ROOT / name, root / name)
    return root
