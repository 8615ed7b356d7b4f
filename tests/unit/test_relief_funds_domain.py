"""Campaign, donation and stock rules on the aggregates alone (no store)."""

from datetime import date, timedelta
from uuid import uuid4

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.common.errors import Invalid
from services.relief.campaigns import Campaign, OutsideWindow, ReceiptBook, draft, fingerprint
from services.relief.stock import NotPending, Overdraft, StockItem

D93 = date(2021, 12, 11)
ACCOUNT = {"kind": "bank", "number": "0011001234567", "bank_name": "Vietcombank"}


def campaign(opens_on=date(2022, 1, 10), closes_on=date(2022, 1, 31), legal_basis="decree_93_2021",
             accounts=(ACCOUNT,), **fields) -> Campaign:
    return Campaign.open(**{"level": "commune", "unit_code": "00070", "name": "Chung tay vì người dân",
                            "purpose": "Hỗ trợ hộ cách ly", "legal_basis": legal_basis,
                            "call_document": "Thư kêu gọi số 01/TKG-MTTQ", "opens_on": opens_on,
                            "closes_on": closes_on, "accounts": list(accounts), "actor": "Lan", **fields})


def gift(c: Campaign, received_on=date(2022, 1, 15), today=date(2022, 2, 1), **fields) -> dict:
    values = {"donor": {"kind": "individual", "name": "Nguyễn Văn An", "public_consent": True},
              "received_on": received_on, "channel": "cash", "cash_vnd": 1_000_000, "goods": [], "earmark": None,
              "funding_source": None, "note": None} | fields
    return draft(c, today=today, **values)


# ---- the law as data ------------------------------------------------------------------

def test_decree_64_is_refused_for_a_campaign_opened_from_2021_12_11():
    with pytest.raises(Invalid) as error:
        campaign(opens_on=D93, closes_on=D93 + timedelta(days=30), legal_basis="decree_64_2008")
    assert error.value.field == "legal_basis" and "93/2021" in error.value.message_vi
    assert campaign(opens_on=D93 - timedelta(days=1), legal_basis="decree_64_2008").legal_basis == "decree_64_2008"


def test_decree_93_is_refused_before_it_came_into_force():
    with pytest.raises(Invalid) as error:
        campaign(opens_on=date(2021, 7, 1), closes_on=date(2021, 8, 1))
    assert error.value.field == "legal_basis"


def test_a_campaign_is_under_a_decree_never_the_state_budget():
    with pytest.raises(Invalid) as error:
        campaign(legal_basis="state_budget")
    assert error.value.field == "legal_basis"


def test_decree_93_allows_one_account_decree_64_several():
    with pytest.raises(Invalid) as error:
        campaign(accounts=[ACCOUNT, {**ACCOUNT, "number": "2"}])
    assert error.value.field == "accounts"
    old = campaign(opens_on=date(2021, 7, 1), closes_on=date(2021, 8, 1), legal_basis="decree_64_2008",
                   accounts=[ACCOUNT, {"kind": "treasury", "number": "3713"}])
    assert len(old.accounts) == 2


@pytest.mark.parametrize("fields, field", [
    ({"unit_code": "99999"}, "unit_code"),
    ({"level": "province", "unit_code": "00070"}, "unit_code"),
    ({"closes_on": date(2022, 1, 1)}, "closes_on"),
    ({"accounts": [{"kind": "bank", "number": "1", "bank_name": ""}]}, "accounts.0.bank_name"),
    ({"name": "  "}, "name"),
])
def test_campaign_fields_are_checked(fields, field):
    with pytest.raises(Invalid) as error:
        campaign(**fields)
    assert error.value.field == field


# ---- the receiving window -------------------------------------------------------------

def test_donations_outside_the_window_are_refused_naming_the_window():
    c = campaign()
    for day in (date(2022, 1, 9), date(2022, 2, 1)):
        with pytest.raises(OutsideWindow) as error:
            gift(c, received_on=day, today=date(2022, 3, 1))
        assert error.value.field == "received_on"
        assert "2022-01-10 – 2022-01-31" in error.value.message_vi and "window" in error.value.message_en
    assert gift(c, received_on=date(2022, 1, 10))["cash_vnd"] == 1_000_000
    assert gift(c, received_on=date(2022, 1, 31))["cash_vnd"] == 1_000_000


def test_an_extension_opens_the_window_further_and_is_kept_in_history():
    c = campaign()
    c.extend(date(2022, 2, 15), "Chủ tịch UBMTTQ phường", "QĐ 12/QĐ-MTTQ", "Lan")
    assert gift(c, received_on=date(2022, 2, 10), today=date(2022, 3, 1))["received_on"] == date(2022, 2, 10)
    c.extend(date(2022, 2, 28), "Chủ tịch UBMTTQ phường", "QĐ 15/QĐ-MTTQ", "Lan")
    assert [e["closes_on"] for e in c.extensions] == [date(2022, 2, 15), date(2022, 2, 28)]
    assert c.extensions[1]["previous_closes_on"] == date(2022, 2, 15)
    assert c.extensions[0]["approved_by"] == "Chủ tịch UBMTTQ phường"
    with pytest.raises(Invalid) as error:
        c.extend(date(2022, 2, 20), "X", "Y", "Lan")
    assert error.value.field == "closes_on"


