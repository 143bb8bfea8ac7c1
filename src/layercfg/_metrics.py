"""Prometheus metrics of one server process."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Info, generate_latest

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class Metrics:
    """The counters and gauges /metrics reports, in a registry of their own."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "layercfg_http_requests",
            "HTTP requests answered, by route template, method and status.",
            ["route", "method", "status"],
            registry=self.registry,
        )
        self.resolution_failures = Counter(
            "layercfg_resolution_failures",
            "Config requests refused because the merged config is invalid.",
            registry=self.registry,
        )
        self.reloads = Counter(
            "layercfg_reloads",
            "Attempts to load a changed file set, by outcome.",
            ["outcome"],
            registry=self.registry,
        )
        self.devices = Gauge(
            "layercfg_devices",
            "Devices with files of their own in the served revision.",
            registry=self.registry,
        )
        self.revision = Info(
            "layercfg_revision",
            "The served revision of the layer files.",
            registry=self.registry,
        )
        self._children: dict[tuple[str, str, int], Counter] = {}

    def count(self, route: str, method: str, status: int) -> None:
        key = (route, method, status)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = self.requests.labels(
                route, method, str(status)
            )
        child.inc()

    def render(self) -> bytes:
        return generate_latest(self.registry)
