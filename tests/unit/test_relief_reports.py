"""Reports over relief's own store (SQLite and PostgreSQL), numbers checked by hand against
the scenario in test_relief_reports_support; names come only from a stub households client."""

from datetime import date
from uuid import UUID

import pytest

from services.relief import reports
from services.relief.application import Relief
from services.relief.households_client import HouseholdsUnavailable
from tests.unit.test_relief_reports_support import STATE_BUDGET, build
from tests.unit.test_relief_rounds_support import COMMUNE, OTHER_COMMUNE


class StubHouseholds:
    def __init__(self, names: dict[UUID, str]):
        self.known = names
        self.asked: list[UUID] = []

    def names(self, ids):
        self.asked = list(ids)
        return {i: {"head_name": self.known[i], "village": "từ hộ gia đình", "commune_code": COMMUNE}
                for i in self.asked if i in self.known}


class DownHouseholds:
    def names(self, ids):
        raise HouseholdsUnavailable("connection refused")


@pytest.fixture
def app(settings_for):
    application = Relief(settings_for("relief"))
    yield application
    application.close()


@pytest.fixture
def s(app):
    return build(app)


def test_disclosure_totals_donors_and_state_budget_apart(app, s):
    d = reports.disclosure(app, s.campaign_id, StubHouseholds({}))
    assert d["campaign"]["call_document"] == "Thư kêu gọi số 01/TKG-MTTQ"
    assert d["campaign"]["legal_basis_vi"] == "Nghị định số 64/2008/NĐ-CP"
    assert (d["campaign"]["opens_on"], d["campaign"]["closes_on"]) == ("2021-07-01", "2021-09-30")
    assert d["campaign"]["accounts"][0]["number"] == "0011001234567"
    donations = d["received"]["donations"]
    assert (donations["count"], donations["cash_vnd"], donations["goods_value_vnd"], donations["total_vnd"]) == (
        4, 8_000_000, 1_900_000, 9_900_000)
    assert {g["item_code"]: g["quantity"] for g in donations["goods"]} == {"rice": 100, "sugar": 20}
    state = d["received"]["state_budget"]
    assert (state["count"], state["cash_vnd"], state["goods_value_vnd"]) == (1, 3_000_000, 750_000)
    assert state["sources"] == [{"funding_source": STATE_BUDGET, "count": 1, "cash_vnd": 3_000_000,
                                 "goods_value_vnd": 750_000}]
    named = d["donors"]["named"]
    assert [(n["receipt_number"], n["name"]) for n in named] == [(1, "Công ty TNHH Hoà Bình"), (2, "Nguyễn Văn Hảo")]
    assert d["donors"]["anonymous"] == {"count": 1, "cash_vnd": 1_000_000, "goods_value_vnd": 0}
    assert d["donors"]["not_named"] == {"count": 1, "cash_vnd": 2_000_000, "goods_value_vnd": 400_000}
    text = str(d)
    for secret in ("Trần Thị Kín", "0987 654 321", "0243 999 888", "UBND xã"):
        assert secret not in text  # no unconsenting name, no contact, state budget not a donor


def test_disclosure_distribution_per_commune_and_stock_left(app, s):
    d = reports.disclosure(app, s.campaign_id, StubHouseholds({}))
    there, here = d["distribution"]  # by commune code
    assert (here["commune_code"], here["entitlements"], here["served"], here["households"]) == (COMMUNE, 3, 1, 3)
    assert {i["item_code"]: (i["allocated"], i["delivered"], i["value_delivered_vnd"]) for i in here["items"]} == {
        "cash": (1_500_000, 500_000, 500_000), "rice": (30, 10, 150_000)}
    assert (there["commune_code"], there["entitlements"], there["served"]) == (OTHER_COMMUNE, 1, 1)
    stock = {s["item_code"]: s for s in d["stock"]}
    assert (stock["rice"]["received"], stock["rice"]["delivered"], stock["rice"]["pending"],
            stock["rice"]["available"]) == (150, 20, 20, 110)
    assert (stock["cash"]["delivered"], stock["cash"]["available"]) == (1_000_000, 9_000_000)
    assert (stock["sugar"]["written_off"], stock["sugar"]["available"]) == (5, 15)


