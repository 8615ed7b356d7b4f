"""A 3-node NATS cluster (from the wheel, loopback) with R3 streams: one node is killed -9 under
a steady load and brought back. Nothing is lost, nothing is applied twice, the node catches up.

The publisher does what the outbox relay does: publish with a Nats-Msg-Id and retry the same id
until JetStream acks it. The consumer is the real TrackedConsumer writing into a real store.
"""

import asyncio
import time
import uuid
from datetime import datetime, timezone
from typing import ClassVar

import nats
import pytest
from eventsourcing.domain import Aggregate, event

from contracts import ContractEvent, encode, registry
from services.common.bus import ensure_streams
from services.common.cluster import NatsCluster
from services.common.consumer import TrackedConsumer
from services.common.settings import Settings
from services.common.store import ServiceApplication, UnitOfWork

pytestmark = pytest.mark.nats

# A stream leader is elected again a few seconds after its node dies: keep the node down longer.
LOAD_SECONDS, KILL_AT, RESTART_AT, INTERVAL = 14.0, 2.5, 10.0, 0.004


class ClusterNote(ContractEvent):
    subject: ClassVar[str] = "relief.test.cluster-note.v1"
    number: int


class Applied(Aggregate):
    """One per note; the id comes from the note, so a second application could not commit."""

    @event("Applied")
    def __init__(self, number: int):
        self.number = number


def apply_note(uow: UnitOfWork, note: ClusterNote) -> None:
    applied = Applied(number=note.number)
    applied._id = uuid.uuid5(uuid.NAMESPACE_URL, f"cluster-note:{note.number}")  # noqa: SLF001
    uow.add(applied)


@pytest.fixture(autouse=True)
def note_contract():
    registry[ClusterNote.type_name()] = ClusterNote
    yield
    registry.pop(ClusterNote.type_name())


@pytest.fixture
def cluster(tmp_path):
    with NatsCluster(tmp_path / "nats") as running:
        yield running


async def publish_until_acked(js, number: int, figures: dict) -> None:
    note = ClusterNote(event_id=uuid.uuid4(), occurred_at=datetime.now(timezone.utc),
                       source_id=uuid.uuid4(), source_version=1, number=number)
    subject, payload, headers = encode(note)
    headers["Nats-Msg-Id"] = f"cluster-note:{number}"
    while True:
        try:
            ack = await js.publish(subject, payload, headers=headers, timeout=2)
            figures["duplicate_acks"] += ack.duplicate or 0
            return
        except Exception as error:  # noqa: BLE001 - node gone, no leader yet, timeout: same id again
            figures["publish_retries"] += 1
            figures["retry_errors"].add(type(error).__name__)
            await asyncio.sleep(0.1)


async def stream_caught_up(cluster: NatsCluster, js, expected: int, timeout: float = 20) -> dict:
    """Until every node holds `expected` messages of RELIEF and the leader sees both replicas current."""
    deadline = time.monotonic() + timeout
    while True:
        info = await js.stream_info("RELIEF")
        per_node = {}
        for node in cluster.nodes:
            jsz = node.monitor("/jsz?accounts=true&streams=true")
            streams = [s for a in jsz.get("account_details", []) for s in a.get("stream_detail", [])]
            per_node[f"n{node.index}"] = next((s["state"]["messages"] for s in streams if s["name"] == "RELIEF"), 0)
        replicas = info.cluster.replicas or []
        if (len(replicas) == 2 and all(r.current and not r.offline for r in replicas)
                and set(per_node.values()) == {expected}):
            return {"leader": info.cluster.leader, "per_node": per_node}
        if time.monotonic() > deadline:
            raise AssertionError(f"not caught up: {per_node}, replicas {replicas}")
        await asyncio.sleep(0.2)


async def test_killing_a_node_under_load_loses_and_doubles_nothing(cluster, tmp_path):
    started = time.monotonic()
    admin = await nats.connect(servers=cluster.urls)
    admin_js = admin.jetstream(timeout=10)
    await ensure_streams(admin_js, replicas=3)
    info = await admin_js.stream_info("RELIEF")
    assert info.config.num_replicas == 3 and len(info.cluster.replicas) == 2
    victim = int(info.cluster.leader.removeprefix("n"))  # the RELIEF stream leader
    first = [cluster.nodes[victim - 1].url] + [u for u in cluster.urls if u != cluster.nodes[victim - 1].url]

    # Publisher and consumer are connected to the victim first: its death cuts their connection too.
    options = dict(servers=first, dont_randomize=True, max_reconnect_attempts=-1, reconnect_time_wait=0.2)
    producer = await nats.connect(name="producer", **options)
    consumer_nc = await nats.connect(name="consumer", **options)
    app = ServiceApplication(Settings.from_env("cluster-consumer", {"DATA_DIR": str(tmp_path / "var")}))
    consumer = TrackedConsumer(app, consumer_nc.jetstream(timeout=5), "cluster-test", "RELIEF",
                               {ClusterNote: apply_note}, filter_subject="relief.test.>", batch=50,
                               ack_wait=5)
    consuming = asyncio.create_task(consumer.run())
    figures = {"published": 0, "during_fault": 0, "publish_retries": 0, "duplicate_acks": 0,
               "retry_errors": set()}
    try:
        js = producer.jetstream()
        load_start, number, killed_at, restarted_at = time.monotonic(), 0, None, None
        while (now := time.monotonic() - load_start) < LOAD_SECONDS:
            if killed_at is None and now >= KILL_AT:
                cluster.kill(victim)
                killed_at = now
            if restarted_at is None and now >= RESTART_AT:
                await asyncio.to_thread(cluster.start_node, victim)
                restarted_at = now
            await publish_until_acked(js, number, figures)
            number += 1
            if killed_at is not None and restarted_at is None:
                figures["during_fault"] += 1
            await asyncio.sleep(INTERVAL)
        figures["published"] = number

        async with asyncio.timeout(30):
            while consumer.stats.position < number:  # stream seq == note number + 1 on a fresh stream
                await asyncio.sleep(0.1)
        caught_up = await stream_caught_up(cluster, admin_js, number)
    finally:
        consuming.cancel()
        await asyncio.gather(consuming, return_exceptions=True)
        for nc in (producer, consumer_nc, admin):
            await nc.close()

    notifications = app.recorder.select_notifications(1, 1_000_000)
    applied = [app.mapper.to_domain_event(n).number for n in notifications]
    app.close()
    figures |= {"consumed": len(applied), "lost": len(set(range(number)) - set(applied)),
                "duplicates": len(applied) - len(set(applied)), "dead_lettered": consumer.stats.dead_lettered,
                "killed": f"n{victim}", "seconds": round(time.monotonic() - started, 1), **caught_up}
    print(f"\nNATS cluster fault: {figures}")

    assert figures["during_fault"] > 0 and figures["publish_retries"] > 0  # the fault hit the load
    assert figures["lost"] == 0 and figures["duplicates"] == 0 and figures["dead_lettered"] == 0
    assert sorted(applied) == list(range(number))
    assert caught_up["per_node"] == {"n1": number, "n2": number, "n3": number}


async def test_a_service_connecting_never_lowers_the_streams_replicas(cluster):
    from services.common.bus import Bus

    operator = Bus(cluster.url, "operator", replicas=3)
    await operator.connect()
    service = Bus(cluster.url, "relief")  # NATS_REPLICAS left at its default of 1
    await service.connect()
    info = await service.js.stream_info("RELIEF")
    await operator.close()
    await service.close()
    assert info.config.num_replicas == 3
