"""Campaigns, donations, receipts and stock over HTTP, on SQLite and on PostgreSQL.
NATS is unreachable on purpose: recording must not depend on the bus."""

import hashlib
from concurrent.futures import ThreadPoolExecutor
from datetime import date, timedelta
from uuid import UUID, uuid4

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from fastapi.testclient import TestClient

from services.common.auth import Role
from services.relief.domain import HouseholdEligibility
from services.relief.main import create
from tests.signin import signed_in

TODAY = date.today()


def officer(settings) -> dict[str, str]:
    """A relief officer of every committee, named as the events will record them."""
    return signed_in(settings, Role.relief_officer, username="can bo Lan")


@pytest.fixture
def client(settings_for):
    settings = settings_for("relief", NATS_URL="nats://127.0.0.1:1")
    with TestClient(create(settings), headers=officer(settings)) as client:
        yield client


def campaign_body(**fields) -> dict:
    return {"level": "commune", "unit_code": "00070", "name": "Chung tay vì người dân Hoàn Kiếm",
            "purpose": "Hỗ trợ hộ gia đình cách ly", "legal_basis": "decree_93_2021",
            "call_document": "Thư kêu gọi số 01/TKG-MTTQ", "opens_on": str(TODAY - timedelta(days=10)),
            "closes_on": str(TODAY + timedelta(days=10)),
            "accounts": [{"kind": "bank", "number": "0011001234567", "bank_name": "Vietcombank"}]} | fields


def donation_body(**fields) -> dict:
    return {"donor": {"kind": "organisation", "name": "Công ty TNHH Bình An", "contact": "0912345678",
                      "public_consent": True},
            "received_on": str(TODAY), "channel": "goods", "cash_vnd": 2_000_000,
            "goods": [{"item_code": "rice", "quantity": 100, "unit_value_vnd": 18_000},
                      {"item_code": "milk", "quantity": 24, "unit_value_vnd": 8_000,
                       "expiry_date": str(TODAY + timedelta(days=5))}]} | fields


def new_campaign(client, **fields) -> dict:
    response = client.post("/campaigns", json=campaign_body(**fields))
    assert response.status_code == 201, response.text
    return response.json()


def donate(client, campaign_id, key=None, **fields):
    headers = {"Idempotency-Key": key} if key else {}
    return client.post(f"/campaigns/{campaign_id}/donations", json=donation_body(**fields), headers=headers)


def error_fields(response) -> set[str]:
    assert response.status_code == 422, response.text
    return {".".join(str(p) for p in e["loc"][1:]) for e in response.json()["detail"]}


def test_a_campaign_is_opened_listed_and_extended(client):
    created = new_campaign(client)
    assert created["committee"] == "Ủy ban Mặt trận Tổ quốc Việt Nam Phường Hoàn Kiếm"
    assert created["opened_by"] == "can bo Lan"
    new_campaign(client, unit_code="00073")
    assert [c["id"] for c in client.get("/campaigns", params={"unit_code": "00070"}).json()] == [created["id"]]
    assert len(client.get("/campaigns").json()) == 2
    new_close = str(TODAY + timedelta(days=40))
    extended = client.post(f"/campaigns/{created['id']}/extensions",
                           json={"closes_on": new_close, "approved_by": "Chủ tịch UBMTTQ", "document_ref": "QĐ 9"})
    assert extended.status_code == 200, extended.text
    assert extended.json()["closes_on"] == new_close and extended.json()["extensions"][0]["document_ref"] == "QĐ 9"
    shorter = client.post(f"/campaigns/{created['id']}/extensions",
                          json={"closes_on": str(TODAY), "approved_by": "X", "document_ref": "Y"})
    assert error_fields(shorter) == {"closes_on"}


