"""The relay's batch publisher against a real nats-server: one ack per batch, and never a batch
reported stored that is not (services/common/publisher.py)."""

import uuid

import nats
import pytest
from nats.js.api import StreamConfig

from services.common.publisher import BatchPublisher, Message

MAX_SIZE = 1000  # the test stream refuses larger messages: a message lost inside a chain


@pytest.fixture
async def nc(nats_server):
    client = await nats.connect(nats_server.url)
    yield client
    await client.close()


@pytest.fixture
async def stream(nc):
    name = f"PUB{uuid.uuid4().hex[:8].upper()}"
    await nc.jetstream().add_stream(StreamConfig(name=name, subjects=[f"{name.lower()}.>"], max_msg_size=MAX_SIZE,
                                                 duplicate_window=120))
    return name


def messages(stream: str, ids, size: int = 100) -> list[Message]:
    return [Message(f"{stream.lower()}.note", f"{i}".encode().ljust(size), {"Nats-Msg-Id": f"m{i}"}) for i in ids]


async def stored(nc, stream: str) -> list[str]:
    """The Nats-Msg-Ids the stream holds, in stream order."""
    js = nc.jetstream()
    info = await js.stream_info(stream)
    return [((await js.get_msg(stream, seq)).headers or {}).get("Nats-Msg-Id", "-")
            for seq in range(info.state.first_seq, info.state.last_seq + 1)] if info.state.messages else []


async def test_batches_after_the_first_are_stored_in_order_with_one_ack_each(nc, stream):
    publisher = BatchPublisher(nc)
    for first in range(0, 300, 100):
        await publisher.publish(stream, messages(stream, range(first, first + 100)))

    assert await stored(nc, stream) == [f"m{i}" for i in range(300)]
    assert (publisher.stats.acked_batches, publisher.stats.chained_batches) == (1, 2)


async def test_another_publisher_on_the_stream_breaks_the_chain_and_loses_nothing(nc, stream):
    publisher = BatchPublisher(nc)
    await publisher.publish(stream, messages(stream, range(0, 10)))
    await nc.jetstream().publish(f"{stream.lower()}.other", b"someone else")
    await publisher.publish(stream, messages(stream, range(10, 20)))
    await publisher.publish(stream, messages(stream, range(20, 30)))

    held = await stored(nc, stream)
    assert [m for m in held if m.startswith("m")] == [f"m{i}" for i in range(30)]
    assert (publisher.stats.acked_batches, publisher.stats.chained_batches) == (2, 1)


async def test_a_batch_published_again_is_stored_once(nc, stream):
    """A relay restarted before it recorded its position publishes the same ids again."""
    publisher = BatchPublisher(nc)
    await publisher.publish(stream, messages(stream, range(0, 10)))
    await publisher.publish(stream, messages(stream, range(10, 20)))
    await publisher.publish(stream, messages(stream, range(5, 25)))  # half already stored

    assert await stored(nc, stream) == [f"m{i}" for i in range(25)]


async def test_a_message_refused_inside_a_chain_is_never_reported_stored(nc, stream):
    publisher = BatchPublisher(nc, ack_timeout=1)
    await publisher.publish(stream, messages(stream, range(0, 10)))
    batch = messages(stream, range(10, 13)) + messages(stream, [13], size=MAX_SIZE * 2) + messages(stream, range(14, 20))

    with pytest.raises(TimeoutError):  # nats-py leaves an error ack's future unresolved
        await publisher.publish(stream, batch)

    held = await stored(nc, stream)
    assert "m13" not in held and len(set(held)) == len(held) == 19
    assert stream not in publisher.tails  # the next batch starts from acks again


async def test_a_refused_message_is_noticed_even_when_another_publisher_fills_its_place(nc, stream, nats_server):
    """The stream's count alone would match: each message must name the one before it."""
    other = await nats.connect(nats_server.url)
    publisher = BatchPublisher(nc, ack_timeout=1)
    await publisher.publish(stream, messages(stream, range(0, 10)))
    core_publish = nc.publish

    async def publish_then_someone_else(subject, payload=b"", reply="", headers=None):
        await core_publish(subject, payload, reply, headers)
        if len(payload) > MAX_SIZE:  # refused; another client's message is stored straight after
            await nc.flush()
            await other.jetstream().publish(f"{stream.lower()}.other", b"someone else")

    nc.publish = publish_then_someone_else
    batch = messages(stream, range(10, 13)) + messages(stream, [13], size=MAX_SIZE * 2) + messages(stream, range(14, 20))
    try:
        with pytest.raises(TimeoutError):
            await publisher.publish(stream, batch)
    finally:
        nc.publish = core_publish
        await other.close()
    assert "m13" not in await stored(nc, stream)
