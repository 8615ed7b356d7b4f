"""Reports over HTTP (SQLite and PostgreSQL): public disclosure as JSON, CSV with HXL and
printable HTML, the Art. 13 summary, the daily commune report and not-served across rounds.
Names come from a real households app (TestClient) at request time; NATS is unreachable on
purpose, so households' events reach relief as its consumer would apply them."""

import csv
import io
from uuid import UUID, uuid4

import pytest
from fastapi.testclient import TestClient

from services.common.auth import Role
from services.households.main import create as create_households
from services.relief.households_client import HttpHouseholds
from services.relief.main import create as create_relief
from tests.signin import signed_in
from tests.unit.test_relief_reports_support import build
from tests.unit.test_relief_rounds_support import COMMUNE, OTHER_COMMUNE

NO_NATS = "nats://127.0.0.1:1"
HEADS = {"a": ("Lê Văn An", "001070000011", "0912000011"), "b": ("Phạm Thị Bình", "001070000012", "0912000012"),
         "c": ("Hoàng Văn Cường", "001070000013", "0912000013"), "d": ("Đỗ Thị Dung", "001070000014", "0912000014"),
         "e": ("Vũ Văn Em", "001070000015", "0912000015")}
SPOUSE_CCCD = "001070000099"


@pytest.fixture
def services(settings_for):
    admin = signed_in(settings_for("households"), username="can-bo")  # one DATA_DIR, one key ring
    with TestClient(create_households(settings_for("households", NATS_URL=NO_NATS)), headers=admin) as households, \
            TestClient(create_relief(settings_for("relief", NATS_URL=NO_NATS))) as relief:  # signs in per request
        relief.app.state.households = HttpHouseholds(http=households)
        yield relief, households


def auditor(relief) -> dict[str, str]:
    """Reports other than the disclosure need a sign-in: an auditor's, who reads every commune."""
    return signed_in(relief.app.state.keyring.folder, Role.auditor, username="kiem-toan")


def register(households, name, cccd, phone, commune=COMMUNE, village="Thôn 1") -> UUID:
    response = households.post("/households", json={
        "head": {"name": name, "cccd": cccd, "birth_year": 1970},
        "members": [{"name": "Người Nhà", "relation": "spouse", "birth_year": 1972,
                     "cccd": str(int(SPOUSE_CCCD) + int(cccd[-2:])).zfill(12)}],
        "commune_code": commune, "village": village, "address": "Số 12, đường Lê Lợi", "phone": phone,
        "legal_basis": {"ground": "public_task", "reference": "Chỉ thị 16/CT-TTg"}})
    assert response.status_code == 201, response.text
    return UUID(response.json()["id"])


@pytest.fixture
def scenario(services):
    relief, households = services
    places = {"a": (COMMUNE, "Thôn 1"), "b": (COMMUNE, "Thôn 2"), "c": (COMMUNE, "Thôn 1"),
              "d": (OTHER_COMMUNE, "Thôn 9"), "e": (COMMUNE, "Thôn 2")}
    ids = {k: register(households, *HEADS[k], *places[k]) for k in HEADS}
    return build(relief.app.state.runtime.application, ids), relief, households


def disclosure_outputs(relief, campaign_id) -> dict[str, str]:
    base = f"/campaigns/{campaign_id}/disclosure"
    outputs = {}
    for path in ("", ".json", ".html", *(f".csv?table={t}" for t in ("distribution", "beneficiaries", "donors",
                                                                     "stock"))):
        response = relief.get(base + path)  # no sign-in: public
        assert response.status_code == 200, (path, response.text)
        outputs[path] = response.text
    return outputs


def test_public_disclosure_names_beneficiaries_from_households_and_nothing_personal(scenario):
    s, relief, _ = scenario
    outputs = disclosure_outputs(relief, s.campaign_id)
    d = relief.get(f"/campaigns/{s.campaign_id}/disclosure").json()
    assert d == relief.get(f"/campaigns/{s.campaign_id}/disclosure.json").json() | {"as_of": d["as_of"]}
    assert d["received"]["donations"]["total_vnd"] == 9_900_000 and d["donors"]["anonymous"]["count"] == 1
    names = {r["household_id"]: (r["head_name"], r["village"]) for r in d["beneficiaries"]["households"]}
    assert names == {str(s.a): ("Lê Văn An", "Thôn 1"), str(s.b): ("Phạm Thị Bình", "Thôn 2"),
                     str(s.c): ("Hoàng Văn Cường", "Thôn 1"), str(s.d): ("Đỗ Thị Dung", "Thôn 9")}
    assert "Lê Văn An" in outputs[".html"] and "Lê Văn An" in outputs[".csv?table=beneficiaries"]
    for path, text in outputs.items():
        for _, cccd, phone in HEADS.values():
            assert cccd not in text and phone not in text, path
        for private in ("Người Nhà", "Lê Lợi", "Chỉ thị 16", "F0", "F1", "Trần Thị Kín", "0987 654 321"):
            assert private not in text, (path, private)
    stored = " ".join(n.state.decode("utf-8", "replace") for n in
                      relief.app.state.runtime.application.recorder.select_notifications(1, 10_000))
    assert "Nguyễn Văn Hảo" in stored and "Lê Văn An" not in stored  # relief stores donors, never beneficiaries' names


