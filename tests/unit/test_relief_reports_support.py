"""A small relief scenario for the report tests, with every number checked by hand.

Donations (all received 2021-07-21):
  1 organisation "Công ty TNHH Hoà Bình" (did not ask to be named: organisations are) cash 5.000.000
  2 individual "Nguyễn Văn Hảo", agrees to be named: rice 100 kg at 15.000 = 1.500.000
  3 anonymous: cash 1.000.000
  4 individual "Trần Thị Kín", does not agree: cash 2.000.000 + sugar 20 kg at 20.000 = 400.000
  5 state budget (Nghị quyết 68/NQ-CP): cash 3.000.000 + rice 50 kg at 15.000 = 750.000
Donation totals: 4 receipts, cash 8.000.000, goods 1.900.000 (rice 100, sugar 20); state budget apart.
Households a (Thôn 1), b (Thôn 2), c (Thôn 1) in COMMUNE and d in OTHER_COMMUNE, in quarantine
2021-07-20..08-03. Round "Đợt 1" (2021-07-25): rice 10 kg + 500.000 đ each, issued to all four.
The ledger records deliveries to a and d on 2021-07-26 (16:00 in Vietnam). 5 kg sugar written off.
e (Thôn 2, COMMUNE) registers after the issue, in quarantine from 2021-07-24: eligible, not entitled.
"""

import itertools
from dataclasses import dataclass
from datetime import date, datetime, timezone
from uuid import UUID, uuid4

from eventsourcing.persistence import Tracking

from contracts import DistributionRecorded, HouseholdRegistered, PackageLine
from services.common.store import UnitOfWork
from services.relief.main import both
from services.relief.rounds import entitlement_id
from tests.unit.test_relief_rounds_support import COMMUNE, OTHER_COMMUNE, Feed, open_campaign

ISSUED_ON, DELIVERED_ON = date(2021, 7, 25), date(2021, 7, 26)
STATE_BUDGET = "Nghị quyết 68/NQ-CP"
_positions = itertools.count(1)


@dataclass
class Scenario:
    campaign_id: UUID
    round_id: UUID
    a: UUID
    b: UUID
    c: UUID
    d: UUID
    e: UUID


def donate(app, campaign_id, donor, cash=0, goods=None, funding_source=None):
    lines = [{"item_code": code, "quantity": q, "unit_value_vnd": v} for code, (q, v) in (goods or {}).items()]
    app.record_donation(campaign_id, "thu-quy", donor=donor, received_on=date(2021, 7, 21),
                        channel="goods" if lines and not cash else "cash", cash_vnd=cash, goods=lines,
                        earmark=None, funding_source=funding_source, note=None)


def register(feed: Feed, household_id: UUID, commune=COMMUNE, village="Thôn 1") -> UUID:
    feed.apply(HouseholdRegistered(**feed._next(household_id), commune_code=commune, village=village,
                                   member_count=3, poverty_status="none", vulnerability={}))
    return household_id


def deliver(app, round_id: UUID, household_id: UUID, commune: str = COMMUNE) -> None:
    seq = next(_positions)
    event = DistributionRecorded(
        event_id=uuid4(), occurred_at=datetime.now(timezone.utc), source_id=entitlement_id(round_id, household_id),
        source_version=1, entry_seq=seq, leaf_hash="0" * 64, round_id=round_id, household_id=household_id,
        commune_code=commune, items=[PackageLine(item_code="rice", unit="kg", quantity=10)], cash_vnd=500_000,
        volunteer_id="tnv-7", device_id="phone-1", delivered_at=datetime(2021, 7, 26, 9, tzinfo=timezone.utc))
    uow = UnitOfWork(app)
    both(DistributionRecorded)(uow, event)  # stock and entitlement, as relief's ledger consumer does
    uow.commit(Tracking(f"LEDGER/reports-{id(app)}", seq))


def build(app, ids: dict[str, UUID] | None = None) -> Scenario:
    """`ids`: household ids to use (those registered at a real households service)."""
    ids = {name: (ids or {}).get(name) or uuid4() for name in "abcde"}
    feed = Feed(app)
    campaign_id = open_campaign(app)
    donate(app, campaign_id, {"kind": "organisation", "name": "Công ty TNHH Hoà Bình", "contact": "0243 999 888",
                              "public_consent": False}, cash=5_000_000)
    donate(app, campaign_id, {"kind": "individual", "name": "Nguyễn Văn Hảo", "public_consent": True},
           goods={"rice": (100, 15_000)})
    donate(app, campaign_id, {"kind": "anonymous"}, cash=1_000_000)
    donate(app, campaign_id, {"kind": "individual", "name": "Trần Thị Kín", "contact": "0987 654 321",
                              "public_consent": False}, cash=2_000_000, goods={"sugar": (20, 20_000)})
    donate(app, campaign_id, {"kind": "organisation", "name": "UBND xã", "public_consent": True}, cash=3_000_000,
           goods={"rice": (50, 15_000)}, funding_source=STATE_BUDGET)
    for name, commune, village in (("a", COMMUNE, "Thôn 1"), ("b", COMMUNE, "Thôn 2"), ("c", COMMUNE, "Thôn 1"),
                                   ("d", OTHER_COMMUNE, "Thôn 9")):
        register(feed, ids[name], commune, village)
        feed.quarantine(ids[name], date(2021, 7, 20), date(2021, 8, 3))
    round_ = app.draft_round("can-bo", campaign_id, "Đợt 1", ISSUED_ON, {"items": {"rice": 10, "cash": 500_000}},
                             {"commune_codes": [COMMUNE, OTHER_COMMUNE], "quarantine_on": ISSUED_ON.isoformat()})
    assert len(app.issue(round_.id, "can-bo", on=ISSUED_ON).issued) == 4
    deliver(app, round_.id, ids["a"])
    deliver(app, round_.id, ids["d"], OTHER_COMMUNE)
    app.write_off(campaign_id, "thu-kho", "sugar", 5, "damaged", "ẩm mốc")
    register(feed, ids["e"], COMMUNE, "Thôn 2")
    feed.quarantine(ids["e"], date(2021, 7, 24), date(2021, 8, 7))
    return Scenario(campaign_id, round_.id, **ids)
