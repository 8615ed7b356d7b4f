"""The funds commands on a real store (SQLite and PostgreSQL): gapless receipts under
concurrency, idempotency keys, earmarks, the allocation interface and the ledger handlers."""

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import date, datetime, timedelta, timezone
from uuid import uuid4

import pytest
from eventsourcing.persistence import IntegrityError, Tracking

from contracts import DistributionRecorded, DistributionReversed, DonationReceived
from services.common.errors import Invalid
from services.common.store import UnitOfWork
from services.relief import funds
from services.relief.application import Relief
from services.relief.campaigns import IdempotencyKeyReused, ReceiptBook
from services.relief.domain import HouseholdEligibility
from services.relief.stock import AllocationAlreadyMade, Overdraft, StockItem, TransferAlreadyReceived

TODAY = date.today()
HASH = "ab" * 32


@pytest.fixture
def app(settings_for):
    app = Relief(settings_for("relief"))
    yield app
    app.close()


def open_campaign(app: Relief, unit_code="00070", **fields):
    return app.open_campaign("Lan", **{
        "level": "commune", "unit_code": unit_code, "name": "Chung tay", "purpose": "Hỗ trợ hộ cách ly",
        "legal_basis": "decree_93_2021", "call_document": "Thư kêu gọi 01", "opens_on": TODAY - timedelta(days=30),
        "closes_on": TODAY + timedelta(days=30),
        "accounts": [{"kind": "treasury", "number": "3713.0.1234", "bank_name": None}], **fields})


def give(app: Relief, campaign_id, key=None, **fields):
    values = {"donor": {"kind": "organisation", "name": "Công ty A", "public_consent": True},
              "received_on": TODAY, "channel": "cash", "cash_vnd": 1_000_000, "goods": [], "earmark": None,
              "funding_source": None, "note": None} | fields
    return app.record_donation(campaign_id, "Lan", idempotency_key=key, **values)


def goods(*lines):
    return [{"item_code": code, "quantity": qty, "unit_value_vnd": 10_000,
             "expiry_date": TODAY + timedelta(days=days) if days is not None else None} for code, qty, days in lines]


def household(app: Relief):
    h = HouseholdEligibility(household_id=uuid4(), source_version=1, commune_code="00070", village="Tổ 1",
                             member_count=3, poverty_status="none", vulnerability={})
    app.save(h)
    return h.id


def test_receipts_are_gapless_under_twenty_concurrent_donations(app):
    campaign = open_campaign(app)
    homes = [household(app) for _ in range(5)]
    start = threading.Barrier(20)

    def donate(i):
        start.wait()
        earmark = {"household_id": homes[i % 5], "commune_code": None} if i % 4 == 0 else None
        return give(app, campaign.id, channel="goods", cash_vnd=1000 * (i + 1),
                    goods=goods(("rice", 10, None), ("milk", 2, 20)), earmark=earmark)[0]

    with ThreadPoolExecutor(20) as pool:
        donations = list(pool.map(donate, range(20)))
    assert sorted(d.receipt_number for d in donations) == list(range(1, 21))
    book = app.receipt_book(campaign.id)
    assert book.last_number == 20 and len(set(book.donation_ids(range(1, 21)))) == 20
    assert book.totals["donations"]["cash_vnd"] == sum(1000 * (i + 1) for i in range(20))
    assert book.totals["donations"]["earmarked_count"] == 5
    levels = app.stock_levels(campaign.id)
    assert levels["rice"].received == 200 and levels["rice"].earmarked == 50
    assert levels["cash"].received == book.totals["donations"]["cash_vnd"]
    gifts = app.earmarked_gifts(campaign.id)
    assert len(gifts) == 5 and {g.household_id for g in gifts} == set(homes)
    assert all(g.goods[0].item_code == "rice" and g.goods[0].quantity == 10 for g in gifts)


def test_the_same_idempotency_key_and_body_returns_the_first_receipt_even_concurrently(app):
    campaign = open_campaign(app)
    start = threading.Barrier(8)

    def post(_):
        start.wait()
        return give(app, campaign.id, key="phone-1:42")

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(post, range(8)))
    assert {d.receipt_number for d, _ in results} == {1}
    assert sum(created for _, created in results) == 1
    assert app.receipt_book(campaign.id).last_number == 1
    with pytest.raises(IdempotencyKeyReused) as error:
        give(app, campaign.id, key="phone-1:42", cash_vnd=2_000_000)
    assert error.value.details["receipt_number"] == 1
    assert give(app, campaign.id, key="phone-1:43")[0].receipt_number == 2