@pytest.mark.parametrize("fields, field", [
    ({"legal_basis": "decree_64_2008"}, "legal_basis"),
    ({"legal_basis": "state_budget"}, "legal_basis"),
    ({"unit_code": "99999"}, "unit_code"),
    ({"accounts": []}, "accounts"),
    ({"accounts": [{"kind": "bank", "number": "1", "bank_name": "A"}, {"kind": "treasury", "number": "2"}]},
     "accounts"),
    ({"opens_on": "hôm nay"}, "opens_on"),
    ({"level": "district"}, "level"),
])
def test_bad_campaigns_are_422_naming_the_field(client, fields, field):
    assert field in error_fields(client.post("/campaigns", json=campaign_body(**fields)))


def test_a_donation_gets_a_receipt_and_a_printable_receipt(client):
    campaign = new_campaign(client)
    response = donate(client, campaign["id"])
    assert response.status_code == 201, response.text
    donation = response.json()
    assert donation["receipt_number"] == 1 and donation["goods_value_vnd"] == 100 * 18_000 + 24 * 8_000
    assert donation["goods"][0]["unit"] == "kg" and donation["recorded_by"] == "can bo Lan"
    receipt = client.get(donation["receipt_url"])
    assert receipt.status_code == 200 and receipt.headers["content-type"].startswith("text/html")
    for text in ("BIÊN NHẬN", "Số: <strong>1</strong>", "PHƯỜNG HOÀN KIẾM", "Nghị định số 93/2021/NĐ-CP",
                 "Công ty TNHH Bình An", "2.000.000 đồng", "Gạo", "Sữa", "Chung tay vì người dân Hoàn Kiếm"):
        assert text in receipt.text, text
    assert client.get(f"/campaigns/{campaign['id']}/donations/2/receipt").status_code == 404
    assert client.get(f"/campaigns/{uuid4()}/donations/1/receipt").status_code == 404
    listed = client.get(f"/campaigns/{campaign['id']}/donations").json()
    assert listed["total"] == 1 and listed["totals"]["donations"]["cash_vnd"] == 2_000_000


def test_an_anonymous_receipt_names_nobody(client):
    campaign = new_campaign(client)
    donation = donate(client, campaign["id"], donor={"kind": "anonymous"}, channel="cash", goods=[]).json()
    receipt = client.get(donation["receipt_url"]).text
    assert "Nhà hảo tâm ẩn danh" in receipt and donation["donor"]["name"] is None


def test_receipts_are_gapless_over_http_under_concurrency(client):
    campaign = new_campaign(client)
    with ThreadPoolExecutor(20) as pool:
        responses = list(pool.map(lambda i: donate(client, campaign["id"], cash_vnd=1000 + i), range(20)))
    assert all(r.status_code == 201 for r in responses), [r.text for r in responses if r.status_code != 201]
    assert sorted(r.json()["receipt_number"] for r in responses) == list(range(1, 21))


def test_an_idempotency_key_replays_the_same_receipt_and_refuses_another_body(client):
    campaign = new_campaign(client)
    first = donate(client, campaign["id"], key="tablet-7:0001")
    again = donate(client, campaign["id"], key="tablet-7:0001")
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json() == first.json()
    other = donate(client, campaign["id"], key="tablet-7:0001", cash_vnd=3_000_000)
    assert other.status_code == 409 and other.json()["error"] == "idempotency_key_reused"
    assert other.json()["receipt_number"] == 1 and other.json()["message"]
    assert client.get(f"/campaigns/{campaign['id']}/donations").json()["total"] == 1


def test_a_donation_outside_the_window_is_refused_with_the_window(client):
    campaign = new_campaign(client)
    response = donate(client, campaign["id"], received_on=str(TODAY - timedelta(days=11)))
    assert error_fields(response) == {"received_on"}
    detail = response.json()["detail"][0]
    assert detail["window"]["closes_on"] == str(TODAY + timedelta(days=10))
    assert "thời gian tiếp nhận" in detail["msg_vi"] and "receiving window" in detail["msg"]


