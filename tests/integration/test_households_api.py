"""The households HTTP API as commune staff use it, on SQLite and on PostgreSQL.

NATS is deliberately unreachable here: the service must work (and the runtime keep retrying)
without it; publishing is tested with the outbox relay elsewhere.
"""

import io
import time
from uuid import uuid4

import pytest
from fastapi.testclient import TestClient
from openpyxl import Workbook

from services.common.auth import Role
from services.households.main import create
from tests.signin import signed_in

WARD, OTHER_WARD = "00070", "00073"  # Hoàn Kiếm and Cửa Nam, Hà Nội
STAFF = {"username": "can bo Lan", "role": Role.commune_staff, "communes": (WARD, OTHER_WARD)}


@pytest.fixture
def client(settings_for):
    settings = settings_for("households", NATS_URL="nats://127.0.0.1:1")
    # signed in as an admin unless a test says who acts
    with TestClient(create(settings), headers=signed_in(settings)) as client:
        client.settings = settings
        yield client


def as_user(client, username: str = STAFF["username"]) -> dict[str, str]:
    """Headers of a commune staff member of both wards: their name is the events' actor."""
    return signed_in(client.settings, **(STAFF | {"username": username}))


def household(cccd="001070000001", name="Nguyễn Văn An", **fields) -> dict:
    body = {
        "head": {"name": name, "cccd": cccd, "birth_year": 1970},
        "members": [{"name": "Trần Thị Bình", "relation": "spouse", "birth_year": 1972, "cccd": None}],
        "commune_code": WARD, "village": "Thôn Đông", "address": "Số 12, đường Lê Lợi",
        "phone": "0912345678", "poverty_status": "none",
        "legal_basis": {"ground": "public_task", "reference": "Chỉ thị 16/CT-TTg"},
    }
    return body | fields


def register(client, **fields) -> dict:
    response = client.post("/households", json=household(**fields), headers=as_user(client))
    assert response.status_code == 201, response.text
    return response.json()


def error_fields(response) -> set[str]:
    assert response.status_code == 422, response.text
    return {".".join(str(part) for part in error["loc"][1:]) for error in response.json()["detail"]}


def names(response) -> list[str]:
    assert response.status_code == 200, response.text
    return [item["head_name"] for item in response.json()["items"]]


# ---- registering --------------------------------------------------------------------

def test_a_registered_household_can_be_read_back(client):
    created = register(client)
    assert created["head"]["name"] == "Nguyễn Văn An"
    assert created["commune_name"] == "Phường Hoàn Kiếm"
    assert created["member_count"] == 2
    fetched = client.get(f"/households/{created['id']}").json()
    assert fetched["head"] == created["head"] and fetched["members"] == created["members"]
    assert fetched["legal_basis"] == {"ground": "public_task", "reference": "Chỉ thị 16/CT-TTg"}


def test_a_head_registered_twice_is_a_conflict_showing_the_existing_household(client):
    first = register(client)
    again = client.post("/households", json=household(name="Nguyen Van An", village="Thôn Tây"))
    assert again.status_code == 409
    existing = again.json()["household"]
    assert existing["id"] == first["id"] and existing["village"] == "Thôn Đông"
    assert again.json()["message"]  # Vietnamese first
    assert client.get("/households", params={"cccd": "001070000001"}).json()["total"] == 1


@pytest.mark.parametrize("change, field", [
    ({"head": {"name": "A", "cccd": "00107000001"}}, "head.cccd"),
    ({"head": {"name": "A", "cccd": "0010700000ab"}}, "head.cccd"),
    ({"phone": "12345"}, "phone"),
    ({"commune_code": "99999"}, "commune_code"),
    ({"commune_code": "26734"}, "commune_code"),  # a ward code from before the 2025 reform
    ({"poverty_status": "rich"}, "poverty_status"),
    ({"members": [{"name": "B", "relation": "head"}]}, "members.0.relation"),
    ({"members": [{"name": "B", "relation": "child", "cccd": "1"}]}, "members.0.cccd"),
    ({"members": [{"name": "B", "relation": "child", "birth_year": 2999}]}, "members.0.birth_year"),
    ({"legal_basis": {"ground": "because", "reference": "x"}}, "legal_basis.ground"),
    ({"village": ""}, "village"),
])
def test_bad_registration_input_is_422_naming_the_field(client, change, field):
    assert field in error_fields(client.post("/households", json=household(**change)))


def test_missing_legal_basis_is_422(client):
    body = household()
    del body["legal_basis"]
    assert "legal_basis" in error_fields(client.post("/households", json=body))


