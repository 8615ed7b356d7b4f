"""Publish a batch of messages to one JetStream stream, and know that every one was stored.

Awaiting one ack per message (nats-py's `publish_async`) costs the publisher about three times
what the publish itself costs. The relay instead chains a batch onto the stream's known tail
(the sequence and the Nats-Msg-Id of its last message) and asks for one ack, on the last message:

- message i carries `Nats-Expected-Last-Sequence: tail + i - 1` and `Nats-Expected-Last-Msg-Id:
  <id of message i-1>`; JetStream stores it only if the stream then ends with exactly message
  i-1, at exactly that sequence;
- the first n-1 messages go without a reply subject, the last as a request. A success ack, not a
  duplicate, at sequence tail + n proves that all n were stored, in order, just now: the last
  one was stored after message n-1 at tail + n - 1, which was stored after message n-2, and so
  on. A message lost, refused or deduplicated on the way breaks the chain for every later one,
  so the last ack is an error.

When the tail is unknown (first batch, after a failure, after another publisher wrote to the
stream) or the chain breaks, the batch is published again with an ack awaited for each message.
JetStream's duplicate window drops the copies of those already stored. Either way a batch is
reported stored only when it is; otherwise this raises and the caller publishes it again.
"""

import asyncio
from dataclasses import dataclass, field

import orjson
from nats.aio.client import Client

MSG_ID = "Nats-Msg-Id"
EXPECTED_SEQUENCE = "Nats-Expected-Last-Sequence"
EXPECTED_MSG_ID = "Nats-Expected-Last-Msg-Id"


@dataclass(frozen=True)
class Message:
    subject: str
    payload: bytes
    headers: dict[str, str]  # with a unique Nats-Msg-Id

    @property
    def msg_id(self) -> str:
        return self.headers[MSG_ID]


@dataclass(frozen=True)
class Tail:
    """The stream's last message, as this publisher last saw it stored."""

    sequence: int
    msg_id: str


@dataclass
class PublisherStats:
    chained_batches: int = 0
    acked_batches: int = 0  # the tail was unknown or the chain broke


@dataclass
class BatchPublisher:
    nc: Client
    ack_timeout: float = 10.0
    tails: dict[str, Tail] = field(default_factory=dict)
    stats: PublisherStats = field(default_factory=PublisherStats)

    def __post_init__(self) -> None:
        self.js = self.nc.jetstream()

    async def publish(self, stream: str, messages: list[Message]) -> None:
        """Returns once JetStream holds every message of `messages` (all bound for `stream`)."""
        if not messages:
            return
        tail = self.tails.pop(stream, None)  # forgotten until this batch is known stored
        if tail is not None:
            tail = await self._chained(messages, tail)
            self.stats.chained_batches += tail is not None
        if tail is None:
            tail = await self._acked(messages)
            self.stats.acked_batches += 1
        if tail is not None:
            self.tails[stream] = tail

    async def _chained(self, messages: list[Message], tail: Tail) -> Tail | None:
        previous = tail.msg_id
        for offset, message in enumerate(messages[:-1]):
            await self.nc.publish(message.subject, message.payload, headers={
                **message.headers, EXPECTED_SEQUENCE: str(tail.sequence + offset), EXPECTED_MSG_ID: previous})
            previous = message.msg_id
        last, expected = messages[-1], tail.sequence + len(messages)
        reply = await self.nc.request(last.subject, last.payload, timeout=self.ack_timeout, headers={
            **last.headers, EXPECTED_SEQUENCE: str(expected - 1), EXPECTED_MSG_ID: previous})
        ack = orjson.loads(reply.data) if reply.data else {}
        if "error" in ack or ack.get("duplicate") or ack.get("seq") != expected:
            return None
        return Tail(expected, last.msg_id)

    async def _acked(self, messages: list[Message]) -> Tail | None:
        """One ack per message; the copies of messages already stored come back as duplicates.
        nats-py's publish futures have no timeout of their own (and an error ack never resolves
        one), so the whole batch has one."""
        futures = [await self.js.publish_async(m.subject, m.payload, headers=m.headers) for m in messages]
        acks = await asyncio.wait_for(asyncio.gather(*futures), self.ack_timeout)
        last = acks[-1]
        return None if last.duplicate else Tail(last.seq, messages[-1].msg_id)