@pytest.mark.parametrize("fields, field", [
    ({"cash_vnd": -1}, "cash_vnd"),
    ({"cash_vnd": 1.5}, "cash_vnd"),
    ({"channel": "crypto"}, "channel"),
    ({"donor": {"kind": "anonymous", "name": "A"}}, "donor.name"),
    ({"goods": [{"item_code": "gold", "quantity": 1}]}, "goods.0.item_code"),
    ({"goods": [{"item_code": "milk", "quantity": 1}]}, "goods.0.expiry_date"),
    ({"goods": [{"item_code": "rice", "quantity": 0}]}, "goods.0.quantity"),
    ({"earmark": {"household_id": str(uuid4())}}, "earmark.household_id"),
    ({"earmark": {}}, "earmark"),
    ({"received_on": "2099-01-01"}, "received_on"),
    ({"extra": 1}, "extra"),
])
def test_bad_donations_are_422_naming_the_field(client, fields, field):
    campaign = new_campaign(client)
    assert field in error_fields(donate(client, campaign["id"], **fields))


def test_unknown_campaigns_are_404(client):
    assert donate(client, uuid4()).status_code == 404
    assert client.get(f"/campaigns/{uuid4()}/stock").status_code == 404
    assert client.get(f"/campaigns/{uuid4()}").status_code == 404


def test_state_budget_aid_is_totalled_apart(client):
    campaign = new_campaign(client)
    donate(client, campaign["id"])
    aid = donate(client, campaign["id"], funding_source="Nghị quyết 68/NQ-CP", channel="cash", goods=[],
                 cash_vnd=50_000_000, donor={"kind": "organisation", "name": "UBND quận Hoàn Kiếm"})
    assert aid.status_code == 201 and aid.json()["legal_basis"] == "state_budget"
    totals = client.get(f"/campaigns/{campaign['id']}").json()["totals"]
    assert totals["donations"]["cash_vnd"] == 2_000_000 and totals["state_budget"]["cash_vnd"] == 50_000_000
    assert "Nghị quyết 68/NQ-CP" in client.get(aid.json()["receipt_url"]).text
    cash = client.get(f"/campaigns/{campaign['id']}/stock").json()["items"]["cash"]
    assert cash["received"] == 52_000_000 and cash["received_state_budget"] == 50_000_000


def test_stock_near_expiry_write_offs_and_transfers(client):
    here, there = new_campaign(client), new_campaign(client, unit_code="00073")
    donate(client, here["id"])
    items = client.get(f"/campaigns/{here['id']}/stock").json()["items"]
    assert items["rice"]["received"] == 100 and items["milk"]["available"] == 24
    near = client.get(f"/campaigns/{here['id']}/stock/near-expiry", params={"days": 7}).json()["lots"]
    assert [(lot["item_code"], lot["days_left"], lot["available"]) for lot in near] == [("milk", 5, 24)]
    assert client.get(f"/campaigns/{here['id']}/stock/near-expiry", params={"days": 2}).json()["lots"] == []
    off = client.post(f"/campaigns/{here['id']}/stock/write-offs",
                      json={"item_code": "milk", "quantity": 4, "reason": "damaged", "note": "hộp bị móp"})
    assert off.status_code == 201 and off.json()["level"]["written_off"] == 4
    bad = client.post(f"/campaigns/{here['id']}/stock/write-offs",
                      json={"item_code": "milk", "quantity": 4, "reason": "lost", "note": "x"})
    assert error_fields(bad) == {"reason"}
    too_much = client.post(f"/campaigns/{here['id']}/stock/write-offs",
                           json={"item_code": "milk", "quantity": 21, "reason": "spoiled", "note": "x"})
    assert too_much.status_code == 409 and too_much.json()["shortfall"] == {"milk": 1}
    sent = client.post(f"/campaigns/{here['id']}/stock/transfers",
                       json={"to_campaign_id": there["id"], "lines": [{"item_code": "rice", "quantity": 30}],
                             "document_ref": "CV 12/MTTQ"})
    assert sent.status_code == 201, sent.text
    transfer_id = sent.json()["transfer_id"]
    url = f"/campaigns/{there['id']}/stock/transfers/{transfer_id}/receive"
    assert client.post(f"/campaigns/{here['id']}/stock/transfers/{transfer_id}/receive").status_code == 409
    assert client.post(url).json()["received_by"] == "can bo Lan"
    twice = client.post(url)
    assert twice.status_code == 409 and twice.json()["transfer"]["transfer_id"] == transfer_id
    assert client.post(f"/campaigns/{there['id']}/stock/transfers/{uuid4()}/receive").status_code == 404
    mine = client.get(f"/campaigns/{here['id']}/stock").json()["items"]["rice"]
    theirs = client.get(f"/campaigns/{there['id']}/stock").json()["items"]["rice"]
    assert (mine["transferred_out"], mine["available"], theirs["received"]) == (30, 70, 30)
    for level in (mine, theirs):
        assert level["received"] == (level["allocated"] + level["available"] + level["written_off"]
                                     + level["transferred_out"])