def test_state_budget_aid_is_not_bound_by_the_window():
    c = campaign()
    aid = gift(c, received_on=date(2022, 2, 20), today=date(2022, 3, 1), funding_source="Nghị quyết 68/NQ-CP")
    assert aid["funding_source"] == "Nghị quyết 68/NQ-CP"


# ---- donations ---------------------------------------------------------------------------

@pytest.mark.parametrize("fields, field", [
    ({"donor": {"kind": "anonymous", "name": "Bí mật"}}, "donor.name"),
    ({"donor": {"kind": "individual", "name": ""}}, "donor.name"),
    ({"channel": "cash", "cash_vnd": 0}, "cash_vnd"),
    ({"channel": "goods", "cash_vnd": 0, "goods": []}, "goods"),
    ({"channel": "goods", "goods": [{"item_code": "gold", "quantity": 1}]}, "goods.0.item_code"),
    ({"channel": "goods", "goods": [{"item_code": "cash", "quantity": 1}]}, "goods.0.item_code"),
    ({"channel": "goods", "goods": [{"item_code": "milk", "quantity": 1, "unit_value_vnd": 1}]},
     "goods.0.expiry_date"),
    ({"channel": "goods", "goods": [{"item_code": "milk", "quantity": 1, "expiry_date": date(2022, 1, 1)}]},
     "goods.0.expiry_date"),
    ({"earmark": {"commune_code": "00070", "household_id": uuid4()}}, "earmark"),
    ({"earmark": {"commune_code": "99999"}}, "earmark.commune_code"),
    ({"received_on": date(2022, 1, 20), "today": date(2022, 1, 19)}, "received_on"),
])
def test_donation_fields_are_checked(fields, field):
    with pytest.raises(Invalid) as error:
        gift(campaign(), **fields)
    assert error.value.field == field


def test_an_anonymous_donor_is_never_named_nor_published():
    d = gift(campaign(), donor={"kind": "anonymous", "public_consent": True})
    assert d["donor"] == {"kind": "anonymous", "name": None, "contact": None, "public_consent": False}


def test_the_fingerprint_is_of_the_normalised_donation():
    c = campaign()
    assert fingerprint(gift(c, note="  cảm ơn  ")) == fingerprint(gift(c, note="cảm ơn"))
    assert fingerprint(gift(c)) != fingerprint(gift(c, cash_vnd=2_000_000))


def test_the_receipt_book_numbers_in_order_and_keeps_state_budget_apart():
    c = campaign()
    book = ReceiptBook(campaign_id=c.id)
    goods = [{"item_code": "rice", "quantity": 50, "unit_value_vnd": 18_000}]
    assert book.issue(gift(c)) == 1
    assert book.issue(gift(c, channel="goods", cash_vnd=0, goods=goods, earmark={"commune_code": "70"})) == 2
    assert book.issue(gift(c, cash_vnd=9_000_000, funding_source="Nghị quyết 68/NQ-CP")) == 3
    assert book.last_number == 3 and book.earmarked == [2]
    assert book.totals["donations"] == {"count": 2, "cash_vnd": 1_000_000, "goods_value_vnd": 900_000,
                                        "goods": {"rice": 50}, "earmarked_count": 1}
    assert book.totals["state_budget"]["cash_vnd"] == 9_000_000 and book.totals["state_budget"]["count"] == 1


# ---- stock ---------------------------------------------------------------------------------

TODAY = date(2022, 1, 15)


def milk(*lots: tuple[int, int | None]) -> StockItem:
    """Milk stock with lots of (quantity, days to expiry)."""
    stock = StockItem(campaign_id=uuid4(), item_code="milk", unit="hộp")
    for quantity, days in lots:
        stock.receive(quantity, TODAY + timedelta(days=days) if days is not None else None, None, "donation", "r")
    return stock


def assert_conserved(stock: StockItem) -> None:
    level = stock.level()
    assert level.received == level.allocated + level.available + level.written_off + level.transferred_out
    assert level.allocated == level.delivered + level.pending
    assert level.available >= 0 and level.pending >= 0 and level.delivered >= 0
    for lot in stock.lots.values():
        assert lot.available >= 0 and lot.allocated >= 0


def test_allocation_takes_the_first_expiry_first():
    stock = milk((10, 30), (5, 3), (8, 10))
    first, second = uuid4(), uuid4()
    stock.allocate({first: 7, second: 6}, TODAY)
    assert stock.allocations[str(first)].lots == {"2022-01-18/common": 5, "2022-01-25/common": 2}
    assert stock.allocations[str(second)].lots == {"2022-01-25/common": 6}
    assert_conserved(stock)


