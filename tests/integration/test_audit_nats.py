"""relief-audit reading a real nats-server: relief's events from stream RELIEF and the ledger's
from stream LEDGER (rules only: the events carry no recorded_at or evidence hash)."""

import asyncio
import subprocess
import sys
from datetime import datetime, timezone

import nats
import pytest

from contracts.base import encode, registry
from services.common.bus import ensure_streams
from services.common.natsserver import NatsServer
from services.ledger.audit import sample

pytestmark = pytest.mark.nats


def ledger_event(entry: dict, seq: int):
    event = registry["DistributionRecorded"](
        event_id=sample.uid("ev", "led", seq), occurred_at=datetime.now(timezone.utc),
        source_id=entry["entitlement_id"], source_version=1, entry_seq=seq, leaf_hash="ab" * 32,
        round_id=entry["round_id"], household_id=entry["household_id"], commune_code=entry["commune_code"],
        items=entry["items"], cash_vnd=entry["cash_vnd"], volunteer_id=entry["volunteer_id"],
        device_id=entry["device_id"], delivered_at=entry["delivered_at"].replace("Z", "+00:00"))
    return event


async def publish(url: str, events) -> None:
    nc = await nats.connect(url)
    js = nc.jetstream()
    await ensure_streams(js)
    for event in events:
        subject, payload, headers = encode(event)
        await js.publish(subject, payload, headers=headers)
    await nc.close()


def audit(url: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "services.ledger.audit.cli", "verify", "--source", url,
                           "--relief", url, "--no-progress"], capture_output=True, text=True, timeout=60)


def test_verify_over_nats_checks_the_rules(tmp_path):
    world = sample.World(households=12)
    relief = [registry[e["type"]].model_validate(e["data"]) for e in world.relief_events()]
    deliveries = list(world.deliveries())
    with NatsServer(tmp_path / "nats") as server:
        asyncio.run(publish(server.url, relief + [ledger_event(e, n) for n, e in enumerate(deliveries, 1)]))
        done = audit(server.url)
        assert done.returncode == 0, done.stdout + done.stderr
        assert "rules only" in done.stdout
        asyncio.run(publish(server.url, [ledger_event(deliveries[4], 13)]))
        done = audit(server.url)
        assert done.returncode == 1 and done.stdout.startswith("FAIL seq=13 rule=double_delivery"), done.stdout
