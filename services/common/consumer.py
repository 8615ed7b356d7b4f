"""The tracked consumer: exactly-once effects from an at-least-once stream.

A durable JetStream pull consumer, handled strictly in stream order. A batch of
messages is handled through one UnitOfWork and committed together with a tracking
record (stream name + consumer, last stream sequence) in one transaction; messages
are acked only after that commit. A message at or below the tracked position was
already applied: it is acked and skipped. A handler error is retried in this process,
with the rest of the batch behind it (so stream order holds); after `max_deliver`
failures (at once, for a message that cannot even be parsed) it is parked on the
dead-letter subject, tracked, acked, and the consumer goes on. A store that is down
is waited out: it never counts as the message's failure.
"""

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from nats.aio.msg import Msg
from pydantic import ValidationError
from nats.errors import TimeoutError as NatsTimeout
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from eventsourcing.persistence import InterfaceError, OperationalError, Tracking

from contracts import ContractEvent, dead_letter_subject, decode
from services.common.store import ServiceApplication, UnitOfWork
from services.common.threads import in_thread

log = logging.getLogger(__name__)

CRASH_LOOP_DELIVERIES = 4
STORE_DOWN = (OperationalError, InterfaceError)
STORE_RETRY_SECONDS = 1.0
# Contract events carry ids, codes and counts: anything this big is not one of ours.
MAX_EVENT_BYTES = 64 * 1024
Handler = Callable[[UnitOfWork, ContractEvent], None]


@dataclass
class ConsumerStats:
    handled: int = 0
    skipped: int = 0
    dead_lettered: int = 0
    naks: int = 0  # retries of a failed message (in-process; the name predates that)
    position: int = 0