def test_unknown_households_are_404_and_malformed_ids_422(client):
    unknown = uuid4()
    assert client.get(f"/households/{unknown}").status_code == 404
    assert client.get(f"/households/{unknown}/history").status_code == 404
    assert client.post(f"/households/{unknown}/corrections", json={"village": "X"}).status_code == 404
    assert client.post(f"/households/{unknown}/members", json={"name": "B", "relation": "child"}).status_code == 404
    assert "household_id" in error_fields(client.get("/households/not-an-id"))
    assert client.get(f"/households/import/{unknown}").status_code == 404


# ---- changing ------------------------------------------------------------------------

def test_corrections_members_and_history_record_who_did_what(client):
    created = register(client)
    hid = created["id"]
    corrected = client.post(f"/households/{hid}/corrections", json={"village": "Thôn Tây", "reason": "ghi nhầm"},
                            headers=as_user(client, "Lê Thị Hoa"))
    assert corrected.status_code == 200 and corrected.json()["village"] == "Thôn Tây"
    added = client.post(f"/households/{hid}/members",
                        json={"name": "Nguyễn Văn Bé", "relation": "child", "birth_year": 2022, "child_under_6": True},
                        headers=as_user(client))
    assert added.status_code == 201 and added.json()["member_count"] == 3
    child = next(m for m in added.json()["members"] if m["name"] == "Nguyễn Văn Bé")
    flagged = client.patch(f"/households/{hid}/members/{child['member_id']}", json={"disabled": True})
    assert flagged.json()["vulnerability"]["disabled"] == 1
    head = created["head"]["member_id"]
    assert client.delete(f"/households/{hid}/members/{head}").status_code == 409
    assert client.delete(f"/households/{hid}/members/{uuid4()}").status_code == 404
    removed = client.delete(f"/households/{hid}/members/{child['member_id']}", params={"reason": "chuyển đi"})
    assert removed.json()["member_count"] == 2

    history = client.get(f"/households/{hid}/history").json()["events"]
    assert [e["event"] for e in history] == ["Registered", "Corrected", "MemberAdded", "MemberCorrected",
                                            "MemberRemoved"]
    assert history[0]["actor"] == "can bo Lan" and history[1]["actor"] == "Lê Thị Hoa"
    assert history[1]["details"] == {"changes": {"village": "Thôn Tây"}, "reason": "ghi nhầm"}
    assert history[4]["actor"] == "test-admin"  # the client's default sign-in
    assert all(e["at"] for e in history)


def test_corrections_are_validated_and_cannot_blank_required_fields(client):
    hid = register(client)["id"]
    assert "commune_code" in error_fields(client.post(f"/households/{hid}/corrections", json={"commune_code": "1"}))
    assert "village" in error_fields(client.post(f"/households/{hid}/corrections", json={"village": None}))
    assert "colour" in error_fields(client.post(f"/households/{hid}/corrections", json={"colour": "red"}))
    cleared = client.post(f"/households/{hid}/corrections", json={"phone": None})
    assert cleared.status_code == 200 and cleared.json()["phone"] is None


def test_correcting_the_head_cccd_frees_the_old_one(client):
    first = register(client)
    register(client, cccd="001070000002", name="Lê Văn Cường")
    taken = client.post(f"/households/{first['id']}/corrections", json={"head_cccd": "001070000002"})
    assert taken.status_code == 409
    moved = client.post(f"/households/{first['id']}/corrections", json={"head_cccd": "001070000003"})
    assert moved.json()["head"]["cccd"] == "001070000003"
    register(client, cccd="001070000001", name="Phạm Thị Dung")  # the old number is free again


def test_quarantine_episodes_start_and_end(client):
    hid = register(client)["id"]
    episode = {"kind": "f1_home_quarantine", "decision_number": "123/QĐ-UBND",
               "starts_on": "2021-07-10", "expected_end_on": "2021-07-23"}
    bad = dict(episode, expected_end_on="2021-07-09")
    assert "expected_end_on" in error_fields(client.post(f"/households/{hid}/quarantines", json=bad))
    assert "kind" in error_fields(client.post(f"/households/{hid}/quarantines", json=dict(episode, kind="F0")))
    started = client.post(f"/households/{hid}/quarantines", json=episode)
    assert started.status_code == 201
    episode_id = started.json()["episode"]["episode_id"]
    assert client.post(f"/households/{hid}/quarantines", json=episode).status_code == 409  # same decision
    end = f"/households/{hid}/quarantines/{episode_id}/end"
    assert "ended_on" in error_fields(client.post(end, json={"ended_on": "2021-07-09"}))
    assert client.post(f"/households/{hid}/quarantines/{uuid4()}/end", json={"ended_on": "2021-07-20"}
                       ).status_code == 404
    ended = client.post(end, json={"ended_on": "2021-07-20"})
    assert ended.status_code == 200 and ended.json()["episode"]["ended_on"] == "2021-07-20"
    assert client.post(end, json={"ended_on": "2021-07-21"}).status_code == 409


