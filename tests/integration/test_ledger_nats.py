"""The ledger as a running service on a real nats-server: it learns entitlements from relief's
events on RELIEF, and each delivery or reversal reaches LEDGER once.

Each test has its own nats-server: the relay's Nats-Msg-Id (ledger:<notification id>) starts
again at 1 with each fresh store, and a shared server's duplicate window would drop it."""

import asyncio
import time
import uuid

import nats
import orjson
import pytest
from fastapi.testclient import TestClient

from contracts import encode
from services.common.bus import ensure_streams
from services.common.natsserver import NatsServer
from services.ledger import main as ledger_main
from tests.unit.test_ledger_helpers import cancelled, config, delivery_body, issued, officer, volunteer
from tests.waiting import eventually

WAIT = 20.0


@pytest.fixture
def own_nats(tmp_path):
    with NatsServer(tmp_path / "nats") as server:
        yield server


def wait_until(check, what: str, timeout: float = WAIT):
    return eventually(check, what, timeout)


async def publish(url: str, events, copies: int = 1) -> None:
    """As relief's relay would, each copy with its own Nats-Msg-Id (so JetStream keeps both)."""
    nc = await nats.connect(url)
    try:
        js = nc.jetstream()
        await ensure_streams(js)
        for event in events:
            for _ in range(copies):
                subject, payload, headers = encode(event)
                headers["Nats-Msg-Id"] = f"relief-test:{uuid.uuid4()}"
                await js.publish(subject, payload, headers=headers)
    finally:
        await nc.close()


async def ledger_stream(url: str) -> list[tuple[str, dict]]:
    """Every message on LEDGER: (event type, payload)."""
    nc = await nats.connect(url)
    try:
        js = nc.jetstream()
        info = await js.stream_info("LEDGER")
        out = []
        if info.state.messages:
            sub = await js.pull_subscribe("ledger.>", stream="LEDGER")
            while len(out) < info.state.messages:
                for msg in await sub.fetch(500, timeout=5):
                    out.append((msg.headers["Event-Type"], orjson.loads(msg.data)))
                    await msg.ack()
            await sub.unsubscribe()
        return out
    finally:
        await nc.close()


def known(client, e) -> bool:
    return client.get(f"/entitlements/{e.source_id}").status_code == 200


@pytest.mark.nats
@pytest.mark.parametrize("relay", ["inline", "process"])
def test_entitlements_from_relief_and_deliveries_on_ledger_once(own_nats, settings_for, relay):
    entitlements = [issued() for _ in range(20)]
    gone = entitlements[-1]
    asyncio.run(publish(own_nats.url, [*entitlements, cancelled(gone)]))
    settings = settings_for("ledger", NATS_URL=own_nats.url, OUTBOX_RELAY=relay)
    with TestClient(ledger_main.create(settings, config()), headers=volunteer(settings)) as client:
        wait_until(lambda: all(known(client, e) for e in entitlements), "ledger learned the entitlements")
        wait_until(lambda: client.get(f"/entitlements/{gone.source_id}").json()["state"] == "cancelled", "cancelled")
        results = [client.post("/deliveries", json=delivery_body(e), headers={"Idempotency-Key": f"k-{i}"})
                   for i, e in enumerate(entitlements)]
        assert [r.status_code for r in results] == [201] * 19 + [409]
        again = client.post("/deliveries", json=delivery_body(entitlements[0]), headers={"Idempotency-Key": "k-0"})
        assert again.status_code == 200
        reversal = client.post(f"/deliveries/{results[0].json()['seq']}/reversal",
                               json={"reason": "recorded_in_error", "reversed_by": "staff-1"}, headers=officer(settings))
        assert reversal.status_code == 201
        wait_until(lambda: client.get("/healthz").json().get("outbox", {}).get("position", 0) >= 1,
                   lambda: f"relay running: {client.get('/healthz').json()}")

        def published():
            messages = asyncio.run(ledger_stream(own_nats.url))
            return messages if len(messages) >= 20 else None
        messages = wait_until(published, "20 ledger events on LEDGER")
    time.sleep(0.5)
    messages = asyncio.run(ledger_stream(own_nats.url))
    recorded = [m for t, m in messages if t == "DistributionRecorded"]
    reversed_ = [m for t, m in messages if t == "DistributionReversed"]
    assert len(recorded) == 19 and len(reversed_) == 1
    assert sorted(m["source_id"] for m in recorded) == sorted(str(e.source_id) for e in entitlements[:19])
    by_seq = {r.json()["seq"]: r.json() for r in results[:19]}
    for m in recorded:
        assert m["leaf_hash"] == by_seq[m["entry_seq"]]["leaf_hash"]
    assert reversed_[0]["reverses_seq"] == results[0].json()["seq"]


@pytest.mark.nats
def test_a_copy_of_every_relief_event_changes_nothing(own_nats, settings_for):
    entitlements = [issued() for _ in range(10)]
    asyncio.run(publish(own_nats.url, [*entitlements, cancelled(entitlements[0])], copies=2))
    settings = settings_for("ledger", NATS_URL=own_nats.url)
    with TestClient(ledger_main.create(settings, config())) as client:
        app = client.app.state.runtime.application
        consumer = wait_until(lambda: app and client.app.state.runtime.consumers, "consumer started")[0]
        wait_until(lambda: consumer.stats.handled + consumer.stats.skipped >= 22, "all 22 messages handled")
        for e in entitlements:
            assert app.get_or_none(e.source_id).version == (2 if e is entitlements[0] else 1)
        notifications = app.recorder.max_notification_id()
    assert notifications == 11