def test_transfers_are_listed_on_both_sides_pending_then_received(client, settings_for):
    here, there = new_campaign(client), new_campaign(client, unit_code="00073")
    donate(client, here["id"])
    sent = client.post(f"/campaigns/{here['id']}/stock/transfers",
                       json={"to_campaign_id": there["id"], "lines": [{"item_code": "milk", "quantity": 6}],
                             "note": "hỗ trợ", "document_ref": "BB 3"})
    assert sent.status_code == 201, sent.text
    transfer_id = sent.json()["transfer_id"]

    def listed(campaign_id) -> list[dict]:  # read straight after the write: the model catches up first
        response = client.get(f"/campaigns/{campaign_id}/stock/transfers")
        assert response.status_code == 200, response.text
        return response.json()["items"]

    out, incoming = listed(here["id"]), listed(there["id"])
    assert [(t["transfer_id"], t["direction"], t["status"]) for t in out] == [(transfer_id, "out", "pending")]
    assert [(t["transfer_id"], t["direction"], t["status"]) for t in incoming] == [(transfer_id, "in", "pending")]
    view = out[0]
    assert view["lines"] == [{"item_code": "milk", "quantity": 6, "expiry": str(TODAY + timedelta(days=5))}]
    assert (view["from_campaign_id"], view["to_campaign_id"], view["note"], view["document_ref"]) == (
        here["id"], there["id"], "hỗ trợ", "BB 3")
    assert view["sent_by"] == "can bo Lan" and view["sent_on"] == str(TODAY) and view["sent_at"]
    assert view["received_on"] is view["received_at"] is view["received_by"] is None
    assert listed(new_campaign(client)["id"]) == []

    assert client.post(f"/campaigns/{there['id']}/stock/transfers/{transfer_id}/receive").status_code == 200
    later = client.post(f"/campaigns/{here['id']}/stock/transfers",
                        json={"to_campaign_id": there["id"], "lines": [{"item_code": "rice", "quantity": 1}],
                              "document_ref": "BB 4"}).json()["transfer_id"]
    for campaign_id in (here["id"], there["id"]):
        items = listed(campaign_id)
        assert [(t["transfer_id"], t["status"]) for t in items] == [(later, "pending"), (transfer_id, "received")]
        assert items[1]["received_by"] == "can bo Lan" and items[1]["received_on"] == str(TODAY)

    settings = settings_for("relief", NATS_URL="nats://127.0.0.1:1")
    for role in (Role.commune_staff, Role.volunteer):  # the committee's books are for office roles
        who = signed_in(settings, role, communes=["00070"], username="to-dan-pho")
        assert client.get(f"/campaigns/{here['id']}/stock/transfers", headers=who).status_code == 403
    assert client.get(f"/campaigns/{uuid4()}/stock/transfers").status_code == 404


