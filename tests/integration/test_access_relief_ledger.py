"""Issue 5 "Access" in relief and the ledger (SQLite and PostgreSQL, NATS unreachable on purpose):
who may write where, who only reads, what is public, and which tokens are refused.

Relief: officers write for their committees only; auditors read, never write; the disclosure is
public. Ledger: volunteers record deliveries in their communes only (a batch answers 403 per item),
officers reverse in scope; /ledger/* is public; the rest needs a token signed by the key ring."""

import uuid
from datetime import date, timedelta

import jwt
import pytest
from fastapi.testclient import TestClient

from services.common.auth import KeyRing, Principal, Role
from services.ledger import main as ledger_main
from services.relief.main import create as create_relief
from tests.signin import signed_in
from tests.unit.test_ledger_helpers import config, delivery_body, issued, learn, officer, signed_as, volunteer

HERE, THERE = "00070", "00004"  # two communes: the signed-in user's, and another one
NO_NATS = "nats://127.0.0.1:1"
TODAY = date.today()


class NoNames:
    """Households is not running: the public disclosure prints ids (relief says why)."""

    def names(self, ids):
        return {}


@pytest.fixture
def relief(settings_for):
    with TestClient(create_relief(settings_for("relief", NATS_URL=NO_NATS))) as client:
        client.app.state.households = NoNames()
        yield client


@pytest.fixture
def ledger(settings_for):
    with TestClient(ledger_main.create(settings_for("ledger", NATS_URL=NO_NATS), config(checkpoint_seconds=3600))) \
            as client:
        yield client


def as_(client, role: Role, communes=(HERE,), username: str | None = None) -> dict[str, str]:
    return signed_in(client.app.state.keyring.folder, role, communes, username or f"{role}-1")


def campaign_body(unit_code: str = HERE, level: str = "commune") -> dict:
    return {"level": level, "unit_code": unit_code, "name": "Chung tay chống dịch", "purpose": "Hộ cách ly",
            "legal_basis": "decree_93_2021", "call_document": "Thư kêu gọi 01/TKG",
            "opens_on": str(TODAY - timedelta(days=10)), "closes_on": str(TODAY + timedelta(days=10)),
            "accounts": [{"kind": "bank", "number": "0011", "bank_name": "Vietcombank"}]}


def donation_body() -> dict:
    return {"donor": {"kind": "organisation", "name": "Công ty A", "public_consent": True},
            "received_on": str(TODAY), "channel": "cash", "cash_vnd": 1_000_000}


def open_campaign(relief, unit_code: str = HERE, level: str = "commune") -> str:
    response = relief.post("/campaigns", json=campaign_body(unit_code, level), headers=as_(relief, Role.admin))
    assert response.status_code == 201, response.text
    return response.json()["id"]


# ---- relief ------------------------------------------------------------------------------

def test_an_officer_writes_only_for_the_committees_assigned(relief):
    mine = as_(relief, Role.relief_officer, [HERE], "can-bo-xa")
    opened = relief.post("/campaigns", json=campaign_body(HERE), headers=mine)
    assert opened.status_code == 201 and opened.json()["opened_by"] == "can-bo-xa"
    refused = relief.post("/campaigns", json=campaign_body(THERE), headers=mine)
    assert refused.status_code == 403, refused.text
    body = refused.json()
    assert body["error"] == "forbidden" and body["unit_code"] == THERE and body["your_communes"] == [HERE]
    assert "không được giao" in body["message"] and "not assigned" in body["message_en"]
    assert relief.post("/campaigns", json=campaign_body("1", "province"), headers=mine).status_code == 403
    assert relief.post("/campaigns", json=campaign_body("99999"), headers=mine).status_code == 422  # not a unit

    theirs = open_campaign(relief, THERE)
    for path, body in ((f"/campaigns/{theirs}/donations", donation_body()),
                       (f"/campaigns/{theirs}/extensions", {"closes_on": str(TODAY + timedelta(days=30)),
                                                            "approved_by": "UBND", "document_ref": "QĐ 1"}),
                       ("/rounds", {"campaign_id": theirs, "name": "Đợt 1", "planned_on": str(TODAY),
                                    "package": {"cash_vnd": 100_000}, "eligibility": {"commune_codes": [THERE]}})):
        response = relief.post(path, json=body, headers=mine)
        assert response.status_code == 403, (path, response.text)
    assert relief.post(f"/campaigns/{opened.json()['id']}/donations", json=donation_body(),
                       headers=mine).status_code == 201
    assert relief.post(f"/campaigns/{uuid.uuid4()}/donations", json=donation_body(), headers=mine).status_code == 404


