"""One service process: its application, bus connection, outbox relay, consumers and
background projections, started and stopped with the HTTP server (FastAPI lifespan)."""

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from services.common.bus import Bus
from services.common.consumer import Handler, TrackedConsumer
from services.common.outbox import OutboxRelay, ToContract
from services.common.relay_process import RelayJob, RelayProcess
from services.common.settings import Settings
from services.common.store import ServiceApplication
from services.common.threads import in_thread

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Subscription:
    """A durable consumer of one upstream stream."""

    durable: str
    stream: str
    handlers: dict[type, Handler]
    filter_subject: str = ">"


@dataclass
class ServiceSpec:
    """What makes a service itself; everything else is shared plumbing."""

    name: str
    build_application: Callable[[Settings], ServiceApplication]
    to_contract: ToContract | None = None
    # Domain event classes to_contract may map; the relay skips others without decoding them.
    published_from: tuple[type, ...] = ()
    # When they can be listed: the exact topics published; the relay then reads only those.
    published_topics: tuple[str, ...] = ()
    # OUTBOX_RELAY=process: what the relay process builds to read the store (picklable, by
    # reference); None: build_application. A service whose application is heavy to start can
    # name a lighter one on the same store.
    relay_application: Callable[[Settings], ServiceApplication] | None = None
    subscriptions: list[Subscription] = field(default_factory=list)
    # Background loops that need only the application (e.g. read-model projectors).
    background: list[Callable[[ServiceApplication], Awaitable[None]]] = field(default_factory=list)


@dataclass
class Lag:
    """How far behind the service is, refreshed on each /metrics scrape."""

    outbox: int = 0  # notifications stored but not yet published
    consumers: dict[str, int] = field(default_factory=dict)  # durable -> JetStream num_pending


class ServiceRuntime:
    def __init__(self, spec: ServiceSpec, settings: Settings):
        self.spec = spec
        self.settings = settings
        self.application = spec.build_application(settings)
        self.bus = Bus(settings.nats_url, name=spec.name, replicas=settings.nats_replicas)
        self.relay: OutboxRelay | RelayProcess | None = None
        self.consumers: list[TrackedConsumer] = []
        self.lag = Lag()
        self._tasks: list[asyncio.Task] = []
        self._stopping = False

    async def start(self) -> None:
        if self.spec.to_contract is not None and self.settings.outbox_relay == "process":
            self.relay = RelayProcess(RelayJob(
                self.settings, self.spec.relay_application or self.spec.build_application, self.spec.to_contract,
                self.spec.published_from, self.spec.published_topics))
            self._spawn(self.relay.run(), "outbox")
        self._spawn(self._start_messaging(), "messaging")
        for loop in self.spec.background:
            self._spawn(loop(self.application), loop.__name__)

    async def _start_messaging(self) -> None:
        await self.bus.connect_forever()
        js = self.bus.js
        if self.spec.to_contract is not None and self.relay is None:
            self.relay = OutboxRelay(self.application, self.bus.nc, self.spec.to_contract,
                                     published_from=self.spec.published_from,
                                     topics=self.spec.published_topics,
                                     batch=self.settings.relay_batch)
            self._spawn(self.relay.run(), "outbox")
        for sub in self.spec.subscriptions:
            consumer = TrackedConsumer(
                self.application, js, sub.durable, sub.stream, sub.handlers,
                filter_subject=sub.filter_subject, batch=self.settings.consumer_batch,
                max_deliver=self.settings.max_deliver,
            )
            self.consumers.append(consumer)
            self._spawn(consumer.run(), sub.durable)

    def _spawn(self, coro: Awaitable[None], name: str) -> None:
        if self._stopping:
            coro.close()
            return
        task = asyncio.create_task(coro, name=f"{self.spec.name}:{name}")
        task.add_done_callback(_log_crash)
        self._tasks.append(task)

    async def stop(self) -> None:
        """Cancel every task until none is left. A cancellation can be swallowed (a race in
        asyncio.wait_for on Python 3.11, which nats-py uses), so cancel again until done."""
        self._stopping = True
        while pending := [task for task in self._tasks if not task.done()]:
            for task in pending:
                task.cancel()
            await asyncio.wait(pending, timeout=1)
        with contextlib.suppress(Exception):
            await self.bus.close()
        self.application.close()

    def store_ok(self) -> bool:
        try:
            return self.application.ping()
        except Exception:  # noqa: BLE001 - any store failure means "not ready"
            return False

    async def refresh_lag(self) -> None:
        if self.spec.to_contract is not None:
            app = self.application
            stored, published = await in_thread(
                lambda: (app.recorder.max_notification_id() or 0, app.position(f"outbox:{app.settings.service}")))
            self.lag.outbox = max(stored - published, 0)
        if self.bus.connected:
            for consumer in self.consumers:
                info = await self.bus.js.consumer_info(consumer.stream, consumer.durable, timeout=1)
                self.lag.consumers[consumer.durable] = info.num_pending

    def health(self) -> dict:
        store_ok = self.store_ok()
        report = {
            "service": self.spec.name,
            "store": "ok" if store_ok else "unavailable",
            "nats": "connected" if self.bus.connected else "disconnected",
        }
        if self.relay is not None:
            report["outbox"] = {"position": self.relay.stats.position, "published": self.relay.stats.published}
            if isinstance(self.relay, RelayProcess):
                report["outbox"] |= {"process": "running" if self.relay.alive else "restarting",
                                     "pid": self.relay.pid, "restarts": self.relay.restarts}
        report["consumers"] = {c.tracking_name: vars(c.stats) for c in self.consumers}
        report["ready"] = store_ok and self.bus.connected
        return report


def _log_crash(task: asyncio.Task) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("background task %s died", task.get_name(), exc_info=task.exception())
