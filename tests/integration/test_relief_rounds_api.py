"""The rounds HTTP API over the relief app (SQLite and PostgreSQL). NATS is unreachable on
purpose: households' events are applied as relief's consumer would, straight to the store."""

import uuid

import pytest
from fastapi.testclient import TestClient

from services.common.auth import Role
from services.relief.main import create
from tests.signin import signed_in
from tests.unit.test_relief_rounds_support import COMMUNE, OTHER_COMMUNE, Feed


@pytest.fixture
def relief(settings_for):
    settings = settings_for("relief", NATS_URL="nats://127.0.0.1:1")
    officer = signed_in(settings, Role.relief_officer, communes=[COMMUNE], username="Lan (MTTQ xã)")
    with TestClient(create(settings), headers=officer) as client:
        yield client, Feed(client.app.state.runtime.application)


def campaign(client) -> str:
    response = client.post("/campaigns", json={
        "level": "commune", "unit_code": COMMUNE, "name": "Chung tay chống dịch", "purpose": "Hộ cách ly",
        "legal_basis": "decree_64_2008", "call_document": "Thư kêu gọi 01/TKG", "opens_on": "2021-07-01",
        "closes_on": "2021-09-30", "accounts": [{"kind": "bank", "number": "0011", "bank_name": "Vietcombank"}]})
    assert response.status_code == 201, response.text
    return response.json()["id"]


def donate(client, campaign_id, cash=0, goods=None, earmark=None):
    response = client.post(f"/campaigns/{campaign_id}/donations", json={
        "donor": {"kind": "organisation", "name": "Công ty A", "public_consent": True}, "received_on": "2021-07-21",
        "channel": "goods" if goods else "cash", "cash_vnd": cash,
        "goods": [{"item_code": k, "quantity": q} for k, q in (goods or {}).items()], "earmark": earmark})
    assert response.status_code == 201, response.text
    return response.json()


def round_body(campaign_id, **eligibility):
    return {"campaign_id": campaign_id, "name": "Đợt 1 — hộ cách ly", "planned_on": "2021-07-25",
            "package": {"items": {"rice": 10}, "cash_vnd": 200_000, "per_member": {"sugar": 1}, "member_cap": 3},
            "eligibility": {"commune_codes": [COMMUNE], "quarantine_on": "2021-07-25", **eligibility}}


def test_a_round_from_draft_to_issue_top_up_and_cancel(relief):
    client, feed = relief
    campaign_id = campaign(client)
    in_quarantine = [feed.register(members=m) for m in (2, 5)]
    for household in in_quarantine:
        feed.quarantine(household)
    elsewhere = feed.register(OTHER_COMMUNE)
    feed.quarantine(elsewhere)
    donate(client, campaign_id, goods={"rice": 25, "sugar": 100})
    donate(client, campaign_id, cash=1_000_000)

    created = client.post("/rounds", json=round_body(campaign_id))
    assert created.status_code == 201, created.text
    round_ = created.json()
    assert round_["status"] == "draft" and round_["created_by"] == "Lan (MTTQ xã)"
    assert round_["package"]["items"] == {"rice": 10, "cash": 200_000}
    assert [r["id"] for r in client.get("/rounds", params={"campaign_id": campaign_id}).json()["rounds"]] == [
        round_["id"]]

    edited = client.patch(f"/rounds/{round_['id']}", json={"name": "Đợt 1 (sửa)", "planned_on": "2021-07-26"})
    assert edited.status_code == 200 and (edited.json()["name"], edited.json()["planned_on"]) == (
        "Đợt 1 (sửa)", "2021-07-26")
    assert client.patch(f"/rounds/{round_['id']}", json={"colour": "red"}).status_code == 422
    preview = client.get(f"/rounds/{round_['id']}/preview").json()
    assert preview["eligible"] == 2 and preview["needs"] == {"cash": 400_000, "rice": 20, "sugar": 5}
    assert preview["shortfall"] == {} and preview["stock"]["rice"] == 25
    assert {h["household_id"] for h in preview["households"]} == set(map(str, in_quarantine))

    issued = client.post(f"/rounds/{round_['id']}/issue")
    assert issued.status_code == 200, issued.text
    assert issued.json()["issued"] == 2 and issued.json()["round"]["status"] == "issued"
    again = client.post(f"/rounds/{round_['id']}/issue")
    assert again.status_code == 409 and again.json()["error"] == "round_not_draft"
    assert again.json()["round"]["issued"]["count"] == 2
    edit = client.patch(f"/rounds/{round_['id']}", json={"name": "Đợt 1b"})
    assert edit.status_code == 409

    listed = client.get(f"/rounds/{round_['id']}/entitlements", params={"status": "issued"}).json()
    assert listed["total"] == 2 and {e["household_id"] for e in listed["entitlements"]} == set(map(str, in_quarantine))
    one = client.get(f"/entitlements/{listed['entitlements'][0]['id']}").json()
    assert one["status"] == "issued" and one["units"]["rice"] == "kg"

    late = feed.register(members=1)
    feed.quarantine(late)
    waiting = client.get(f"/rounds/{round_['id']}/top-up/preview").json()
    assert waiting["eligible"] == 1 and waiting["shortfall"] == {"rice": 5}
    short = client.post(f"/rounds/{round_['id']}/top-up")
    assert short.status_code == 409 and short.json()["shortfall"] == {"rice": 5}
    donate(client, campaign_id, goods={"rice": 5})
    not_served = client.get(f"/rounds/{round_['id']}/not-served", params={"commune_code": COMMUNE}).json()
    assert not_served["total"] == 3 and not_served["by_place"][0]["not_entitled"] == 1
    topped = client.post(f"/rounds/{round_['id']}/top-up")
    assert topped.status_code == 200 and topped.json()["issued"] == 1
    assert client.post(f"/rounds/{round_['id']}/top-up").json()["issued"] == 0

    target = listed["entitlements"][0]["id"]
    cancelled = client.post(f"/entitlements/{target}/cancel", json={"reason": "issued_in_error", "note": "trùng"})
    assert cancelled.status_code == 200 and cancelled.json()["cancelled"]["reason"] == "issued_in_error"
    assert client.post(f"/entitlements/{target}/cancel", json={"reason": "other"}).status_code == 409
    rice = client.get(f"/campaigns/{campaign_id}/stock").json()["items"]["rice"]
    assert (rice["allocated"], rice["free"]) == (20, 10)  # three suất of 10 kg, one cancelled and released


