"""Nothing personal crosses the bus: a realistic flow over a real nats-server (households with names,
CCCDs, phones, members and health flags; quarantines; a campaign with a named individual donor;
a round; deliveries; a reversal), then EVERY message of every stream is read back and searched for
those values, in payloads and headers, and decoded as a registered contract event.

What does cross (contracts/): ids, commune codes, village names, dates, counts (members, and how many
members carry each vulnerability flag, never which), amounts, the volunteer and device ids a
delivery is recorded by, the staff name of a reversal. Donors are never on the bus, organisation
or individual: relief's public disclosure names organisations and consenting donors itself.
"""

import asyncio
import uuid

import nats
import pytest
from fastapi.testclient import TestClient

from contracts import registry
from contracts.subjects import DEAD_LETTER_STREAM, STREAMS
from services.common.natsserver import NatsServer
from services.households import main as households_main
from services.ledger import main as ledger_main
from services.relief import main as relief_main
from tests.signin import signed_in
from tests.waiting import eventually

pytestmark = pytest.mark.nats
COMMUNE = "00070"
DAY = "2021-07-25"

PEOPLE = [  # (head name, head CCCD, phone, member name, member CCCD)
    ("Nguyễn Thị Hồng Nhung", "001185009876", "0987654321", "Trần Quốc Khánh", "001083001234"),
    ("Lê Văn Tám", "001070004455", "0912000111", "Lê Thị Mận", "001172006677"),
    ("Phạm Đức Huy", "001090002233", "0363111222", "Vũ Ngọc Ánh", "001195008899"),
    ("Hoàng Minh Châu", "001066003344", "0856222333", "Hoàng Gia Bảo", None),
]
DONOR, DONOR_CONTACT = "Đặng Thuỳ Dương", "0903456789"
ORGANISATION = "Công ty Cổ phần Sữa Hà Thành"
HEALTH = ["f0_home_treatment", "f1_home_quarantine", "lockdown_area"]  # quarantine kinds: health data
DECISIONS = ["123/QĐ-UBND-cachly", "124/QĐ-UBND-cachly", "125/QĐ-UBND-cachly"]
NEW_PHONE, NEW_MEMBER, NEW_MEMBER_CCCD = "0977888999", "Nguyễn Bảo Ngọc", "001222001122"
NEW_HEAD_NAME = "Nguyễn Thị Nhung Hồng"


def fold(text: str) -> str:
    from services.households.readmodel import fold as folded
    return folded(text)


def secrets() -> list[str]:
    values = [DONOR, DONOR_CONTACT, ORGANISATION, NEW_PHONE, NEW_HEAD_NAME, NEW_MEMBER, NEW_MEMBER_CCCD, *HEALTH, *DECISIONS]
    for person in PEOPLE:
        values += [value for value in person if value]
    names = [DONOR, ORGANISATION, NEW_MEMBER, NEW_HEAD_NAME, *(p[0] for p in PEOPLE), *(p[3] for p in PEOPLE)]
    values += [fold(name) for name in names]  # without diacritics, lowercase
    values += [name.split()[-1] + " " for name in names if len(name.split()[-1]) > 3]  # given names alone
    return values


def forms(text: str) -> list[bytes]:
    json_escaped = "".join(c if c.isascii() else f"\\u{ord(c):04x}" for c in text)
    return [text.encode(), text.lower().encode(), json_escaped.encode()]




async def read_streams(url: str) -> dict[str, list]:
    nc = await nats.connect(url)
    try:
        js = nc.jetstream()
        streams = {}
        for name in [*STREAMS, DEAD_LETTER_STREAM]:
            try:
                last = (await js.stream_info(name)).state.last_seq
            except nats.js.errors.NotFoundError:
                streams[name] = []
                continue
            streams[name] = [await js.get_msg(name, seq) for seq in range(1, last + 1)]
        return streams
    finally:
        await nc.close()


def stream_counts(url: str) -> dict[str, int]:
    return {name: len(messages) for name, messages in asyncio.run(read_streams(url)).items()}