def test_allocation_skips_lots_expired_by_the_distribution_day():
    stock = milk((5, 3), (5, 30))
    with pytest.raises(Overdraft) as error:
        stock.allocate({uuid4(): 6}, TODAY + timedelta(days=4))
    assert error.value.shortfall == {"milk": 1} and error.value.item == "milk"
    stock.allocate({uuid4(): 5}, TODAY + timedelta(days=4))
    assert stock.lots["2022-01-18/common"].available == 5  # expired: left for a write-off


def test_allocation_never_overdraws_and_changes_nothing_when_short():
    stock = milk((10, 30))
    with pytest.raises(Overdraft) as error:
        stock.allocate({uuid4(): 6, uuid4(): 6}, TODAY)
    assert error.value.shortfall == {"milk": 2}
    assert stock.level().allocated == 0 and len(stock.pending_events) == 2  # opened, received


def test_an_allocation_is_applied_once():
    stock = milk((10, 30))
    allocation = uuid4()
    stock.allocate({allocation: 4}, TODAY)
    stock.allocate({allocation: 4}, TODAY)
    assert stock.level().allocated == 4


def test_earmarked_lots_serve_only_their_gift():
    stock = milk((4, 30))
    donation = uuid4()
    stock.receive(6, TODAY + timedelta(days=20), donation, "donation", "r2")
    assert stock.usable(TODAY) == 4 and stock.usable(TODAY, donation) == 6
    with pytest.raises(Overdraft):
        stock.allocate({uuid4(): 5}, TODAY)
    stock.allocate({uuid4(): 6}, TODAY, donation)
    assert stock.level().earmarked == 0 and stock.level().available == 4


def test_delivery_release_and_reversal_keep_the_identity():
    stock = milk((10, 30))
    allocation = uuid4()
    stock.allocate({allocation: 6}, TODAY)
    assert stock.deliver(allocation, 4, entry_seq=1) == 4
    assert stock.level().pending == 2
    with pytest.raises(NotPending):
        stock.release(allocation, 3)
    stock.release(allocation, 2)
    assert stock.level().allocated == 4 and stock.level().available == 6
    assert stock.reverse_delivery(allocation, 4, entry_seq=2) == 4
    assert stock.level().delivered == 0 and stock.level().pending == 4
    assert stock.deliver(allocation, 99, entry_seq=3) == 4  # never more than was allocated
    assert_conserved(stock)


def test_write_offs_take_the_named_lot_or_the_first_expiry():
    stock = milk((5, -1), (5, 30))
    assert stock.write_off(3, "expired", "hết hạn", "Lan") == {"2022-01-14/common": 3}
    assert stock.write_off(2, "damaged", "vỡ hộp", "Lan", lot="2022-02-14/common") == {"2022-02-14/common": 2}
    with pytest.raises(Overdraft):
        stock.write_off(4, "spoiled", "hỏng", "Lan", lot="2022-02-14/common")
    assert stock.level().written_off == 5
    assert_conserved(stock)


def test_near_expiry_lists_lots_with_stock_left():
    stock = milk((5, -1), (5, 3), (5, 30))
    stock.allocate({uuid4(): 5}, TODAY)  # takes the lot expiring in 3 days
    assert [lot.key for lot in stock.near_expiry(TODAY + timedelta(days=7))] == ["2022-01-14/common"]


OPERATIONS = st.lists(st.tuples(
    st.sampled_from(["receive", "allocate", "deliver", "reverse", "release", "write_off", "send"]),
    st.integers(0, 5), st.integers(1, 40), st.integers(-3, 20)), max_size=60)


@settings(max_examples=200, deadline=None)
@given(OPERATIONS)
def test_conservation_holds_after_any_sequence_of_operations(operations):
    stock = milk()
    allocations = [uuid4() for _ in range(6)]
    seq = 0
    for name, which, quantity, days in operations:
        allocation = allocations[which]
        seq += 1
        before = stock.level()
        try:
            match name:
                case "receive":
                    stock.receive(quantity, TODAY + timedelta(days=days), None, "donation", "r")
                case "allocate":
                    stock.allocate({allocation: quantity}, TODAY)
                case "deliver":
                    stock.deliver(allocation, quantity, seq)
                case "reverse":
                    stock.reverse_delivery(allocation, quantity, seq)
                case "release":
                    stock.release(allocation, quantity)
                case "write_off":
                    stock.write_off(quantity, "spoiled", "hỏng", "Lan")
                case "send":
                    stock.send(uuid4(), quantity, TODAY)
        except (Overdraft, NotPending):
            assert stock.level() == before  # a refused operation changes nothing
        assert_conserved(stock)
