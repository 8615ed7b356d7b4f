"""The outbox relay in a process of its own (OUTBOX_RELAY=process), supervised by the service.

The relay's work (reading stored events back, mapping them to contract events, nats-py's
publish) is CPU-bound Python. Inline, it shares the service's event loop and GIL with HTTP and
the ledger's writer; in its own process it runs on the other core. Nothing else changes: it
reads the same store, records the same tracking position and publishes the same Nats-Msg-Ids,
so at-least-once and dedup hold exactly as inline (services/common/outbox.py).

The service starts the process with its lifespan, starts it again if it dies, and stops it on
shutdown. The relay stops by itself when the service process dies (even by SIGKILL): it watches
multiprocessing's parent sentinel, so a killed service never leaves a relay publishing behind it.
"""

import asyncio
import contextlib
import logging
import multiprocessing
import signal
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.sharedctypes import Synchronized

from services.common.bus import Bus
from services.common.outbox import OutboxRelay, ToContract
from services.common.serve import collect_less
from services.common.settings import Settings
from services.common.store import ServiceApplication

log = logging.getLogger(__name__)
RESTART_SECONDS = 1.0
STOP_SECONDS = 10.0


class SharedRelayStats:
    """RelayStats in shared memory: the relay process counts, the service's /healthz and
    /metrics read. One writer, so no lock."""

    def __init__(self, context) -> None:
        self._published: Synchronized = context.Value("q", 0, lock=False)
        self._position: Synchronized = context.Value("q", 0, lock=False)

    published = property(lambda self: self._published.value,
                         lambda self, value: setattr(self._published, "value", value))
    position = property(lambda self: self._position.value,
                        lambda self, value: setattr(self._position, "value", value))


@dataclass(frozen=True)
class RelayJob:
    """Everything the relay process needs, picklable: functions and classes go by reference."""

    settings: Settings
    build_application: Callable[[Settings], ServiceApplication]
    to_contract: ToContract
    published_from: tuple[type, ...]
    published_topics: tuple[str, ...]


def run(job: RelayJob, stats: SharedRelayStats) -> None:
    """The relay process's entry point."""
    logging.basicConfig(level=logging.INFO, format=f"%(asctime)s relay[{job.settings.service}] %(levelname)s %(message)s")
    asyncio.run(_relay(job, stats))


async def _relay(job: RelayJob, stats: SharedRelayStats) -> None:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    parent = multiprocessing.parent_process()
    if parent is not None:
        loop.add_reader(parent.sentinel, stop.set)  # readable once the service process is gone
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    app = job.build_application(job.settings)
    collect_less()
    bus = Bus(job.settings.nats_url, name=f"{job.settings.service}-relay", replicas=job.settings.nats_replicas)

    async def publish() -> None:
        await bus.connect_forever()
        relay = OutboxRelay(app, bus.nc, job.to_contract, published_from=job.published_from,
                            topics=job.published_topics, batch=job.settings.relay_batch)
        relay.stats = stats
        await relay.run()

    task = asyncio.create_task(publish())
    try:
        await stop.wait()
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task
        with contextlib.suppress(Exception):
            await bus.close()
        app.close()


class RelayProcess:
    """The service's side: start the relay process, start it again when it dies, stop it."""

    def __init__(self, job: RelayJob):
        self.job = job
        self._context = multiprocessing.get_context("spawn")
        self.stats = SharedRelayStats(self._context)
        self.restarts = 0
        self.process = None

    async def run(self) -> None:
        try:
            while True:
                self.process = self._context.Process(target=run, args=(self.job, self.stats),
                                                     name=f"{self.job.settings.service}-relay", daemon=True)
                self.process.start()
                while self.process.is_alive():
                    await asyncio.sleep(0.5)
                log.error("the outbox relay process of %s exited with %s; starting it again",
                          self.job.settings.service, self.process.exitcode)
                self.restarts += 1
                await asyncio.sleep(RESTART_SECONDS)
        finally:
            self.stop()

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is None or process.exitcode is not None:
            return
        process.terminate()
        process.join(STOP_SECONDS)
        if process.exitcode is None:
            process.kill()
            process.join()

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.is_alive()
