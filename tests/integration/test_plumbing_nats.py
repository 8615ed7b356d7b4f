"""The shared plumbing against a real nats-server: outbox relay and tracked consumer.

A tiny private domain stands in for a service: `Note` aggregates in a producer app,
published as `NoteWritten`; a consumer app records each note it applies in `Copy`
aggregates. Effects are counted from the consumer's own store.
"""

import asyncio
import uuid
from typing import ClassVar

import pytest
from eventsourcing.domain import Aggregate, event

from contracts import ContractEvent, encode, registry
from services.common.bus import Bus
from services.common.consumer import TrackedConsumer
from services.common.outbox import OutboxRelay
from services.common.store import ServiceApplication, UnitOfWork

pytestmark = pytest.mark.nats


class NoteWritten(ContractEvent):
    subject: ClassVar[str] = "relief.test.note-written.v1"
    text: str


class Note(Aggregate):
    @event("Written")
    def __init__(self, text: str):
        self.text = text


class Copy(Aggregate):
    """One per source note; a second creation for the same note would raise IntegrityError."""

    @event("Copied")
    def __init__(self, text: str):
        self.text = text


def to_contract(domain_event) -> NoteWritten | None:
    if not isinstance(domain_event, Note.Written):
        return None
    return NoteWritten(event_id=uuid.uuid4(), occurred_at=domain_event.timestamp,
                       source_id=domain_event.originator_id, source_version=1,
                       text=domain_event.text)


def copy_note(uow: UnitOfWork, note: NoteWritten) -> None:
    if note.text == "poison":
        raise ValueError("this note cannot be copied")
    copy = Copy(text=note.text)
    copy._id = uuid.uuid5(uuid.NAMESPACE_URL, str(note.source_id))  # noqa: SLF001
    uow.add(copy)


@pytest.fixture(autouse=True)
def note_contract():
    registry[NoteWritten.type_name()] = NoteWritten
    yield
    registry.pop(NoteWritten.type_name())


@pytest.fixture
async def bus(nats_server):
    bus = Bus(nats_server.url, "test")
    await bus.connect()
    for stream in ("RELIEF", "DEADLETTER"):  # each test starts from empty streams
        await bus.js.purge_stream(stream)
    yield bus
    await bus.close()


@pytest.fixture
def js(bus):
    return bus.js


@pytest.fixture
def producer(settings_for):
    # A fresh name per test: JetStream remembers Nats-Msg-Ids for 2 minutes, even across purges.
    app = ServiceApplication(settings_for(f"producer-{uuid.uuid4().hex[:8]}"))
    yield app
    app.close()


@pytest.fixture
def consumer_app(settings_for):
    app = ServiceApplication(settings_for("consumer"))
    yield app
    app.close()


def copies(app: ServiceApplication) -> list[str]:
    notifications = app.recorder.select_notifications(1, 100_000)
    return [app.mapper.to_domain_event(n).text for n in notifications]


def tracked_consumer(app, js, **kwargs) -> TrackedConsumer:
    durable = kwargs.pop("durable", f"c{uuid.uuid4().hex[:8]}")
    return TrackedConsumer(app, js, durable, "RELIEF", {NoteWritten: copy_note},
                           filter_subject="relief.test.>", **kwargs)


async def run_until(consumer: TrackedConsumer, done, timeout: float = 15.0) -> None:
    task = asyncio.create_task(consumer.run())
    try:
        async with asyncio.timeout(timeout):
            while not done():
                await asyncio.sleep(0.05)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def stream_count(js, subject: str) -> int:
    info = await js.stream_info("RELIEF", subjects_filter=subject)
    return (info.state.subjects or {}).get(subject, 0)