# ---- looking up ---------------------------------------------------------------------

@pytest.fixture
def commune(client) -> dict[str, dict]:
    people = {
        "an": register(client, cccd="001070000001", name="Nguyễn Văn An", poverty_status="poor"),
        "dao": register(client, cccd="001070000002", name="Đặng Thị Đào", village="Tổ dân phố 3",
                        phone="0987 654 321", members=[{"name": "Lý Văn Đức", "relation": "child",
                                                        "cccd": "001099000009"}]),
        "anh": register(client, cccd="001070000003", name="Nguyễn Văn Anh", commune_code=OTHER_WARD,
                        village="Thôn Bắc", phone="0333000111", poverty_status="near_poor"),
    }
    quarantine = {"kind": "lockdown_area", "decision_number": "7/QĐ", "starts_on": "2021-07-10",
                  "expected_end_on": "2021-07-24"}
    assert client.post(f"/households/{people['dao']['id']}/quarantines", json=quarantine).status_code == 201
    return people


def test_names_are_found_without_diacritics_or_case(client, commune):
    assert names(client.get("/households", params={"q": "nguyen van an"})) == ["Nguyễn Văn An", "Nguyễn Văn Anh"]
    assert names(client.get("/households", params={"q": "NGUYEN VAN ANH"})) == ["Nguyễn Văn Anh"]
    assert names(client.get("/households", params={"q": "dang thi dao"})) == ["Đặng Thị Đào"]
    assert names(client.get("/households", params={"q": "Đặng"})) == ["Đặng Thị Đào"]
    assert names(client.get("/households", params={"q": "duc"})) == ["Đặng Thị Đào"]  # a member's name
    assert names(client.get("/households", params={"q": "to dan pho 3"})) == ["Đặng Thị Đào"]  # village
    assert names(client.get("/households", params={"q": "le loi"})) == ["Nguyễn Văn An", "Đặng Thị Đào",
                                                                         "Nguyễn Văn Anh"]  # address
    assert names(client.get("/households", params={"q": "tran thi binh"})) == ["Nguyễn Văn An", "Nguyễn Văn Anh"]
    assert names(client.get("/households", params={"q": "nguyen", "commune_code": OTHER_WARD})) == ["Nguyễn Văn Anh"]
    assert names(client.get("/households", params={"q": "zzz khong co"})) == []


def test_filters_find_by_phone_cccd_place_poverty_and_quarantine(client, commune):
    def find(**params):
        return names(client.get("/households", params=params))

    assert find(phone="+84 987 654 321") == ["Đặng Thị Đào"]
    assert find(q="0987.654.321") == ["Đặng Thị Đào"]
    assert find(cccd="001099000009") == ["Đặng Thị Đào"]  # a member's CCCD finds the household
    assert find(q="001070000003") == ["Nguyễn Văn Anh"]
    assert find(commune_code=WARD) == ["Nguyễn Văn An", "Đặng Thị Đào"]
    assert find(commune_code=WARD, village="to dan pho 3") == ["Đặng Thị Đào"]
    assert find(poverty_status="poor") == ["Nguyễn Văn An"]
    assert find(q="nguyen", poverty_status="near_poor") == ["Nguyễn Văn Anh"]
    assert find(in_quarantine_on="2021-07-10") == ["Đặng Thị Đào"]
    assert find(in_quarantine_on="2021-07-24") == ["Đặng Thị Đào"]
    assert find(in_quarantine_on="2021-07-25") == []
    assert find(in_quarantine_on="2021-07-09") == []


def test_bad_lookup_parameters_are_422_naming_them(client):
    assert "phone" in error_fields(client.get("/households", params={"phone": "abc"}))
    assert "cccd" in error_fields(client.get("/households", params={"cccd": "123"}))
    assert "in_quarantine_on" in error_fields(client.get("/households", params={"in_quarantine_on": "hôm qua"}))
    assert "page_size" in error_fields(client.get("/households", params={"page_size": 1000}))
    assert "poverty_status" in error_fields(client.get("/households", params={"poverty_status": "x"}))