def test_nothing_personal_crosses_the_bus(tmp_path, settings_for):
    with NatsServer(tmp_path / "nats") as nats_server:
        url = nats_server.url
        hh_settings = settings_for("households", NATS_URL=url)
        auth = signed_in(hh_settings)
        with TestClient(households_main.create(hh_settings), headers=auth) as households, \
                TestClient(relief_main.create(settings_for("relief", NATS_URL=url)), headers=auth) as relief, \
                TestClient(ledger_main.create(settings_for("ledger", NATS_URL=url)), headers=auth) as ledger:
            ids = []
            for index, (name, cccd, phone, member, member_cccd) in enumerate(PEOPLE):
                response = households.post("/households", json={
                    "head": {"name": name, "cccd": cccd, "birth_year": 1960 + index, "chronic_illness": True},
                    "members": [{"name": member, "relation": "spouse", "birth_year": 1990, "cccd": member_cccd,
                                 "pregnant": index % 2 == 0, "disabled": index % 2 == 1}],
                    "commune_code": COMMUNE, "village": "Tổ 1", "address": f"Số {index + 5} ngõ Huế",
                    "phone": phone, "poverty_status": "poor" if index == 1 else "none",
                    "legal_basis": {"ground": "public_task", "reference": "Chỉ thị 16/CT-TTg"}})
                assert response.status_code == 201, response.text
                ids.append(response.json()["id"])
            for household_id, kind, decision in zip(ids, HEALTH, DECISIONS):
                started = households.post(f"/households/{household_id}/quarantines", json={
                    "kind": kind, "decision_number": decision, "starts_on": "2021-07-20",
                    "expected_end_on": "2021-08-03"})
                assert started.status_code == 201, started.text
            corrected = households.post(f"/households/{ids[0]}/corrections", json={"phone": NEW_PHONE, "head_name": NEW_HEAD_NAME,
                                                                                 "village": "Tổ 2"})
            assert corrected.status_code == 200, corrected.text
            added = households.post(f"/households/{ids[1]}/members", json={
                "name": NEW_MEMBER, "relation": "child", "birth_year": 2020, "cccd": NEW_MEMBER_CCCD,
                "child_under_6": True})
            assert added.status_code == 201, added.text
            episode = households.get(f"/households/{ids[2]}").json()["quarantines"][0]["episode_id"]
            ended = households.post(f"/households/{ids[2]}/quarantines/{episode}/end", json={"ended_on": "2021-08-01"})
            assert ended.status_code == 200, ended.text

            campaign = relief.post("/campaigns", json={
                "level": "commune", "unit_code": COMMUNE, "name": "Chung tay chống dịch", "purpose": "Hộ cách ly",
                "legal_basis": "decree_64_2008", "call_document": "Thư kêu gọi 01/TKG-MTTQ",
                "opens_on": "2021-07-01", "closes_on": "2021-09-30",
                "accounts": [{"kind": "bank", "number": "0011", "bank_name": "Vietcombank"}]})
            assert campaign.status_code == 201, campaign.text
            campaign_id = campaign.json()["id"]
            for donor, body in (
                    ({"kind": "individual", "name": DONOR, "contact": DONOR_CONTACT, "public_consent": False},
                     {"channel": "bank_transfer", "cash_vnd": 5_000_000}),
                    ({"kind": "organisation", "name": ORGANISATION, "public_consent": True},
                     {"channel": "goods", "goods": [{"item_code": "rice", "quantity": 100}]})):
                donated = relief.post(f"/campaigns/{campaign_id}/donations",
                                      headers={"Idempotency-Key": str(uuid.uuid4())},
                                      json={"donor": donor, "received_on": "2021-07-21", **body})
                assert donated.status_code == 201, donated.text

            def relief_knows_all():  # the last change of each household, not just that it exists
                seen = [relief.get(f"/eligibility/households/{h}") for h in ids]
                if any(response.status_code != 200 for response in seen):
                    return False
                first, second, third, _ = (response.json() for response in seen)
                return (first["village"] == "Tổ 2" and first["quarantine_episodes"]
                        and second["member_count"] == 3 and second["quarantine_episodes"]
                        and any(e["ended_on"] for e in third["quarantine_episodes"]))
            eventually(relief_knows_all, "relief hears of every household's last change")
            round_id = relief.post("/rounds", json={
                "campaign_id": campaign_id, "name": "Đợt 1", "planned_on": DAY,
                "package": {"items": {"rice": 10}, "cash_vnd": 300_000},
                "eligibility": {"commune_codes": [COMMUNE], "quarantine_on": DAY}}).json()["id"]
            issued = relief.post(f"/rounds/{round_id}/issue")
            assert issued.status_code == 200, issued.text
            rows = relief.get(f"/rounds/{round_id}/entitlements").json()["entitlements"]
            assert len(rows) == 3
            seqs = []
            for row in rows[:2]:
                eventually(lambda: ledger.get(f"/entitlements/{row['id']}").status_code == 200,
                           "the ledger hears of the entitlement")
                delivered = ledger.post("/deliveries", headers={"Idempotency-Key": f"tnv-07:{row['id']}"}, json={
                    "entitlement_id": row["id"], "items": [{"item_code": "rice", "unit": "kg", "quantity": 10}],
                    "cash_vnd": 300_000, "volunteer_id": "tnv-07", "device_id": "phone-7",
                    "delivered_at": "2021-07-26T09:00:00+07:00"})
                assert delivered.status_code == 201, delivered.text
                seqs.append(delivered.json()["seq"])
            reversed_ = ledger.post(f"/deliveries/{seqs[0]}/reversal", headers={"Idempotency-Key": "rev-1"},
                                    json={"reason": "wrong_household", "reversed_by": "can-bo-xa"})
            assert reversed_.status_code == 201, reversed_.text

            # everything stored is published, and the consumers have what they need
            counts = {}
            eventually(lambda: (counts.update(stream_counts(url)) or counts)["LEDGER"] == 3
                       and counts["RELIEF"] >= 2 + 3 and counts["HOUSEHOLDS"] >= 4 + 3 + 1 + 1,
                       lambda: f"every event on its stream: {counts}")
            eventually(lambda: relief.get(f"/entitlements/{rows[1]['id']}").json()["status"] == "served",
                       "relief hears of the delivery")

        streams = asyncio.run(read_streams(url))

    assert streams[DEAD_LETTER_STREAM] == []
    types: dict[str, set[str]] = {}
    searched = secrets()
    msg_ids = set()
    for stream, messages in streams.items():
        if stream == DEAD_LETTER_STREAM:
            continue
        assert messages, f"{stream} is empty"
        for message in messages:
            headers = message.headers or {}
            raw = message.data + b"\n" + repr(sorted(headers.items())).encode() + message.subject.encode()
            for secret in searched:
                for form in forms(secret):
                    assert form not in raw, f"{secret!r} crossed the bus on {stream} #{message.seq}: {raw!r}"
            event_type = headers["Event-Type"]
            assert event_type in registry, f"{stream} #{message.seq}: unregistered {event_type}"
            event = registry[event_type].model_validate_json(message.data)  # the whole payload is the contract
            assert event.subject == message.subject
            assert headers["Schema-Version"] == str(event.schema_version)
            assert headers["Nats-Msg-Id"] not in msg_ids
            msg_ids.add(headers["Nats-Msg-Id"])
            types.setdefault(stream, set()).add(event_type)
    # the control: what is public does show in the same bytes, so the search reads them as they are
    assert any("Tổ 2".encode() in m.data for m in streams["HOUSEHOLDS"])
    assert any(b"tnv-07" in m.data for m in streams["LEDGER"])
    assert types == {
        "HOUSEHOLDS": {"HouseholdRegistered", "QuarantineStarted", "QuarantineEnded", "HouseholdCorrected",
                       "MembersChanged"},
        "RELIEF": {"DonationReceived", "EntitlementIssued"},
        "LEDGER": {"DistributionRecorded", "DistributionReversed"},
    }