def test_a_province_campaign_needs_the_province_code_or_everywhere(relief):
    province = campaign_body("1", "province")
    assert relief.post("/campaigns", json=province, headers=as_(relief, Role.relief_officer, [HERE])).status_code == 403
    assert relief.post("/campaigns", json=province, headers=as_(relief, Role.relief_officer, ["01"])).status_code == 201
    assert relief.post("/campaigns", json=province, headers=as_(relief, Role.relief_officer, ["*"])).status_code == 201


def test_an_auditor_reads_relief_but_writes_nothing(relief):
    campaign_id = open_campaign(relief)
    auditor = as_(relief, Role.auditor, ["*"])
    for path, body in (("/campaigns", campaign_body()), (f"/campaigns/{campaign_id}/donations", donation_body()),
                       (f"/campaigns/{campaign_id}/stock/write-offs", {"item_code": "rice", "quantity": 1,
                                                                      "reason": "spoiled"})):
        response = relief.post(path, json=body, headers=auditor)
        assert response.status_code == 403 and response.json()["allowed_roles"] == ["relief_officer"], path
    for path in ("/campaigns", f"/campaigns/{campaign_id}", f"/campaigns/{campaign_id}/donations",
                 f"/campaigns/{campaign_id}/stock", f"/campaigns/{campaign_id}/summary", "/rounds",
                 f"/reports/daily?commune_code={THERE}"):
        assert relief.get(path, headers=auditor).status_code == 200, path


def test_commune_staff_and_volunteers_read_their_communes_reports_only(relief):
    for role in (Role.commune_staff, Role.volunteer):
        who = as_(relief, role, [HERE])
        assert relief.get("/reports/daily", params={"commune_code": HERE}, headers=who).status_code == 200
        assert relief.get("/reports/not-served", params={"commune_code": HERE}, headers=who).status_code == 200
        assert relief.get("/reports/daily", params={"commune_code": THERE}, headers=who).status_code == 403
        assert relief.get("/campaigns", headers=who).status_code == 403  # the committee's books: office roles


def test_the_disclosure_is_public_and_the_rest_needs_a_token(relief):
    campaign_id = open_campaign(relief)
    for suffix in ("", ".json", ".html", ".csv", ".csv?table=donors"):
        assert relief.get(f"/campaigns/{campaign_id}/disclosure{suffix}").status_code == 200, suffix
    for method, path in (("GET", "/campaigns"), ("GET", f"/campaigns/{campaign_id}"), ("POST", "/campaigns"),
                         ("GET", f"/campaigns/{campaign_id}/summary"), ("GET", "/catalogue"),
                         ("GET", f"/eligibility/households/{uuid.uuid4()}"), ("POST", "/rounds"),
                         ("GET", f"/reports/daily?commune_code={HERE}")):
        response = relief.request(method, path, json={} if method == "POST" else None)
        assert response.status_code == 401, (method, path, response.text)
        assert response.json()["error"] == "unauthenticated" and "đăng nhập" in response.json()["message"]


# ---- ledger ------------------------------------------------------------------------------

def test_a_volunteer_records_only_in_their_communes_per_item_in_a_batch(ledger):
    mine, theirs, mine_too = issued(commune_code=HERE), issued(commune_code=THERE), issued(commune_code=HERE)
    learn(ledger.app.state.runtime.application, mine, theirs, mine_too)
    tnv = volunteer(ledger, "tnv-07", [HERE])
    refused = ledger.post("/deliveries", json=delivery_body(theirs), headers={"Idempotency-Key": "t1", **tnv})
    assert refused.status_code == 403, refused.text
    assert refused.json()["commune"] == THERE and "không được giao" in refused.json()["message"]
    assert ledger.get(f"/entitlements/{theirs.source_id}", headers=tnv).json()["state"] == "open"  # nothing recorded

    items = [delivery_body(mine) | {"idempotency_key": "b1"}, delivery_body(theirs) | {"idempotency_key": "b2"},
             delivery_body(mine_too, volunteer="tnv-99") | {"idempotency_key": "b3"},  # another volunteer's id
             delivery_body(mine_too) | {"idempotency_key": "b4"}]
    results = ledger.post("/deliveries/batch", json={"deliveries": items}, headers=tnv).json()["results"]
    assert [r["status"] for r in results] == [201, 403, 403, 201]
    assert results[2]["body"]["field"] == "volunteer_id"
    assert [r["body"]["seq"] for r in results if r["status"] == 201] == [1, 2]
    assert results[0]["body"]["receipt"]["entry"]["volunteer_id"] == "tnv-07"