def test_lookup_pages_through_all_matches_with_a_total(client):
    created = [register(client, cccd=f"0010700001{i:02d}", name=f"Hoàng Văn Số {i}", phone=None)["id"]
               for i in range(7)]
    pages = [client.get("/households", params={"q": "hoang van", "page": page, "page_size": 3}).json()
             for page in (1, 2, 3)]
    assert [p["total"] for p in pages] == [7, 7, 7]
    assert [len(p["items"]) for p in pages] == [3, 3, 1]
    assert [item["id"] for p in pages for item in p["items"]] == created


def test_a_merged_duplicate_resolves_to_the_survivor_and_leaves_the_lists(client):
    survivor = register(client, cccd="001070000001", phone="0911111111")
    duplicate = register(client, cccd="001070000002", name="NGUYỄN VĂN AN", village="thôn đông", phone=None)
    other = register(client, cccd="001070000003", name="Trịnh Văn Khác", village="Thôn Tây", phone="0911111111")
    pairs = client.get("/households/duplicates", params={"commune_code": WARD}).json()
    found = {frozenset(h["id"] for h in pair["households"]): pair["reasons"] for pair in pairs["items"]}
    assert found == {frozenset({survivor["id"], duplicate["id"]}): ["same_head_name_village"],
                     frozenset({survivor["id"], other["id"]}): ["same_phone"]}

    dismissed = client.post("/households/duplicates/dismiss", json={"household_ids": [other["id"], survivor["id"]]})
    assert dismissed.status_code == 200
    merged = client.post("/households/merge", headers=as_user(client),
                         json={"survivor_id": survivor["id"], "merged_id": duplicate["id"], "reason": "trùng"})
    assert merged.status_code == 200 and merged.json()["merged_from"] == [duplicate["id"]]
    assert client.get("/households/duplicates").json()["total"] == 0

    resolved = client.get(f"/households/{duplicate['id']}").json()
    assert resolved["id"] == survivor["id"] and resolved["resolved_from"] == duplicate["id"]
    history = client.get(f"/households/{duplicate['id']}/history").json()
    assert [e["event"] for e in history["events"]] == ["Registered", "MergedInto"]
    assert history["resolved_to"] == survivor["id"]
    assert names(client.get("/households", params={"q": "nguyen van an"})) == ["Nguyễn Văn An"]
    refused = client.post(f"/households/{duplicate['id']}/corrections", json={"village": "X"})
    assert refused.status_code == 409 and refused.json()["survivor_id"] == survivor["id"]
    again = client.post("/households/merge", json={"survivor_id": survivor["id"], "merged_id": duplicate["id"]})
    assert again.status_code == 409
    itself = client.post("/households/merge", json={"survivor_id": survivor["id"], "merged_id": survivor["id"]})
    assert itself.status_code == 409


# ---- importing ----------------------------------------------------------------------

CSV_HEADER = ("household_ref,relation,full_name,birth_year,cccd,phone,commune_code,village,address,"
              "poverty_status,elderly,child_under_6,pregnant,disabled,chronic_illness,legal_basis,legal_reference\n")
GOOD_ROWS = (
    "H1,chủ hộ,Lê Văn Cường,1950,001050000001,0987654321,00070,Thôn Đông,Số 3,nghèo,x,,,,x,public_task,CT 16\n"
    "H1,vợ,Đỗ Thị Dung,1955,,,,,,,x,,,,,,\n"
    "H2,head,Phan Văn Giang,1980,001080000002,,00073,Tổ 5,,none,,,,,,consent,Phiếu đồng ý 12\n"
    "H2,con,Phan Thị Hà,2021,,,,,,,,x,,,,,\n"
)
BAD_ROWS = (
    "H3,chủ hộ,Vũ Văn Ích,19x0,12345,,99999,Thôn Nam,,giàu,?,,,,,public_task,CT 16\n"
    "H3,con,,2010,,,,,,,,,,,,,\n"
    ",con,Người Không Hộ,2000,,,,,,,,,,,,,\n"
)


def import_file(client, filename: str, data: bytes, **params) -> dict:
    response = client.post("/households/import", params={"wait": "true", **params},
                           files={"file": (filename, data)}, headers=as_user(client))
    assert response.status_code == 200, response.text
    return response.json()