def test_an_earmark_for_an_unknown_household_is_refused(app):
    campaign = open_campaign(app)
    with pytest.raises(Invalid) as error:
        give(app, campaign.id, earmark={"household_id": uuid4(), "commune_code": None})
    assert error.value.field == "earmark.household_id"


def test_state_budget_aid_feeds_stock_but_not_donation_totals(app):
    campaign = open_campaign(app)
    give(app, campaign.id, cash_vnd=5_000_000)
    aid, _ = give(app, campaign.id, cash_vnd=30_000_000, funding_source="Nghị quyết 68/NQ-CP",
                  donor={"kind": "organisation", "name": "UBND quận"})
    assert aid.legal_basis == "state_budget"
    totals = app.receipt_book(campaign.id).totals
    assert totals["donations"]["cash_vnd"] == 5_000_000 and totals["state_budget"]["cash_vnd"] == 30_000_000
    cash = app.stock_levels(campaign.id)["cash"]
    assert cash.received == 35_000_000 and cash.received_state_budget == 30_000_000
    contract = funds.to_contract(next(iter(app.events.get(aid.id))))
    assert isinstance(contract, DonationReceived) and contract.legal_basis == "state_budget"


def test_a_donation_is_published_without_its_donor(app):
    campaign = open_campaign(app)
    d, _ = give(app, campaign.id, channel="goods", cash_vnd=0, goods=goods(("milk", 4, 10)),
                earmark={"commune_code": "00070", "household_id": None})
    contract = funds.to_contract(next(iter(app.events.get(d.id))))
    assert contract.receipt_number == 1 and contract.campaign_id == campaign.id
    assert contract.goods[0].model_dump() == {"item_code": "milk", "unit": "hộp", "quantity": 4}
    assert contract.earmark.commune_code == "00070"
    assert "Công ty" not in contract.model_dump_json()


def test_concurrent_allocations_never_overdraw(app):
    campaign = open_campaign(app)
    give(app, campaign.id, channel="goods", cash_vnd=0, goods=goods(("rice", 100, None)))
    start = threading.Barrier(20)

    def allocate(_):
        start.wait()
        for _ in range(200):
            try:
                app.save(*app.allocate(campaign.id, uuid4(), {"rice": 10}))
                return True
            except Overdraft:
                return False
            except IntegrityError:
                continue
        return None

    with ThreadPoolExecutor(20) as pool:
        outcomes = list(pool.map(allocate, range(20)))
    assert outcomes.count(True) == 10 and outcomes.count(False) == 10
    rice = app.stock_levels(campaign.id)["rice"]
    assert rice.allocated == 100 and rice.available == 0


def test_the_allocation_interface(app):
    campaign = open_campaign(app)
    give(app, campaign.id, channel="goods", cash_vnd=2_000_000, goods=goods(("milk", 5, 5), ("milk", 5, 40)))
    assert app.shortfall(campaign.id, {"milk": 8, "cash": 500_000}) == {}
    assert app.shortfall(campaign.id, {"milk": 12, "rice": 3}) == {"milk": 2, "rice": 3}
    entitlement = uuid4()
    changed = app.allocate(campaign.id, entitlement, {"milk": 6, "cash": 500_000})
    assert app.stock_levels(campaign.id)["milk"].allocated == 0  # nothing saved yet
    app.save(*changed)
    assert app.allocate(campaign.id, entitlement, {"milk": 6, "cash": 500_000}) == []
    with pytest.raises(AllocationAlreadyMade):
        app.allocate(campaign.id, entitlement, {"milk": 7})
    with pytest.raises(Overdraft) as error:
        app.allocate(campaign.id, uuid4(), {"milk": 5, "rice": 1})
    assert error.value.shortfall == {"milk": 1, "rice": 1}
    round_ = app.allocate_many(campaign.id, {uuid4(): {"milk": 2}, uuid4(): {"milk": 2}})
    app.save(*round_)
    assert app.stock_levels(campaign.id)["milk"].available == 0
    app.save(*app.release(campaign.id, entitlement, {"milk": 6, "cash": 500_000}))
    levels = app.stock_levels(campaign.id)
    assert levels["milk"].available == 6 and levels["cash"].available == 2_000_000