def test_the_volunteer_recorded_is_the_signed_in_user(ledger):
    e = issued(commune_code=HERE)
    learn(ledger.app.state.runtime.application, e)
    body = delivery_body(e)
    del body["volunteer_id"]  # left out: the token says who
    tnv = volunteer(ledger, "tnv-42", [HERE])
    response = ledger.post("/deliveries", json=body, headers={"Idempotency-Key": "k", **tnv})
    assert response.status_code == 201 and response.json()["receipt"]["entry"]["volunteer_id"] == "tnv-42"
    again = ledger.post("/deliveries", json=body | {"volunteer_id": "tnv-42"}, headers={"Idempotency-Key": "k", **tnv})
    assert again.status_code == 200  # the same request, whether it names the volunteer or not


def test_reversals_by_officers_in_scope_and_auditors_write_nothing(ledger):
    e = issued(commune_code=HERE)
    learn(ledger.app.state.runtime.application, e)
    tnv = volunteer(ledger, "tnv-07", [HERE])
    seq = ledger.post("/deliveries", json=delivery_body(e), headers={"Idempotency-Key": "k", **tnv}).json()["seq"]
    auditor = signed_as(ledger, "kiem-toan", Role.auditor, ["*"])
    reversal = {"reason": "wrong_household"}
    assert ledger.post(f"/deliveries/{seq}/reversal", json=reversal, headers=auditor).status_code == 403
    assert ledger.post("/deliveries", json=delivery_body(e), headers={"Idempotency-Key": "a", **auditor}
                       ).status_code == 403
    assert ledger.post("/deliveries/batch", json={"deliveries": [delivery_body(e) | {"idempotency_key": "a"}]},
                       headers=auditor).status_code == 403
    assert ledger.post(f"/deliveries/{seq}/reversal", json=reversal, headers=tnv).status_code == 403
    assert ledger.post(f"/deliveries/{seq}/reversal", json=reversal,
                       headers=officer(ledger, "staff-2", [THERE])).status_code == 403
    assert ledger.get(f"/entitlements/{e.source_id}", headers=auditor).json()["state"] == "served"  # reads
    done = ledger.post(f"/deliveries/{seq}/reversal", json=reversal, headers=officer(ledger, "staff-1", [HERE]))
    assert done.status_code == 201 and done.json()["receipt"]["entry"]["reversed_by"] == "staff-1"


def test_the_ledgers_public_face_needs_no_token_and_the_rest_does(ledger):
    e = issued(commune_code=HERE)
    learn(ledger.app.state.runtime.application, e)
    tnv = volunteer(ledger, "tnv-07", [HERE])
    assert ledger.post("/deliveries", json=delivery_body(e), headers={"Idempotency-Key": "k", **tnv}).status_code == 201
    for path in ("/ledger/info", "/ledger/public-key", "/ledger/checkpoints", "/ledger/proof/1",
                 "/ledger/consistency?from=0", "/ledger/export"):
        assert ledger.get(path).status_code == 200, path
    for method, path in (("GET", f"/entitlements/{e.source_id}"), ("POST", "/deliveries"),
                         ("POST", "/deliveries/batch"), ("POST", "/deliveries/1/reversal")):
        assert ledger.request(method, path, json={} if method == "POST" else None).status_code == 401, path


def test_a_token_signed_by_another_key_is_refused(ledger, relief, tmp_path):
    foreign = KeyRing(tmp_path / "elsewhere").ensure()
    who = Principal("user:x", "x", Role.admin, frozenset({"*"}))
    own_kid = KeyRing(ledger.app.state.keyring.folder).ensure().current_kid()
    forged = jwt.encode(jwt.decode(foreign.issue(who), options={"verify_signature": False}),
                        _private_key(foreign), algorithm="EdDSA", headers={"kid": own_kid})
    for token in (foreign.issue(who), forged):  # an unknown key id; a known id over the wrong key
        headers = {"Authorization": f"Bearer {token}"}
        assert ledger.get(f"/entitlements/{uuid.uuid4()}", headers=headers).status_code == 401
        assert relief.get("/campaigns", headers=headers).status_code == 401
    assert relief.get("/campaigns", headers={"Authorization": "Bearer not-a-token"}).status_code == 401


def _private_key(ring: KeyRing):
    from cryptography.hazmat.primitives import serialization

    return serialization.load_pem_private_key((ring.folder / f"{ring.current_kid()}.key.pem").read_bytes(), None)
