"""Prometheus metrics, one registry per app (no import-time globals)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from starlette.types import ASGIApp, Message, Receive, Scope, Send

_LATENCY_BUCKETS_S = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
_ALERT_BUCKETS_S = (0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0)
logger = logging.getLogger(__name__)
#: (kind, status) -> number of notifications, read from the database at each scrape.
QueueCounts = Callable[[], Iterable[tuple[str, str, int]]]


class _QueueCollector(Collector):
    """The notification queue by kind and status, as the database has it (so every
    server process reports the same numbers)."""

    def __init__(self, counts: QueueCounts) -> None:
        self.counts = counts

    def collect(self) -> Iterable[GaugeMetricFamily]:
        family = GaugeMetricFamily(
            "sitewatch_notifications",
            "Alert notifications in the database by kind and status.",
            labels=["kind", "status"],
        )
        try:
            for kind, status, count in self.counts():
                family.add_metric([kind, status], count)
        except Exception:  # the database away: the other metrics still answer
            logger.warning("notification counts unavailable", exc_info=True)
        yield family


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.ingest = Counter(
            "sitewatch_ingest_total",
            "Ingest messages by kind (event, media, heartbeat) and outcome.",
            ["kind", "outcome"],
            registry=self.registry,
        )
        self.requests = Counter(
            "sitewatch_http_requests_total",
            "HTTP requests by route template, method and status code.",
            ["route", "method", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "sitewatch_http_request_duration_seconds",
            "HTTP request latency by route template and method.",
            ["route", "method"],
            buckets=_LATENCY_BUCKETS_S,
            registry=self.registry,
        )

        self.alert_deliveries = Counter(
            "sitewatch_alert_deliveries_total",
            "Alert delivery attempts of this process by kind and outcome "
            "(sent, retry, failed, cancelled).",
            ["kind", "outcome"],
            registry=self.registry,
        )
        self.alert_delay = Histogram(
            "sitewatch_alert_delay_seconds",
            "Event received -> its alert accepted by the channel.",
            buckets=_ALERT_BUCKETS_S,
            registry=self.registry,
        )

    def watch_queue(self, counts: QueueCounts) -> None:
        self.registry.register(_QueueCollector(counts))

    def render(self) -> bytes:
        return generate_latest(self.registry)


class MetricsMiddleware:
    """Counts requests and times them, labelled by route template (bounded labels)."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = {"code": 500}

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            route = _route_label(scope)
            method = scope.get("method", "")
            self.metrics.latency.labels(route, method).observe(time.perf_counter() - start)
            self.metrics.requests.labels(route, method, str(status["code"])).inc()


def _route_label(scope: Scope) -> str:
    route = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else "unmatched"
