"""Who may do what in households: sign-in, accounts, communes, masking and the access log."""

from concurrent.futures import ThreadPoolExecutor
from uuid import uuid4

import pytest
from fastapi.testclient import TestClient

from services.common.auth import Principal, Role
from services.households.access_log import ReadLog, reads
from services.households.application import Households, to_contract
from services.households.main import create, spec
from tests.signin import signed_in

WARD, OTHER_WARD = "00070", "00073"  # Hoàn Kiếm and Cửa Nam, Hà Nội
CCCD, PHONE = "079012345612", "0912345678"


@pytest.fixture
def service(settings_for):
    settings = settings_for("households", NATS_URL="nats://127.0.0.1:1")
    with TestClient(create(settings)) as client:
        yield client, settings


def body(cccd=CCCD, commune=WARD, name="Nguyễn Văn An") -> dict:
    return {"head": {"name": name, "cccd": cccd, "birth_year": 1970, "pregnant": True},
            "commune_code": commune, "village": "Thôn Đông", "phone": PHONE,
            "legal_basis": {"ground": "public_task", "reference": "CT 16"}}


def as_role(settings, role: Role, *communes: str, username: str | None = None) -> dict:
    return signed_in(settings, role=role, communes=communes or ("*",), username=username or f"t-{role}")


def test_sign_in_answers_a_token_the_api_accepts_and_a_wrong_password_401(service):
    client, settings = service
    admin = signed_in(settings)
    created = client.post("/users", headers=admin, json={
        "username": "Lan", "password": "mat-khau-dai", "role": "commune_staff", "communes": [WARD]})
    assert created.status_code == 201, created.text
    assert created.json()["username"] == "lan" and "password" not in str(created.json())
    user_id = created.json()["user_id"]
    assert "lan" not in user_id

    signed = client.post("/auth/token", data={"username": "lan", "password": "mat-khau-dai"})
    assert signed.status_code == 200, signed.text
    answer = signed.json()
    assert answer["token_type"] == "bearer" and answer["expires_in"] > 0
    assert answer["user"] == {"user_id": user_id, "username": "lan", "role": "commune_staff", "communes": [WARD]}
    bearer = {"Authorization": f"Bearer {answer['access_token']}"}
    assert client.get("/auth/me", headers=bearer).json()["user_id"] == user_id
    assert client.post("/households", json=body(), headers=bearer).status_code == 201

    for wrong in ({"username": "lan", "password": "sai-mat-khau"}, {"username": "ai-do", "password": "x" * 8}):
        refused = client.post("/auth/token", data=wrong)
        assert refused.status_code == 401 and refused.json()["message"].startswith("Sai")
    assert client.get("/auth/me").status_code == 401
    assert client.get("/households").status_code == 401


def test_a_disabled_account_cannot_sign_in_and_only_admins_manage_accounts(service):
    client, settings = service
    admin = signed_in(settings)
    client.post("/users", headers=admin, json={"username": "binh", "password": "mat-khau-dai",
                                               "role": "volunteer", "communes": [WARD]})
    staff = as_role(settings, Role.commune_staff, WARD)
    assert client.get("/users", headers=staff).status_code == 403
    assert client.patch("/users/binh", headers=staff, json={"active": False}).status_code == 403
    changed = client.patch("/users/binh", headers=admin, json={"active": False})
    assert changed.status_code == 200 and changed.json()["active"] is False
    assert client.post("/auth/token", data={"username": "binh", "password": "mat-khau-dai"}).status_code == 401
    client.patch("/users/binh", headers=admin, json={"active": True, "password": "mat-khau-moi"})
    assert client.post("/auth/token", data={"username": "binh", "password": "mat-khau-moi"}).status_code == 200
    assert [u["username"] for u in client.get("/users", headers=admin).json()["items"]] == ["binh"]
    assert client.patch("/users/khong-co", headers=admin, json={"active": False}).status_code == 404


def test_duplicate_usernames_are_409_showing_the_account_and_bad_input_422(service):
    client, settings = service
    admin = signed_in(settings)
    user = {"username": "hoa", "password": "mat-khau-dai", "role": "commune_staff", "communes": [WARD]}
    first = client.post("/users", headers=admin, json=user)
    again = client.post("/users", headers=admin, json=user | {"username": "HOA", "role": "auditor"})
    assert again.status_code == 409 and again.json()["user"]["user_id"] == first.json()["user_id"]
    assert again.json()["message"]  # Vietnamese first
    for change, field in [({"password": "ngan"}, "password"), ({"communes": ["99999"]}, "communes"),
                          ({"communes": ["*"]}, "communes"), ({"communes": []}, "communes"),
                          ({"role": "boss"}, "role"), ({"username": "a b"}, "username")]:
        response = client.post("/users", headers=admin, json=user | {"username": "moi"} | change)
        assert response.status_code == 422, (change, response.text)
        assert field in str(response.json()["detail"][0]["loc"])