def test_an_earmark_for_a_known_household_is_recorded(client):
    campaign = new_campaign(client)
    app = client.app.state.runtime.application
    home = HouseholdEligibility(household_id=uuid4(), source_version=1, commune_code="00070", village="Tổ 3",
                                member_count=2, poverty_status="poor", vulnerability={})
    app.save(home)
    response = donate(client, campaign["id"], earmark={"household_id": str(home.id)})
    assert response.status_code == 201, response.text
    assert "dành riêng cho hộ gia đình" in client.get(response.json()["receipt_url"]).text
    stock = client.get(f"/campaigns/{campaign['id']}/stock").json()["items"]["rice"]
    assert stock["earmarked"] == 100 and stock["free"] == 0


def test_the_catalogue_lists_units_and_perishables(client):
    catalogue = {item["code"]: item for item in client.get("/catalogue").json()}
    assert catalogue["cash"]["unit"] == "VND" and catalogue["milk"]["perishable"]
    assert not catalogue["rice"]["perishable"]


ANY_VALUE = st.one_of(st.none(), st.booleans(), st.integers(-10**20, 10**20), st.text(max_size=12),
                      st.sampled_from(["rice", "milk", "cash", "goods", "anonymous", "2021-12-11", "9999-12-31",
                                       "0001-01-01", str(uuid4())]),
                      st.lists(st.dictionaries(st.sampled_from(["item_code", "quantity", "expiry_date"]),
                                               st.sampled_from(["milk", 1, -1, "2030-01-01", None])), max_size=2),
                      st.dictionaries(st.sampled_from(["kind", "name", "household_id", "commune_code"]),
                                      st.sampled_from(["anonymous", "individual", "A", "00070", str(uuid4()), 5])))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(changes=st.dictionaries(st.sampled_from(["donor", "received_on", "channel", "cash_vnd", "goods", "earmark",
                                                "funding_source", "note"]), ANY_VALUE, max_size=3))
def test_no_donation_body_makes_a_500(client, changes):
    campaign_id = client.get("/campaigns").json()[0]["id"] if client.get("/campaigns").json() else \
        new_campaign(client)["id"]
    response = donate(client, campaign_id, key=hashlib.sha256(repr(changes).encode()).hexdigest(), **changes)
    assert response.status_code in (200, 201, 404, 409, 422), response.text


@pytest.mark.nats
def test_a_donation_is_published_on_the_bus_without_its_donor(settings_for, tmp_path):
    import asyncio

    import nats

    from contracts import decode
    from services.common.natsserver import NatsServer

    # A server of its own: the outbox's message ids (relief:<notification id>) restart with
    # each store, and the session's server would drop them as duplicates.
    with NatsServer(tmp_path / "nats") as server, \
            TestClient(create(settings_for("relief", NATS_URL=server.url)),
                       headers=officer(settings_for("relief"))) as client:  # same DATA_DIR, same keys
        nats_url = server.url
        campaign = new_campaign(client)
        donation = donate(client, campaign["id"]).json()

        async def fetch():
            nc = await nats.connect(nats_url)
            try:
                sub = await nc.jetstream().pull_subscribe("relief.donation.received.v1", stream="RELIEF")
                for _ in range(50):
                    try:
                        for message in await sub.fetch(10, timeout=0.2):
                            event = decode(message.headers["Event-Type"], message.data)
                            if event.campaign_id == UUID(campaign["id"]):
                                return event, message.data
                    except nats.errors.TimeoutError:
                        continue
            finally:
                await nc.close()

        event, payload = asyncio.run(fetch())
    assert event.receipt_number == 1 and event.source_id == UUID(donation["donation_id"])
    assert event.cash_vnd == 2_000_000 and [g.item_code for g in event.goods] == ["rice", "milk"]
    assert "Bình An" not in payload.decode() and "0912345678" not in payload.decode()
