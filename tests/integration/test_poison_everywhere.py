"""Poison and malformed messages on every subject the services consume (households.> and ledger.>
at relief, relief.entitlement.> at the ledger): each is parked on DEADLETTER at once, the
/metrics dead-letter counter says the same, and a valid event published after is applied."""

import asyncio
import uuid
from datetime import datetime, timezone

import nats
import orjson
import pytest
from fastapi.testclient import TestClient

from contracts import ContractEvent, DistributionRecorded, HouseholdRegistered, encode
from services.common.bus import ensure_streams
from services.common.natsserver import NatsServer
from services.ledger import main as ledger_main
from services.relief.main import create as create_relief
from tests.integration.test_metrics import handled, wait_for
from services.relief.rounds import entitlement_id
from services.common.auth import Role
from tests.integration.test_relief_rounds_api import campaign, donate, round_body
from tests.signin import signed_in
from tests.unit.test_ledger_helpers import config, issued
from tests.unit.test_relief_rounds_support import COMMUNE, Feed

pytestmark = pytest.mark.nats
NOW = datetime(2021, 7, 20, 8, 0, tzinfo=timezone.utc)


def registered() -> HouseholdRegistered:
    return HouseholdRegistered(event_id=uuid.uuid4(), occurred_at=NOW, source_id=uuid.uuid4(), source_version=1,
                               commune_code="26734", village="Thôn 3", member_count=4, poverty_status="none",
                               vulnerability={})


def recorded(round_id: uuid.UUID, household_id: uuid.UUID) -> DistributionRecorded:
    return DistributionRecorded(event_id=uuid.uuid4(), occurred_at=NOW, source_id=entitlement_id(round_id, household_id),
                                source_version=1, entry_seq=1, leaf_hash="0" * 64, round_id=round_id,
                                household_id=household_id, commune_code=COMMUNE, volunteer_id="tnv-7",
                                device_id="phone-1", delivered_at=NOW)


def issue_one_entitlement(relief: TestClient) -> DistributionRecorded:
    """A round issued in relief, so that the ledger's delivery for it is one relief can apply."""
    feed = Feed(relief.app.state.runtime.application)
    household_id = feed.register()
    feed.quarantine(household_id)
    campaign_id = campaign(relief)
    donate(relief, campaign_id, goods={"rice": 25, "sugar": 100})
    donate(relief, campaign_id, cash=1_000_000)
    round_id = relief.post("/rounds", json=round_body(campaign_id)).json()["id"]
    assert relief.post(f"/rounds/{round_id}/issue").json()["issued"] == 1
    return recorded(uuid.UUID(round_id), household_id)


def poisons(valid: ContractEvent, free_text: str) -> list[tuple[str, bytes, dict | None]]:
    """(subject, payload, headers) of every kind of bad message, beside a valid event."""
    subject, payload, headers = encode(valid)
    body = orjson.loads(payload)
    stray = subject.rsplit(".", 2)[0] + ".stray.v9"  # under the same filter
    return [
        (subject, b"\x00\xff{not json", headers),
        (subject, b"[1, 2, 3]", headers),  # JSON, not an object
        (subject, orjson.dumps(body | {"source_version": "one", "event_id": 5}), headers),  # wrong types
        (subject, orjson.dumps(body | {"commune_code": "ABCDE"}), headers),  # valid JSON, fails the schema
        (subject, b"{}", headers),  # required fields missing
        (subject, payload, headers | {"Event-Type": "HouseholdExploded"}),  # unknown event type
        (subject, payload, None),  # no headers at all
        (subject, payload, headers | {"Event-Type": ""}),
        (subject, orjson.dumps(body | {free_text: "x" * 100_000}), headers),  # oversized field
        (stray, b"garbage", {"Event-Type": "??"}),
    ]


async def publish(url: str, messages) -> None:
    nc = await nats.connect(url)
    try:
        js = nc.jetstream()
        await ensure_streams(js)
        for subject, payload, headers in messages:
            await js.publish(subject, payload, headers=headers)
    finally:
        await nc.close()


async def parked(url: str, durable: str) -> int:
    nc = await nats.connect(url)
    try:
        info = await nc.jetstream().stream_info("DEADLETTER", subjects_filter=f"deadletter.{durable}.>")
        return sum((info.state.subjects or {}).values())
    finally:
        await nc.close()


@pytest.fixture
def own_nats(tmp_path):
    with NatsServer(tmp_path / "nats") as server:
        yield server


def test_every_consumed_subject_parks_poison_and_goes_on(settings_for, own_nats):
    url = own_nats.url
    officer = signed_in(settings_for("relief"), Role.relief_officer, communes=[COMMUNE], username="Lan")
    with TestClient(create_relief(settings_for("relief", NATS_URL=url)), headers=officer) as relief, \
            TestClient(ledger_main.create(settings_for("ledger", NATS_URL=url), config())) as ledger:
        clients = {"relief": relief, "ledger": ledger}
        household, entitlement, delivery = registered(), issued(), issue_one_entitlement(relief)
        cases = {  # consumer durable -> (service, its bad messages, then a valid one, valid events in all)
            "relief-households": ("relief", poisons(household, "village"), household, 1),
            "relief-ledger": ("relief", poisons(delivery, "volunteer_id"), delivery, 1),
            # relief's own relay publishes the round's entitlement too
            "ledger-relief": ("ledger", poisons(entitlement, "village"), entitlement, 2),
        }
        for _, bad, valid, _ in cases.values():
            asyncio.run(publish(url, [*bad, encode(valid)]))

        for durable, (service, bad, _, valid_events) in cases.items():
            client = clients[service]
            wait_for(lambda: handled(client, durable) == valid_events, f"{durable} applied the valid events")
            assert handled(client, durable, "dead_lettered") == len(bad) == asyncio.run(parked(url, durable))
            assert handled(client, durable, "retried") == 0  # no retry can fix these: parked at once
        assert relief.get(f"/eligibility/households/{household.source_id}").status_code == 200
        assert relief.get("/healthz").status_code == ledger.get("/healthz").status_code == 200
        total = sum(asyncio.run(parked(url, durable)) for durable in cases)
        print(f"dead letters counted: {total}")
        assert total == 30