def test_a_shortfall_is_a_409_with_how_short_and_priority_issues_what_stock_covers(relief):
    client, feed = relief
    campaign_id = campaign(client)
    poor, plain = feed.register(poverty="poor", members=1), feed.register(members=1)
    for household in (plain, poor):
        feed.quarantine(household)
    donate(client, campaign_id, goods={"rice": 15, "sugar": 10})
    donate(client, campaign_id, cash=1_000_000)
    round_id = client.post("/rounds", json=round_body(campaign_id)).json()["id"]
    refused = client.post(f"/rounds/{round_id}/issue")
    assert refused.status_code == 409, refused.text
    assert refused.json()["error"] == "shortfall" and refused.json()["shortfall"] == {"rice": 5}
    assert client.get(f"/rounds/{round_id}/entitlements").json()["total"] == 0
    prioritised = client.post(f"/rounds/{round_id}/issue", params={"prioritise": "true"}).json()
    assert prioritised["issued"] == 1 and [w["household_id"] for w in prioritised["waiting"]] == [str(plain)]
    entitlement = client.get(f"/rounds/{round_id}/entitlements").json()["entitlements"][0]
    assert entitlement["household_id"] == str(poor)


def test_an_earmarked_gift_reaches_its_household_only(relief):
    client, feed = relief
    campaign_id = campaign(client)
    named, other = feed.register(), feed.register()
    for household in (named, other):
        feed.quarantine(household)
    donate(client, campaign_id, goods={"rice": 100, "sugar": 100})
    donate(client, campaign_id, cash=1_000_000)
    gift = donate(client, campaign_id, cash=500_000, earmark={"household_id": str(named)})
    round_id = client.post("/rounds", json=round_body(campaign_id)).json()["id"]
    preview = client.get(f"/rounds/{round_id}/preview").json()
    assert preview["earmarked"] == [{"donation_id": gift["donation_id"], "households": [str(named)],
                                     "lines": [{"cash": 500_000}]}]
    client.post(f"/rounds/{round_id}/issue")
    rows = client.get(f"/rounds/{round_id}/entitlements").json()["entitlements"]
    gifts = [r for r in rows if r["earmarked_donation_id"]]
    assert [(g["household_id"], g["lines"]) for g in gifts] == [(str(named), {"cash": 500_000})]


@pytest.mark.parametrize("change, field", [
    ({"planned_on": "tomorrow"}, ["body", "planned_on"]),
    ({"package": {}}, ["body", "package"]),
    ({"package": {"items": {"gold": 1}}}, ["body", "package", "items", "gold", "[key]"]),
    ({"eligibility": {"quarantine_on": "2021-07-25", "quarantine_from": "2021-07-20"}},
     ["body", "eligibility", "quarantine_from"]),
    ({"eligibility": {"quarantine_from": "2021-07-25", "quarantine_to": "2021-07-20"}},
     ["body", "eligibility", "quarantine_to"]),
    ({"eligibility": {"commune_codes": ["70"]}}, ["body", "eligibility", "commune_codes", 0]),
    ({"eligibility": {"includes": [{"household_id": "00000000-0000-0000-0000-000000000001", "reason": ""}],
                      "commune_codes": [COMMUNE]}}, ["body", "eligibility", "includes", 0, "reason"]),
    ({"eligibility": {"poverty_statuses": ["rich"]}}, ["body", "eligibility", "poverty_statuses", 0]),
    ({"eligibility": {}}, ["body", "eligibility"]),
])
def test_bad_input_is_a_422_naming_the_field(relief, change, field):
    client, _ = relief
    body = {**round_body(str(uuid.uuid4())), **change}
    response = client.post("/rounds", json=body)
    assert response.status_code == 422, response.text
    assert [d["loc"] for d in response.json()["detail"]][0] == field


def test_unknown_records_are_404(relief):
    client, _ = relief
    unknown = uuid.uuid4()
    assert client.post("/rounds", json=round_body(str(unknown))).status_code == 404  # no such campaign
    for path in (f"/rounds/{unknown}", f"/rounds/{unknown}/preview", f"/entitlements/{unknown}",
                 f"/rounds/{unknown}/not-served"):
        response = client.get(path)
        assert response.status_code == 404 and response.json()["error"] == "not_found", path
    assert client.post(f"/rounds/{unknown}/issue").status_code == 404
    assert client.post(f"/entitlements/{unknown}/cancel", json={"reason": "other"}).status_code == 404