def test_beneficiaries_carry_names_only_from_households(app, s):
    stub = StubHouseholds({s.a: "Lê Văn A", s.b: "Phạm Thị B", s.c: "Hoàng Văn C", s.d: "Đỗ Thị D"})
    b = reports.disclosure(app, s.campaign_id, stub)["beneficiaries"]
    assert set(stub.asked) == {s.a, s.b, s.c, s.d} and b["names_available"] and b["note"] is None
    rows = {r["household_id"]: r for r in b["households"]}
    assert {UUID(h): r["head_name"] for h, r in rows.items()} == stub.known
    a = rows[str(s.a)]
    assert (a["village"], a["status"], a["delivered_on"]) == ("từ hộ gia đình", "served", "2021-07-26")
    assert a["support"] == {"cash": 500_000, "rice": 10} and a["support_text"] == "Tiền mặt 500.000 đ; Gạo 10 kg"
    assert set(a) == {"household_id", "head_name", "village", "commune_code", "round_name", "support",
                      "support_text", "earmarked", "status", "delivered_on"}


def test_households_down_the_list_shows_ids_and_says_so(app, s):
    b = reports.disclosure(app, s.campaign_id, DownHouseholds())["beneficiaries"]
    assert not b["names_available"] and "Households could not be reached" in b["note"]
    assert b["count"] == 4 and all(r["head_name"] is None for r in b["households"])
    assert {r["village"] for r in b["households"]} == {"Thôn 1", "Thôn 2", "Thôn 9"}  # relief's own villages


def test_art13_balance_is_raised_less_spent_and_matches_stock_with_other_sources(app, s):
    summary = reports.summary(app, s.campaign_id)
    assert summary["raised"] == {"cash_vnd": 8_000_000, "goods_value_vnd": 1_900_000, "total_vnd": 9_900_000}
    round_, written = summary["spent"]["purposes"]
    assert (round_["name"], round_["households"], round_["served"]) == ("Đợt 1", 4, 2)
    assert (round_["cash_vnd"], round_["goods_value_vnd"]) == (2_000_000, 600_000)  # 4 × (500.000 + 10 kg × 15.000)
    assert round_["delivered"] == {"cash_vnd": 1_000_000, "goods_value_vnd": 300_000, "total_vnd": 1_300_000}
    assert (written["purpose"], written["goods_value_vnd"]) == ("written_off", 100_000)  # 5 kg sugar × 20.000
    assert summary["spent"]["total_vnd"] == 2_700_000
    assert summary["balance"] == {"cash_vnd": 6_000_000, "goods_value_vnd": 1_200_000, "total_vnd": 7_200_000}
    assert summary["balance"]["total_vnd"] == summary["raised"]["total_vnd"] - summary["spent"]["total_vnd"]
    assert summary["state_budget"]["total_vnd"] == 3_750_000
    # what is left in stock = balance + state-budget aid (both enter the same stock)
    levels = app.stock_levels(s.campaign_id)
    assert levels["cash"].available == summary["balance"]["cash_vnd"] + summary["state_budget"]["cash_vnd"]
    left = levels["rice"].available * 15_000 + levels["sugar"].available * 20_000
    assert left == summary["balance"]["goods_value_vnd"] + summary["state_budget"]["goods_value_vnd"]