async def test_each_stored_change_arrives_once_at_a_durable_consumer(bus, js, producer, consumer_app):
    producer.save(*[Note(text=f"n{i}") for i in range(250)])
    relay = OutboxRelay(producer, bus.nc, to_contract, batch=100)
    while await relay.pump():
        pass
    assert await relay.pump() == 0  # nothing new: nothing published again

    consumer = tracked_consumer(consumer_app, js)
    await run_until(consumer, lambda: consumer.stats.handled >= 250)

    assert sorted(copies(consumer_app)) == sorted(f"n{i}" for i in range(250))
    assert await stream_count(js, NoteWritten.subject) == 250


async def test_relay_killed_between_publish_and_bookkeeping_loses_and_doubles_nothing(
        bus, js, producer, consumer_app):
    producer.save(*[Note(text=f"n{i}") for i in range(40)])
    crashing = OutboxRelay(producer, bus.nc, to_contract, batch=25)

    async def crash(_position: int) -> None:
        raise SystemExit("killed after publishing, before recording the position")

    crashing.record_position = crash
    with pytest.raises(SystemExit):
        await crashing.pump()
    producer.save(Note(text="after the crash"))

    restarted = OutboxRelay(producer, bus.nc, to_contract, batch=25)
    while await restarted.pump():
        pass

    assert await stream_count(js, NoteWritten.subject) == 41  # JetStream dropped the re-publishes
    consumer = tracked_consumer(consumer_app, js)
    await run_until(consumer, lambda: consumer.stats.handled >= 41)
    assert sorted(copies(consumer_app)) == sorted([f"n{i}" for i in range(40)] + ["after the crash"])


async def publish(js, *texts: str) -> None:
    for text in texts:
        subject, payload, headers = encode(to_contract(Note(text=text).collect_events()[0]))
        await js.publish(subject, payload, headers=headers)


async def test_poison_message_is_dead_lettered_and_the_consumer_goes_on(js, consumer_app):
    await publish(js, "before", "poison", "after")
    await js.publish(NoteWritten.subject, b"{not json", headers={"Event-Type": "NoteWritten"})
    await publish(js, "last")

    consumer = tracked_consumer(consumer_app, js, max_deliver=3)
    await run_until(consumer, lambda: consumer.stats.handled >= 3 and consumer.stats.dead_lettered >= 2)

    assert copies(consumer_app) == ["before", "after", "last"]  # in stream order
    dead = await js.pull_subscribe("deadletter.>", stream="DEADLETTER")
    parked = await dead.fetch(2, timeout=5)
    poison, malformed = parked
    assert NoteWritten.model_validate_json(poison.data).text == "poison"
    assert poison.headers["Dead-Letter-Failures"] == "3"  # retried max_deliver times
    assert malformed.data == b"{not json"
    assert malformed.headers["Dead-Letter-Failures"] == "1"  # no retry can fix it
    assert all("Dead-Letter-Reason" in m.headers for m in parked)


async def test_a_passing_glitch_is_retried_and_applied_once_in_order(js, consumer_app):
    await publish(js, "a", "b", "c")
    failures = {"b": 2}

    def flaky(uow, note):
        if failures.get(note.text, 0) > 0:
            failures[note.text] -= 1
            raise ConnectionError("store hiccup")
        copy_note(uow, note)

    consumer = tracked_consumer(consumer_app, js)
    consumer.handlers["NoteWritten"] = flaky
    await run_until(consumer, lambda: consumer.stats.handled >= 3)
    assert copies(consumer_app) == ["a", "b", "c"]
    assert consumer.stats.naks == 2 and consumer.stats.dead_lettered == 0


async def test_replaying_the_stream_from_the_start_changes_nothing(js, consumer_app):
    await publish(js, "x", "y")
    first = tracked_consumer(consumer_app, js, durable="replayed")
    await run_until(first, lambda: first.stats.handled >= 2)

    await js.delete_consumer("RELIEF", "replayed")  # a consumer recreated from sequence 1
    again = tracked_consumer(consumer_app, js, durable="replayed")
    await run_until(again, lambda: again.stats.skipped >= 2)
    assert copies(consumer_app) == ["x", "y"]
    assert again.stats.handled == 0
