"""layercfg: layered YAML configuration for fleets of edge-metrics-exporter devices."""

from __future__ import annotations

from .errors import (
    ConfigFileError,
    LayercfgError,
    Problem,
    RepositoryError,
    ResolutionError,
)
from .fleet import DeviceInfo, Explanation, Fleet, Origin, Resolved, load_fleet
from .merge import make_patch, merge_patch

__version__ = "0.1.0"

__all__ = [
    "ConfigFileError",
    "DeviceInfo",
    "Explanation",
    "Fleet",
    "LayercfgError",
    "Origin",
    "Problem",
    "RepositoryError",
    "ResolutionError",
    "Resolved",
    "load_fleet",
    "make_patch",
    "merge_patch",
]