def test_earmarked_gifts_are_allocated_only_by_naming_them(app):
    campaign = open_campaign(app)
    home = household(app)
    d, _ = give(app, campaign.id, channel="goods", cash_vnd=300_000, goods=goods(("rice", 20, None)),
                earmark={"household_id": home, "commune_code": None})
    assert app.shortfall(campaign.id, {"rice": 1}) == {"rice": 1}
    [gift] = app.earmarked_gifts(campaign.id)
    assert gift.household_id == home and gift.cash_vnd == 300_000 and gift.receipt_number == 1
    needs = {line.item_code: line.quantity for line in gift.goods} | {"cash": gift.cash_vnd}
    app.save(*app.allocate(campaign.id, uuid4(), needs, donation_id=gift.donation_id))
    levels = app.stock_levels(campaign.id)
    assert levels["rice"].allocated == 20 and levels["cash"].allocated == 300_000


def ledger_event(kind, entitlement, seq, items=(), cash=0):
    common = dict(event_id=uuid4(), occurred_at=datetime.now(timezone.utc), source_id=entitlement,
                  source_version=seq, entry_seq=seq, leaf_hash=HASH, round_id=uuid4(), household_id=uuid4(),
                  commune_code="00070", items=[{"item_code": c, "unit": "hộp", "quantity": q} for c, q in items],
                  cash_vnd=cash)
    if kind == "recorded":
        return DistributionRecorded(**common, volunteer_id="v1", device_id="d1",
                                    delivered_at=datetime.now(timezone.utc))
    return DistributionReversed(**common, reverses_seq=seq - 1, reason="recorded_in_error", reversed_by="Lan")


def consume(app, *events):
    for position, event in enumerate(events, start=app.position("LEDGER/test") + 1):
        uow = UnitOfWork(app)
        funds.LEDGER_HANDLERS[type(event)](uow, event)
        uow.commit(Tracking("LEDGER/test", position))


def test_ledger_events_count_delivered_stock_once(app):
    campaign = open_campaign(app)
    give(app, campaign.id, channel="goods", cash_vnd=1_000_000, goods=goods(("milk", 10, 30)))
    entitlement = uuid4()
    app.save(*app.allocate(campaign.id, entitlement, {"milk": 4, "cash": 200_000}))
    delivered = ledger_event("recorded", entitlement, 7, [("milk", 4)], cash=200_000)
    consume(app, delivered, delivered)  # a copy of the entry changes nothing
    levels = app.stock_levels(campaign.id)
    assert levels["milk"].delivered == 4 and levels["milk"].pending == 0 and levels["cash"].delivered == 200_000
    consume(app, ledger_event("reversed", entitlement, 8, [("milk", 4)], cash=200_000))
    levels = app.stock_levels(campaign.id)
    assert levels["milk"].delivered == 0 and levels["milk"].pending == 4 and levels["cash"].pending == 200_000
    consume(app, ledger_event("recorded", uuid4(), 9, [("milk", 1)]))  # not allocated here: ignored
    assert app.stock_levels(campaign.id)["milk"].delivered == 0


def test_a_transfer_is_sent_and_received_once_with_its_lots(app):
    here, there = open_campaign(app), open_campaign(app, unit_code="00073")
    give(app, here.id, channel="goods", cash_vnd=0, goods=goods(("milk", 5, 3), ("milk", 10, 30)))
    transfer = app.transfer_out(here.id, "Lan", there.id, {"milk": 8}, "hỗ trợ phường bạn", "CV 5/MTTQ")
    assert [(line["quantity"], line["expiry"]) for line in transfer.lines] == [
        (5, TODAY + timedelta(days=3)), (3, TODAY + timedelta(days=30))]
    assert app.stock_levels(here.id)["milk"].transferred_out == 8
    with pytest.raises(Exception) as wrong:
        app.receive_transfer(here.id, transfer.id, "Lan")
    assert wrong.value.status_code == 409
    app.receive_transfer(there.id, transfer.id, "Hoa")
    with pytest.raises(TransferAlreadyReceived):
        app.receive_transfer(there.id, transfer.id, "Hoa")
    received = app.stock_levels(there.id)["milk"]
    assert received.received == 8 and [lot["expiry_date"] for lot in app.near_expiry(there.id, 5)] == [
        TODAY + timedelta(days=3)]
    with pytest.raises(Overdraft):
        app.transfer_out(here.id, "Lan", there.id, {"milk": 8}, "", "CV 6")


