"""The outbox relay: publish a service's stored events to JetStream, at least once.

Commands store events first (the notification log is the outbox). The relay reads the
log after the position it last recorded, maps each domain event to its contract event,
publishes with `Nats-Msg-Id: <service>:<notification id>` and then records how far it
got. A crash between publish and bookkeeping re-publishes the same ids on restart;
JetStream's duplicate window drops the copies, and consumers ignore any that arrive
later (contract events carry source id and version). Each batch is chained onto the stream's
tail and acked once (services/common/publisher.py); an ack that never comes (the server died
with the message, or the connection dropped with the ack) times out the batch, which is
published again.
"""

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass

from eventsourcing.domain import DomainEventProtocol
from eventsourcing.persistence import Notification, Tracking
from eventsourcing.utils import resolve_topic
from nats.aio.client import Client

from contracts import ContractEvent, encode, stream_of
from services.common.publisher import MSG_ID, BatchPublisher, Message
from services.common.store import ServiceApplication
from services.common.threads import in_thread

log = logging.getLogger(__name__)

ToContract = Callable[[DomainEventProtocol], ContractEvent | None]


@dataclass
class RelayStats:
    published: int = 0
    position: int = 0


class OutboxRelay:
    def __init__(self, app: ServiceApplication, nc: Client, to_contract: ToContract,
                 batch: int = 500, poll_seconds: float = 0.1, published_from: tuple[type, ...] = (),
                 topics: tuple[str, ...] = (), ack_timeout: float = 10.0):
        self.app = app
        self.publisher = BatchPublisher(nc, ack_timeout)
        self.to_contract = to_contract
        self.published_from = published_from
        self.topics = topics
        self._may_publish: dict[str, bool] = {}
        self.batch = batch
        self.poll_seconds = poll_seconds
        self.service = app.settings.service
        self.tracking_name = f"outbox:{self.service}"
        self.stats = RelayStats()

    async def run(self) -> None:
        while True:
            try:
                if await self.pump() == 0:
                    await asyncio.sleep(self.poll_seconds)
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - NATS down, store busy: try again shortly
                log.exception("outbox relay of %s failed; retrying", self.service)
                await asyncio.sleep(1)

    async def pump(self) -> int:
        """Publish the next batch; returns how many notifications it covered."""
        position = await in_thread(self.app.position, self.tracking_name)
        if self.topics:
            return await self._pump_topics(position, self.topics)
        notifications = await in_thread(
            self.app.recorder.select_notifications, position + 1, self.batch
        )
        if not notifications:
            self.stats.position = position
            return 0
        # an error or a timeout leaves the position where it was: run() publishes the batch again
        await self._publish(notifications)
        last = notifications[-1].id
        await self.record_position(last)
        self.stats.position = last
        return len(notifications)

    async def _pump_topics(self, position: int, topics: tuple[str, ...]) -> int:
        """For a service that lists (`topics`) every topic it may publish: the store reads only those (most of a log can be events never published). Up to the highest
        notification stored when the batch started: with fewer than a batch found, everything up
        to it is covered, and the position moves there (the store assigns ids in commit order)."""
        stop = await in_thread(self.app.recorder.max_notification_id) or 0
        if stop <= position:
            self.stats.position = position
            return 0
        notifications = await in_thread(
            lambda: self.app.recorder.select_notifications(position + 1, self.batch, stop=stop, topics=topics))
        await self._publish(notifications)
        last = notifications[-1].id if len(notifications) == self.batch else stop
        await self.record_position(last)
        self.stats.position = last
        return last - position

    async def record_position(self, notification_id: int) -> None:
        await in_thread(
            self.app.recorder.insert_tracking, Tracking(self.tracking_name, notification_id)
        )

    def may_publish(self, topic: str) -> bool:
        """Decoding is most of the relay's work: skip, by topic alone, events never published."""
        if not self.published_from:
            return True
        if topic not in self._may_publish:
            self._may_publish[topic] = issubclass(resolve_topic(topic), self.published_from)
        return self._may_publish[topic]

    async def _publish(self, notifications: list[Notification]) -> None:
        by_stream: dict[str, list[Message]] = {}
        for notification in notifications:
            message = self._message(notification)
            if message is not None:
                by_stream.setdefault(stream_of(message.subject), []).append(message)
        for stream, messages in by_stream.items():
            await self.publisher.publish(stream, messages)
            self.stats.published += len(messages)

    def _message(self, notification: Notification) -> Message | None:
        if not self.may_publish(notification.topic):
            return None
        contract = self.to_contract(self.app.encoding.to_domain_event(notification))
        if contract is None:  # a private event: nothing crosses the bus
            return None
        subject, payload, headers = encode(contract)
        headers[MSG_ID] = f"{self.service}:{notification.id}"
        return Message(subject, payload, headers)