def test_staff_of_one_commune_get_403_on_another_and_do_not_see_it_in_lookups(service):
    client, settings = service
    admin = signed_in(settings)
    ours = client.post("/households", json=body(), headers=admin).json()
    theirs = client.post("/households", json=body("079012345699", OTHER_WARD, "Nguyễn Văn Bình"), headers=admin).json()
    staff = as_role(settings, Role.commune_staff, WARD)

    denied = client.get(f"/households/{theirs['id']}", headers=staff)
    assert denied.status_code == 403 and OTHER_WARD in denied.json()["message"]
    assert client.post(f"/households/{theirs['id']}/corrections", json={"village": "X"}, headers=staff
                       ).status_code == 403
    assert client.post("/households", json=body("079012345677", OTHER_WARD), headers=staff).status_code == 403
    moved = client.post(f"/households/{ours['id']}/corrections", json={"commune_code": OTHER_WARD}, headers=staff)
    assert moved.status_code == 403
    assert client.get("/households", params={"commune_code": OTHER_WARD}, headers=staff).status_code == 403

    found = client.get("/households", params={"q": "nguyen van"}, headers=staff).json()
    assert [h["id"] for h in found["items"]] == [ours["id"]] and found["total"] == 1
    record = client.get(f"/households/{ours['id']}", headers=staff).json()
    assert record["head"]["cccd"] == CCCD and record["phone"] == PHONE  # their own commune: the full record


def test_volunteers_see_masked_lists_and_records_without_health_data(service):
    client, settings = service
    hid = client.post("/households", json=body(), headers=signed_in(settings)).json()["id"]
    volunteer = as_role(settings, Role.volunteer, WARD)
    found = client.get("/households", params={"q": CCCD}, headers=volunteer).json()["items"]
    assert [(h["head_cccd"], h["phone"]) for h in found] == [("0790******12", "0912****78")]
    record = client.get(f"/households/{hid}", headers=volunteer).json()
    assert record["head"]["cccd"] == "0790******12" and record["phone"] == "0912****78"
    assert "pregnant" not in record["head"] and "vulnerability" not in record and "quarantines" not in record
    assert CCCD not in str(record) and PHONE not in str(record)
    assert client.get(f"/households/{hid}/history", headers=volunteer).status_code == 403
    staff_list = client.get("/households", headers=as_role(settings, Role.commune_staff, WARD)).json()["items"]
    assert staff_list[0]["head_cccd"] == "0790******12"  # lists are masked for everyone


def test_auditors_read_everywhere_masked_and_write_nothing(service):
    client, settings = service
    hid = client.post("/households", json=body(), headers=signed_in(settings)).json()["id"]
    auditor = as_role(settings, Role.auditor)
    assert client.get("/households", headers=auditor).json()["total"] == 1
    record = client.get(f"/households/{hid}", headers=auditor).json()
    assert record["head"]["cccd"] == "0790******12"
    assert CCCD not in str(client.get(f"/households/{hid}/history", headers=auditor).json())
    for method, path, payload in [("post", "/households", body("079012345600")),
                                  ("post", f"/households/{hid}/corrections", {"village": "X"}),
                                  ("post", f"/households/{hid}/members", {"name": "B", "relation": "child"})]:
        refused = client.request(method, path, json=payload, headers=auditor)
        assert refused.status_code == 403 and refused.json()["allowed_roles"] == ["commune_staff"]
    assert client.post("/users", headers=auditor, json={}).status_code == 403


def test_the_access_log_lists_each_read_with_its_reason_for_admins_only(service):
    client, settings = service
    hid = client.post("/households", json=body(), headers=signed_in(settings)).json()["id"]
    staff = as_role(settings, Role.commune_staff, WARD, username="lan")
    client.get(f"/households/{hid}", headers=staff, params={"reason": "xác minh hộ nghèo"})
    client.get(f"/households/{hid}/history", headers={**staff, "X-Access-Reason": "kiểm tra".encode()})
    assert client.get(f"/households/{hid}/access-log", headers=staff).status_code == 403
    log = client.get(f"/households/{hid}/access-log", headers=signed_in(settings)).json()["reads"]
    assert [(r["username"], r["role"], r["what"], r["reason"]) for r in log] == [
        ("lan", "commune_staff", "detail", "xác minh hộ nghèo"), ("lan", "commune_staff", "history", "kiểm tra")]
    assert all(r["at"] for r in log)


def test_health_and_disclosure_stay_open(service):
    client, settings = service
    hid = client.post("/households", json=body(), headers=signed_in(settings)).json()["id"]
    assert client.get("/healthz").status_code in (200, 503)
    names = client.post("/households/disclosure-names", json={"ids": [hid]}).json()
    assert names == [{"household_id": hid, "head_name": "Nguyễn Văn An", "village": "Thôn Đông",
                      "commune_code": WARD}]


def test_concurrent_reads_are_group_committed_each_stored_once(settings_for):
    app = Households(settings_for("households"))
    writer = ReadLog(app)
    households = [uuid4(), uuid4()]
    who = Principal("u-1", "lan", Role.commune_staff, frozenset({WARD}))
    try:
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(lambda i: writer.record(households[i % 2], who, "detail", f"lần {i}"), range(40)))
        logged = [reads(app, household) for household in households]
        assert [len(entries) for entries in logged] == [20, 20]
        assert sorted(int(r["reason"].split()[1]) for entries in logged for r in entries) == list(range(40))
        events = [app.mapper.to_domain_event(n) for n in app.recorder.select_notifications(1, 100)]
        assert len(events) == 40 and not any(isinstance(e, spec.published_from) or to_contract(e) for e in events)
    finally:
        writer.stop()
        app.close()