def test_csv_import_reports_row_errors_and_imports_valid_households_once(client):
    data = (CSV_HEADER + GOOD_ROWS + BAD_ROWS).encode("utf-8-sig")
    report = import_file(client, "ho-gia-dinh.csv", data)
    assert report["status"] == "done"
    assert (report["households"], report["created"], report["already_present"], report["skipped"]) == (3, 2, 0, 1)
    errors = {(e["row"], e["column"]) for e in report["errors"]}
    assert errors == {(6, "birth_year"), (6, "cccd"), (6, "commune_code"), (6, "poverty_status"), (6, "elderly"),
                      (7, "full_name"), (8, "household_ref")}
    assert all(e["message"] and e["message_en"] for e in report["errors"])

    cuong = client.get("/households", params={"q": "le van cuong"}).json()["items"]
    assert [(h["member_count"], h["poverty_status"], h["phone"]) for h in cuong] == [(2, "poor", "0987****21")]  # lists mask phones
    record = client.get(f"/households/{cuong[0]['id']}").json()
    assert record["vulnerability"]["elderly"] == 2 and record["vulnerability"]["chronic_illness"] == 1
    assert record["members"][0]["relation"] == "spouse"

    again = import_file(client, "ho-gia-dinh.csv", data)
    assert (again["created"], again["already_present"], again["skipped"]) == (0, 2, 1)
    assert client.get("/households").json()["total"] == 2


def test_xlsx_import_reads_vietnamese_headers_and_numeric_cells(client):
    book = Workbook()
    sheet = book.active
    sheet.append(["Mã hộ", "Quan hệ", "Họ tên", "Năm sinh", "Số CCCD", "Điện thoại", "Mã xã", "Thôn", "Địa chỉ",
                  "Hộ nghèo", "Mang thai"])
    sheet.append(["A", "Chủ hộ", "Hồ Thị Lan", 1990, 1090000001, 912345678, 70, "Xóm Chùa", "", "Cận nghèo", ""])
    sheet.append(["A", "Chồng", "Ngô Văn Minh", 1988, None, None, None, None, None, None, None])
    sheet.append(["B", "Chủ hộ", "Bùi Văn Nam", 1975, "00107500000", None, 70, "Xóm Chùa", "", "", ""])
    sheet.append(["A", "Con", "Ngô Thị Na", 2024, None, None, None, None, None, None, "x"])
    buffer = io.BytesIO()
    book.save(buffer)
    report = import_file(client, "danh-sach.xlsx", buffer.getvalue(),
                         legal_basis="public_task", legal_reference="QĐ 99/QĐ-UBND")
    assert (report["created"], report["skipped"]) == (1, 1)
    assert [(e["row"], e["column"]) for e in report["errors"]] == [(4, "cccd")]  # 11 digits typed as text
    found = client.get("/households", params={"cccd": "001090000001"}).json()["items"]  # leading zero restored
    assert [(h["head_name"], h["member_count"], h["phone"], h["commune_code"], h["poverty_status"]) for h in found] \
        == [("Hồ Thị Lan", 3, "0912****78", WARD, "near_poor")]


def test_a_file_without_the_required_columns_is_rejected_whole(client):
    report = import_file(client, "x.csv", "name,phone\nA,0912345678\n".encode())
    assert report["status"] == "failed" and report["created"] == 0
    assert report["errors"][0]["row"] == 1 and "household_ref" in report["errors"][0]["column"]
    garbage = import_file(client, "x.xlsx", b"PK\x03\x04 not really a workbook")
    assert garbage["status"] == "failed" and garbage["errors"]


def test_a_large_import_runs_as_a_job_with_progress(client):
    rows = "".join(f"H{i},chủ hộ,Người Số {i},1970,0010700{i:05d},,00070,Thôn {i % 5},,,,,,,,public_task,CT 16\n"
                   for i in range(1200))
    response = client.post("/households/import", files={"file": ("lon.csv", (CSV_HEADER + rows).encode())})
    assert response.status_code == 202
    job = response.json()
    assert response.headers["location"] == f"/households/import/{job['job_id']}"
    deadline = time.monotonic() + 60
    while job["status"] not in ("done", "failed") and time.monotonic() < deadline:
        time.sleep(0.05)  # polling a job, as a client would; the assertion is on its final report
        job = client.get(f"/households/import/{job['job_id']}").json()
    assert (job["status"], job["households"], job["processed"], job["created"]) == ("done", 1200, 1200, 1200)
    assert client.get("/households", params={"commune_code": WARD, "village": "thon 3"}).json()["total"] == 240