def test_daily_report_counts_as_of_the_day(app, s):
    day = reports.daily(app, COMMUNE, date(2021, 7, 26))
    assert day["in_quarantine"] == {"households": 4, "by_village": [{"village": "Thôn 1", "households": 2},
                                                                     {"village": "Thôn 2", "households": 2}]}
    assert day["totals"] == {"entitled": 3, "served": 1, "served_on_day": 1, "not_served": 2,
                             "eligible_not_entitled": 1}
    assert [c["campaign_id"] for c in day["stock"]] == [str(s.campaign_id)]
    assert {i["item_code"]: i["available"] for i in day["stock"][0]["items"]}["rice"] == 110
    before = reports.daily(app, COMMUNE, date(2021, 7, 25))["totals"]
    assert (before["entitled"], before["served"], before["not_served"]) == (3, 0, 3)
    assert reports.daily(app, COMMUNE, date(2021, 7, 24))["totals"]["entitled"] == 0
    after = reports.daily(app, COMMUNE, date(2021, 8, 10))
    assert after["in_quarantine"]["households"] == 0 and after["totals"]["served"] == 1


def test_not_served_lists_who_waits_and_how_long(app, s):
    found = reports.not_served(app, COMMUNE, on=date(2021, 7, 28))
    waits = {UUID(h["household_id"]): (h["state"], h["waiting_days"]) for h in found["households"]}
    assert waits == {s.b: ("entitled", 8), s.c: ("entitled", 8), s.e: ("not_entitled", 4)}
    assert found["households"][-1]["household_id"] == str(s.e)  # longest wait first
    assert [(p["village"], p["entitled"], p["not_entitled"], p["longest_wait_days"]) for p in found["by_village"]] == [
        ("Thôn 1", 1, 0, 8), ("Thôn 2", 1, 1, 8)]
    village = reports.not_served(app, COMMUNE, village="thôn 2", on=date(2021, 7, 28))
    assert {UUID(h["household_id"]) for h in village["households"]} == {s.b, s.e}
    assert reports.not_served(app, OTHER_COMMUNE, on=date(2021, 7, 28))["total"] == 0


def test_a_household_unknown_to_households_is_listed_by_id_with_a_note(app, s):
    b = reports.disclosure(app, s.campaign_id, StubHouseholds({s.a: "Lê Văn A"}))["beneficiaries"]
    assert b["names_available"] and b["note"].startswith("3 hộ không tìm thấy tên")
    assert sorted(r["head_name"] or "" for r in b["households"]) == ["", "", "", "Lê Văn A"]


def test_html_escapes_what_people_typed(app, s):
    from services.relief.api_reports import templates

    stub = StubHouseholds({s.a: "<script>alert(1)</script>"})
    page = templates.get_template("report_disclosure.html").render(d=reports.disclosure(app, s.campaign_id, stub))
    assert "<script>alert" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page


def test_an_earmarked_gift_is_a_beneficiary_line_and_not_a_second_household_in_the_daily(app, s):
    app.record_donation(s.campaign_id, "thu-quy", donor={"kind": "anonymous"}, received_on=date(2021, 7, 27),
                        channel="cash", cash_vnd=200_000, goods=[], earmark={"household_id": s.b},
                        funding_source=None, note=None, today=date(2021, 7, 27))
    topped = app.top_up(s.round_id, "can-bo", on=date(2021, 7, 27))
    assert len(topped.issued) == 2  # e's package and b's gift
    day = reports.daily(app, COMMUNE, date(2021, 7, 28))["totals"]
    assert (day["entitled"], day["served"], day["not_served"], day["eligible_not_entitled"]) == (4, 1, 3, 0)
    rows = reports.disclosure(app, s.campaign_id, StubHouseholds({}))["beneficiaries"]["households"]
    gifts = [r for r in rows if r["earmarked"]]
    assert len(rows) == 6 and [(g["household_id"], g["support"]) for g in gifts] == [(str(s.b), {"cash": 200_000})]
    round_ = reports.summary(app, s.campaign_id)["spent"]["purposes"][0]
    assert (round_["households"], round_["cash_vnd"]) == (5, 5 * 500_000 + 200_000)