def test_csv_has_an_hxl_row_and_the_numbers(scenario):
    s, relief, _ = scenario
    response = relief.get(f"/campaigns/{s.campaign_id}/disclosure.csv")
    assert response.headers["content-type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(response.text.lstrip("\ufeff"))))
    header, tags, *data = rows
    assert tags[:4] == ["#adm2+code", "#adm2+name", "#item+code", "#item+name"]
    assert all(tag.startswith("#") for tag in tags) and len(tags) == len(header)
    line = {(r[0], r[2]): dict(zip(header, r)) for r in data}[(COMMUNE, "rice")]
    assert (line["households_entitled"], line["households_served"], line["quantity_allocated"],
            line["quantity_delivered"], line["value_delivered_vnd"]) == ("3", "1", "30", "10", "150000")
    beneficiaries = list(csv.reader(io.StringIO(relief.get(
        f"/campaigns/{s.campaign_id}/disclosure.csv", params={"table": "beneficiaries"}).text.lstrip("\ufeff"))))
    assert beneficiaries[1][:3] == ["#adm2+code", "#loc+village", "#beneficiary+name"] and len(beneficiaries) == 6
    donors = relief.get(f"/campaigns/{s.campaign_id}/disclosure.csv", params={"table": "donors"}).text
    assert "Nhà hảo tâm ẩn danh (1)" in donors and "Cá nhân không công khai tên (1)" in donors
    assert relief.get(f"/campaigns/{s.campaign_id}/disclosure.csv", params={"table": "x"}).status_code == 422
    one = relief.get(f"/campaigns/{s.campaign_id}/disclosure", params={"commune_code": OTHER_COMMUNE}).json()
    assert [c["commune_code"] for c in one["distribution"]] == [OTHER_COMMUNE]
    assert [b["head_name"] for b in one["beneficiaries"]["households"]] == ["Đỗ Thị Dung"]
    assert one["received"]["donations"]["total_vnd"] == 9_900_000  # totals stay whole
    page = relief.get(f"/campaigns/{s.campaign_id}/disclosure.html", params={"commune_code": OTHER_COMMUNE}).text
    assert "Phân phối tại Phường Ba Đình" in page and "Lê Văn An" not in page


def test_households_unreachable_the_disclosure_still_renders_with_ids(scenario):
    s, relief, _ = scenario
    relief.app.state.households = HttpHouseholds("http://127.0.0.1:1", timeout=1)
    d = relief.get(f"/campaigns/{s.campaign_id}/disclosure").json()["beneficiaries"]
    assert not d["names_available"] and d["note"] and {r["head_name"] for r in d["households"]} == {None}
    page = relief.get(f"/campaigns/{s.campaign_id}/disclosure.html")
    assert page.status_code == 200 and "Không lấy được tên chủ hộ" in page.text and str(s.a) in page.text


def test_disclosure_names_resolve_merged_ids_and_say_nothing_else(services):
    _, households = services
    survivor = register(households, "Nguyễn Văn Sống", "001070000021", "0912000021")
    duplicate = register(households, "Nguyen Van Song", "001070000022", "0912000022")
    merged = households.post("/households/merge",
                             json={"survivor_id": str(survivor), "merged_id": str(duplicate)})
    assert merged.status_code == 200, merged.text
    unknown = uuid4()
    response = households.post("/households/disclosure-names",
                               json={"ids": [str(duplicate), str(survivor), str(unknown), str(survivor)]})
    assert response.status_code == 200, response.text
    assert response.json() == [
        {"household_id": str(duplicate), "head_name": "Nguyễn Văn Sống", "village": "Thôn 1", "commune_code": COMMUNE},
        {"household_id": str(survivor), "head_name": "Nguyễn Văn Sống", "village": "Thôn 1", "commune_code": COMMUNE}]
    assert households.post("/households/disclosure-names", json={"ids": ["x"]}).status_code == 422


def test_summary_daily_and_not_served(scenario):
    s, relief, _ = scenario
    relief.headers.update(auditor(relief))
    summary = relief.get(f"/campaigns/{s.campaign_id}/summary").json()
    assert summary["balance"]["total_vnd"] == summary["raised"]["total_vnd"] - summary["spent"]["total_vnd"] == (
        9_900_000 - 2_700_000)
    page = relief.get(f"/campaigns/{s.campaign_id}/summary.html")
    assert page.status_code == 200 and "7.200.000" in page.text and "Đợt 1" in page.text
    daily = relief.get("/reports/daily", params={"commune_code": COMMUNE, "date": "2021-07-26"}).json()
    assert daily["in_quarantine"]["households"] == 4 and daily["totals"]["not_served"] == 2
    page = relief.get("/reports/daily.html", params={"commune_code": COMMUNE, "date": "2021-07-26"})
    assert page.status_code == 200 and "26/07/2021" in page.text and "Hoàn Kiếm" in page.text
    waiting = relief.get("/reports/not-served", params={"commune_code": COMMUNE, "village": "Thôn 2",
                                                        "on": "2021-07-28"}).json()
    assert {(h["household_id"], h["waiting_days"]) for h in waiting["households"]} == {(str(s.b), 8), (str(s.e), 4)}
    assert relief.get("/reports/daily", params={"commune_code": "7"}).status_code == 422
    assert relief.get(f"/campaigns/{uuid4()}/disclosure").status_code == 404
    assert relief.get(f"/campaigns/{uuid4()}/summary").status_code == 404
    relief.headers.pop("Authorization")
    assert relief.get(f"/campaigns/{s.campaign_id}/summary").status_code == 401
    assert relief.get(f"/campaigns/{s.campaign_id}/disclosure").status_code == 200
