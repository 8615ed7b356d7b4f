"""/metrics in Prometheus text format: one registry per app (several apps may share a process).

HTTP requests are counted by a middleware; everything else is read at scrape time from the
runtime's own stats (relay, consumers, bus, store), so the figures and /healthz never disagree.
"""

import asyncio
import contextlib
import time

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from starlette.requests import Request
from starlette.responses import Response

OUTCOMES = {"handled": "handled", "skipped": "skipped", "retried": "naks", "dead_lettered": "dead_lettered"}


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter("http_requests", "HTTP requests by route template and status",
                                ["method", "route", "status"], registry=self.registry)
        self.latency = Histogram("http_request_duration_seconds", "HTTP request latency",
                                 ["method", "route"], registry=self.registry)
        self.runtime = None  # set by the lifespan; read at scrape time
        self.store_ready = False
        self.registry.register(_RuntimeCollector(self))

    def middleware(self, app):
        """Pure ASGI middleware: also counts a request that ended in an exception, as a 500."""

        async def measure(scope, receive, send):
            if scope["type"] != "http":
                return await app(scope, receive, send)
            status = [500]

            async def record_status(message):
                if message["type"] == "http.response.start":
                    status[0] = message["status"]
                await send(message)

            started = time.perf_counter()
            try:
                await app(scope, receive, send=record_status)
            finally:
                route = getattr(scope.get("route"), "path", None) or "unmatched"  # bounded label values
                self.requests.labels(scope["method"], route, str(status[0])).inc()
                self.latency.labels(scope["method"], route).observe(time.perf_counter() - started)

        return measure

    async def scrape(self, request: Request) -> Response:
        runtime = self.runtime
        if runtime is not None:  # bounded, so a store or NATS that hangs cannot outlast the scrape timeout
            try:
                self.store_ready = await asyncio.wait_for(asyncio.to_thread(runtime.store_ok), timeout=2)
            except asyncio.TimeoutError:
                self.store_ready = False
            with contextlib.suppress(Exception):
                await asyncio.wait_for(runtime.refresh_lag(), timeout=2)
        body = await asyncio.to_thread(generate_latest, self.registry)
        return Response(body, media_type=CONTENT_TYPE_LATEST)


class _RuntimeCollector:
    def __init__(self, metrics: Metrics):
        self.metrics = metrics

    def describe(self):
        return []

    def collect(self):
        runtime = self.metrics.runtime
        if runtime is None:
            return
        yield _gauge("nats_connected", "1 while connected to NATS", int(runtime.bus.connected))
        yield _gauge("store_ready", "1 while the event store answers", int(self.metrics.store_ready))
        if runtime.spec.to_contract is not None:
            stats = runtime.relay.stats if runtime.relay is not None else None
            yield CounterMetricFamily("outbox_published", "Contract events published by the outbox relay",
                                      value=stats.published if stats else 0)
            yield _gauge("outbox_lag", "Notifications stored but not yet published", runtime.lag.outbox)
        messages = CounterMetricFamily("consumer_messages", "Messages per consumer and outcome",
                                       labels=["consumer", "outcome"])
        pending = GaugeMetricFamily("consumer_pending", "Messages JetStream holds for the consumer, not yet "
                                    "delivered (num_pending)", labels=["consumer"])
        position = GaugeMetricFamily("consumer_position", "Last stream sequence applied", labels=["consumer"])
        for consumer in runtime.consumers:
            name = consumer.durable
            for outcome, stat in OUTCOMES.items():
                messages.add_metric([name, outcome], getattr(consumer.stats, stat))
            pending.add_metric([name], runtime.lag.consumers.get(name, 0))
            position.add_metric([name], consumer.stats.position)
        yield from (messages, pending, position)


def _gauge(name: str, documentation: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, documentation, value=value)