class TrackedConsumer:
    def __init__(self, app: ServiceApplication, js: JetStreamContext, durable: str, stream: str,
                 handlers: dict[type[ContractEvent], Handler], filter_subject: str = ">",
                 batch: int = 100, max_deliver: int = 5, ack_wait: float = 60.0):
        self.app = app
        self.js = js
        self.durable = durable
        self.stream = stream
        self.handlers = {cls.type_name(): handler for cls, handler in handlers.items()}
        self.filter_subject = filter_subject
        self.batch = batch
        self.max_deliver = max_deliver
        self.ack_wait = ack_wait
        self.tracking_name = f"{stream}/{durable}"
        self.stats = ConsumerStats()
        self._failures: dict[int, int] = {}

    def consumer_config(self) -> ConsumerConfig:
        return ConsumerConfig(
            durable_name=self.durable,
            deliver_policy=DeliverPolicy.ALL,
            ack_policy=AckPolicy.EXPLICIT,
            ack_wait=self.ack_wait,
            max_ack_pending=self.batch,
            filter_subject=self.filter_subject,
        )

    async def run(self) -> None:
        subscription = await self.js.pull_subscribe(
            self.filter_subject, durable=self.durable, stream=self.stream, config=self.consumer_config()
        )
        try:
            while True:
                await self._fetch_and_process(subscription)
        finally:
            with contextlib.suppress(Exception):
                await subscription.unsubscribe()

    async def _fetch_and_process(self, subscription) -> None:
        try:
            messages = await subscription.fetch(self.batch, timeout=1)
        except (NatsTimeout, asyncio.TimeoutError):
            return
        except asyncio.CancelledError:
            raise
        except Exception:  # noqa: BLE001 - connection trouble: nats-py reconnects
            log.exception("fetch failed on %s", self.tracking_name)
            await asyncio.sleep(1)
            return
        # A batch is retried here, in this process, until it is done: naking it instead would let
        # JetStream redeliver a later message before an earlier one, which would then look applied.
        while messages:
            try:
                await self.process(messages)
                return
            except asyncio.CancelledError:
                raise
            except STORE_DOWN as error:
                log.warning("%s: store unavailable (%r); retrying the batch", self.tracking_name, error)
            except Exception:  # noqa: BLE001 - e.g. NATS gone while parking or acking: go again
                log.exception("%s could not finish a batch; retrying it", self.tracking_name)
            await asyncio.sleep(STORE_RETRY_SECONDS)
            messages = [m for m in messages if m.metadata.sequence.stream > self.stats.position]
            await _in_progress(messages)

    async def process(self, messages: Sequence[Msg]) -> None:
        pending = list(messages)
        while pending:
            position = await in_thread(self.app.position, self.tracking_name)
            uow, applied, failed, error = self._apply(pending, position)
            if applied:
                await self._commit(uow, applied, position)
            if failed is None:
                return
            pending = pending[pending.index(failed):]
            if isinstance(error, STORE_DOWN):
                raise error  # not the message's fault: never counted toward parking it
            seq = failed.metadata.sequence.stream
            self._failures[seq] = self._failures.get(seq, 0) + 1
            if self._should_park(failed, error):
                await self._dead_letter(failed, error, failures=self._failures.pop(seq))
                self.stats.position = seq
                pending = pending[1:]
                continue
            self.stats.naks += 1
            await asyncio.sleep(min(0.2 * self._failures[seq], 5))
            await _in_progress(pending)

    def _should_park(self, message: Msg, error: Exception | None) -> bool:
        """Failures are counted per message here (retries happen in this process). JetStream's
        delivery count is the safety net when the process itself dies on a message again and again."""
        failures = self._failures[message.metadata.sequence.stream]
        return (_malformed(error) or failures >= self.max_deliver
                or message.metadata.num_delivered >= CRASH_LOOP_DELIVERIES * self.max_deliver)

    def _apply(self, messages: list[Msg], position: int
               ) -> tuple[UnitOfWork, list[Msg], Msg | None, Exception | None]:
        """Handle messages in order until one fails; returns the handled prefix."""
        uow = UnitOfWork(self.app)
        applied: list[Msg] = []
        for message in messages:
            if message.metadata.sequence.stream <= position:
                applied.append(message)
                continue
            try:
                self._handle(uow, message)
            except Exception as error:  # noqa: BLE001 - any handler failure is retried, then parked
                log.warning("%s failed on seq %s: %r", self.tracking_name,
                            message.metadata.sequence.stream, error)
                # the failed handler may have left pending events: redo the prefix cleanly
                uow = UnitOfWork(self.app)
                for done in applied:
                    if done.metadata.sequence.stream > position:
                        self._handle(uow, done)
                return uow, applied, message, error
            applied.append(message)
        return uow, applied, None, None

    def _handle(self, uow: UnitOfWork, message: Msg) -> None:
        event_type = (message.headers or {}).get("Event-Type", "")
        if len(message.data) > MAX_EVENT_BYTES:
            raise Malformed(f"{len(message.data)} bytes, more than {MAX_EVENT_BYTES}")
        handler = self.handlers.get(event_type)
        if handler is None:
            if event_type not in _known_types():
                raise Malformed(f"unknown event type {event_type!r}")
            return  # a known event this consumer does not need
        try:
            event = decode(event_type, message.data)
        except ValidationError as error:
            raise Malformed(str(error)) from error
        handler(uow, event)

    async def _commit(self, uow: UnitOfWork, applied: list[Msg], position: int) -> int:
        last = applied[-1].metadata.sequence.stream
        new = [m for m in applied if m.metadata.sequence.stream > position]
        if new:
            await in_thread(uow.commit, Tracking(self.tracking_name, last))
        self.stats.handled += len(new)
        self.stats.skipped += len(applied) - len(new)
        await asyncio.gather(*(m.ack() for m in applied))
        self.stats.position = max(last, position)
        return self.stats.position

    async def _dead_letter(self, message: Msg, error: Exception | None, failures: int) -> None:
        headers = dict(message.headers or {})
        headers.pop("Nats-Msg-Id", None)
        headers.update({
            "Dead-Letter-Reason": repr(error)[:500],
            "Dead-Letter-Consumer": self.tracking_name,
            "Dead-Letter-Stream-Seq": str(message.metadata.sequence.stream),
            "Dead-Letter-Failures": str(failures),
        })
        await self.js.publish(dead_letter_subject(self.durable, message.subject), message.data,
                              headers=headers)
        uow = UnitOfWork(self.app)
        await in_thread(uow.commit, Tracking(self.tracking_name, message.metadata.sequence.stream))
        await message.ack()
        self.stats.dead_lettered += 1
        log.error("%s parked seq %s on the dead-letter stream: %r", self.tracking_name,
                  message.metadata.sequence.stream, error)


async def _in_progress(messages: Sequence[Msg]) -> None:
    """Still working on these: JetStream restarts their ack wait instead of redelivering."""
    for message in messages:
        with contextlib.suppress(Exception):
            await message.in_progress()


class Malformed(ValueError):
    """A message no retry can fix: unknown type or a payload that fails its schema."""


def _malformed(error: Exception | None) -> bool:
    return isinstance(error, Malformed)


def _known_types() -> set[str]:
    from contracts import registry

    return set(registry)
