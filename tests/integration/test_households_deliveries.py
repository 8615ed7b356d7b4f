"""Households shows what each household received, from the ledger's events over JetStream."""

import asyncio
import time
import uuid
from datetime import UTC, datetime

import pytest
from fastapi.testclient import TestClient

from contracts import DistributionRecorded, DistributionReversed, PackageLine, ReversalReason, encode
from services.common.bus import Bus
from services.households.main import create
from tests.signin import signed_in

pytestmark = pytest.mark.nats
HOUSEHOLD = {"head": {"name": "Lê Thị Hoa", "cccd": "001190054321"}, "commune_code": "00070",
             "village": "Tổ 3", "legal_basis": {"ground": "public_task", "reference": "CT 16"}}


def ledger_events(household_id: str, entitlement_id: uuid.UUID) -> list:
    common = dict(source_id=entitlement_id, round_id=uuid.uuid4(), household_id=uuid.UUID(household_id),
                  commune_code="00070", occurred_at=datetime.now(UTC))
    recorded = DistributionRecorded(**common, event_id=uuid.uuid4(), source_version=2, entry_seq=1,
                                    leaf_hash="ab" * 32, items=[PackageLine(item_code="rice", unit="kg", quantity=10)],
                                    cash_vnd=500_000, volunteer_id="tnv-07", device_id="phone-1",
                                    delivered_at=datetime(2021, 7, 26, 9, 30, tzinfo=UTC))
    reversed_ = DistributionReversed(**common, event_id=uuid.uuid4(), source_version=3, entry_seq=2,
                                     leaf_hash="cd" * 32, reverses_seq=1, reason=ReversalReason.wrong_household,
                                     reversed_by="can-bo-xa")
    return [recorded, recorded, reversed_]  # the copy arrives under another Msg-Id: applied once


async def publish(url: str, events: list) -> None:
    bus = Bus(url, "test-ledger")
    await bus.connect()
    for index, contract in enumerate(events):
        subject, payload, headers = encode(contract)
        await bus.js.publish(subject, payload, headers={**headers, "Nats-Msg-Id": f"test:{uuid.uuid4()}:{index}"})
    await bus.close()


def test_deliveries_and_reversals_reach_the_household_once(nats_server, settings_for):
    settings = settings_for("households", NATS_URL=nats_server.url)
    with TestClient(create(settings), headers=signed_in(settings)) as client:
        household_id = client.post("/households", json=HOUSEHOLD).json()["id"]
        asyncio.run(publish(nats_server.url, ledger_events(household_id, uuid.uuid4())))
        deadline = time.monotonic() + 15
        while True:
            deliveries = client.get(f"/households/{household_id}/deliveries").json()["deliveries"]
            if deliveries and deliveries[0]["reversed_by_seq"] or time.monotonic() > deadline:
                break
            time.sleep(0.1)
    assert len(deliveries) == 1
    assert deliveries[0]["items"] == [{"item_code": "rice", "unit": "kg", "quantity": 10}]
    assert deliveries[0]["cash_vnd"] == 500_000 and deliveries[0]["volunteer_id"] == "tnv-07"
    assert deliveries[0]["reversed_by_seq"] == 2


def test_a_household_with_no_delivery_has_an_empty_history(settings_for):
    settings = settings_for("households", NATS_URL="nats://127.0.0.1:1")
    with TestClient(create(settings), headers=signed_in(settings)) as client:
        household_id = client.post("/households", json=HOUSEHOLD).json()["id"]
        assert client.get(f"/households/{household_id}/deliveries").json()["deliveries"] == []
        assert client.get(f"/households/{uuid.uuid4()}/deliveries").status_code == 404