def test_random_operations_keep_the_identity_on_the_store(app):
    import random

    rng = random.Random(7)
    campaign = open_campaign(app)
    entitlements = []
    for step in range(60):
        action = rng.choice(["give", "allocate", "deliver", "write_off", "release"])
        try:
            if action == "give":
                give(app, campaign.id, channel="goods", cash_vnd=0,
                     goods=goods(("eggs", rng.randint(1, 30), rng.randint(1, 20))))
            elif action == "allocate":
                entitlement = uuid4()
                app.save(*app.allocate(campaign.id, entitlement, {"eggs": rng.randint(1, 15)}))
                entitlements.append(entitlement)
            elif action == "deliver" and entitlements:
                consume(app, ledger_event("recorded", rng.choice(entitlements), step + 1, [("eggs", 5)]))
            elif action == "write_off":
                app.write_off(campaign.id, "Lan", "eggs", rng.randint(1, 5), "spoiled", "vỡ")
            elif action == "release" and entitlements:
                app.save(*app.release(campaign.id, rng.choice(entitlements), {"eggs": 1}))
        except (Overdraft, funds.NotPending):
            pass
        eggs = app.stock_levels(campaign.id).get("eggs")
        if eggs:
            assert eggs.received == eggs.allocated + eggs.available + eggs.written_off + eggs.transferred_out
            assert eggs.allocated == eggs.delivered + eggs.pending and eggs.pending >= 0


def test_several_allocations_share_loaded_stock_before_one_save(app):
    campaign = open_campaign(app)
    home = household(app)
    give(app, campaign.id, channel="goods", cash_vnd=0, goods=goods(("rice", 10, None)))
    gift, _ = give(app, campaign.id, channel="goods", cash_vnd=0, goods=goods(("rice", 5, None)),
                   earmark={"household_id": home, "commune_code": None})
    loaded = {}
    changed = app.allocate(campaign.id, uuid4(), {"rice": 10}, loaded=loaded)
    with pytest.raises(Overdraft):  # refused without touching what the first call changed
        app.allocate(campaign.id, uuid4(), {"rice": 1}, loaded=loaded)
    changed += app.allocate(campaign.id, uuid4(), {"rice": 5}, donation_id=gift.id, loaded=loaded)
    app.save(*changed)
    rice = app.stock_levels(campaign.id)["rice"]
    assert rice.allocated == 15 and rice.available == 0


def test_snapshots_of_the_receipt_book_and_stock_load_the_same_state(settings_for, monkeypatch):
    monkeypatch.setattr(funds.FundsCommands, "snapshotting_intervals", {ReceiptBook: 3, StockItem: 3})
    app = Relief(settings_for("relief"))
    try:
        campaign = open_campaign(app)
        for i in range(7):
            give(app, campaign.id, channel="goods", goods=goods(("milk", 2, 10 + i)))
        app.save(*app.allocate(campaign.id, uuid4(), {"milk": 5}))
        book_id, milk_id = ReceiptBook.create_id(campaign.id), StockItem.create_id(campaign.id, "milk")
        assert [s.originator_version for s in app.snapshots.get(book_id)] == [3, 6]
        assert list(app.snapshots.get(milk_id))
        for aggregate_id in (book_id, milk_id):
            from_snapshot = app.repository.get(aggregate_id)
            replayed = _replay(app.events.get(aggregate_id))
            assert vars(from_snapshot) == vars(replayed)
        assert app.receipt_book(campaign.id).last_number == 7
        assert app.stock_levels(campaign.id)["milk"].allocated == 5
    finally:
        app.close()


def _replay(events):
    aggregate = None
    for event in events:
        aggregate = event.mutate(aggregate)
    return aggregate


def test_campaigns_opened_concurrently_are_all_listed(app):
    start = threading.Barrier(10)

    def open_one(_):
        start.wait()
        return open_campaign(app).id

    with ThreadPoolExecutor(10) as pool:
        opened = set(pool.map(open_one, range(10)))
    assert {c.id for c in app.campaigns()} == opened and len(opened) == 10
    assert all(app.receipt_book(campaign_id).last_number == 0 for campaign_id in opened)
