"""Issue 3, end to end over a real nats-server: households, relief and ledger as real apps.

Register households and quarantines at households; relief learns of them over JetStream only.
Receive goods and cash, issue a round: the entitlements are exactly the eligible households, and
each EntitlementIssued is on the RELIEF stream once. One more household goes into quarantine: the
top-up issues exactly one more. A delivery recorded at the ledger marks the entitlement served in
relief and leaves "not served" with the others. Then
relief's consumers replay from the start: over the same store (nothing changes, nothing is
published again, the read model rebuilds) and into a fresh store (the same eligibility facts
select the same households with the same packages).

Each test starts its own nats-server: two services whose stores start at notification 1 would
otherwise publish the same Nats-Msg-Id twice within the duplicate window, and JetStream would drop
the second as a copy.
"""

import asyncio
import contextlib
import time
import uuid

import nats
import pytest
from fastapi.testclient import TestClient
from nats.js.errors import NotFoundError

from contracts import decode
from services.common.auth import Role
from services.common.natsserver import NatsServer
from services.common.settings import Settings
from services.households import main as households_main
from services.ledger import main as ledger_main
from services.relief import main as relief_main
from tests.signin import signed_in
from tests.unit.test_ledger_helpers import volunteer
from tests.waiting import eventually

pytestmark = pytest.mark.nats
COMMUNE, OTHER = "00070", "00004"
ROUND_DAY = "2021-07-25"
STAFF = "can-bo-xa"  # who the events record: the signed-in user


def officer(settings: Settings) -> dict[str, str]:
    """A relief officer of the commune's committee, signed in with that relief's key ring."""
    return signed_in(settings, Role.relief_officer, communes=[COMMUNE], username=STAFF)




@pytest.fixture
def nats_url(tmp_path):
    with NatsServer(tmp_path / "nats") as server:
        yield server.url


@pytest.fixture
def fresh_relief_env(request, store_env, tmp_path) -> dict[str, str]:
    """Another, empty relief store on the same backend."""
    env = {**store_env, "DATA_DIR": str(tmp_path / "replay")}
    if "POSTGRES_DBNAME" in store_env:
        from tests.conftest import _fresh_database

        env |= _fresh_database(request.getfixturevalue("postgres_server"))
    return env


class Households:
    def __init__(self, client: TestClient):
        self.client = client
        self.count = 0

    def register(self, commune: str, village: str, members: int = 1, poverty: str = "none") -> str:
        self.count += 1
        response = self.client.post("/households", json={
            "head": {"name": f"Nguyễn Văn {self.count}", "cccd": f"0010850{self.count:05d}", "birth_year": 1985},
            "commune_code": commune, "village": village, "poverty_status": poverty,
            "members": [{"name": f"Trần Thị {self.count}.{i}", "relation": "child", "birth_year": 2019}
                        for i in range(members - 1)],
            "legal_basis": {"ground": "public_task", "reference": "Chỉ thị 16/CT-TTg"}})
        assert response.status_code == 201, response.text
        return response.json()["id"]

    def quarantine(self, household_id: str, starts: str = "2021-07-20", ends: str = "2021-08-03") -> None:
        response = self.client.post(f"/households/{household_id}/quarantines", json={
            "kind": "f1_home_quarantine", "decision_number": f"{uuid.uuid4().hex[:8]}/QĐ-UBND",
            "starts_on": starts, "expected_end_on": ends})
        assert response.status_code == 201, response.text

    def merge(self, survivor_id: str, merged_id: str) -> None:
        response = self.client.post("/households/merge", json={"survivor_id": survivor_id, "merged_id": merged_id,
                                                               "reason": "Đăng ký trùng"})
        assert response.status_code == 200, response.text


def relief_knows(relief: TestClient, household_id: str, episodes: int):
    def check():
        response = relief.get(f"/eligibility/households/{household_id}")
        return response.status_code == 200 and len(response.json()["quarantine_episodes"]) >= episodes
    return check


def entitlements(relief: TestClient, round_id: str) -> dict[str, dict]:
    rows = relief.get(f"/rounds/{round_id}/entitlements", params={"page_size": 1000}).json()["entitlements"]
    return {row["household_id"]: row for row in rows}


async def _stream(url: str, stream: str) -> list:
    nc = await nats.connect(url)
    try:
        js = nc.jetstream()
        last = (await js.stream_info(stream)).state.last_seq
        messages = [await js.get_msg(stream, seq) for seq in range(1, last + 1)]
        return [decode(m.headers["Event-Type"], m.data) for m in messages]
    finally:
        await nc.close()


def published(url: str, event_type: str) -> list:
    return [e for e in asyncio.run(_stream(url, "RELIEF")) if e.type_name() == event_type]


async def _forget_relief_consumers(url: str) -> dict[str, int]:
    """Delete relief's durable consumers, so they start again from the first message; returns
    each upstream stream's last sequence (how far a replay must get)."""
    nc = await nats.connect(url)
    try:
        js = nc.jetstream()
        for subscription in (relief_main.HOUSEHOLDS, relief_main.LEDGER):
            with contextlib.suppress(NotFoundError):
                await js.delete_consumer(subscription.stream, subscription.durable)
        return {name: (await js.stream_info(name)).state.last_seq for name in ("HOUSEHOLDS", "LEDGER")}
    finally:
        await nc.close()


def caught_up(relief: TestClient, last: dict[str, int]):
    def check():
        consumers = relief.get("/healthz").json().get("consumers", {})
        return all(consumers.get(f"{name}/{sub.durable}", {}).get("position", 0) >= seq
                   for name, sub, seq in (("HOUSEHOLDS", relief_main.HOUSEHOLDS, last["HOUSEHOLDS"]),
                                          ("LEDGER", relief_main.LEDGER, last["LEDGER"])) if seq)
    return check


def open_campaign_with_stock(relief: TestClient) -> str:
    campaign = relief.post("/campaigns", json={
        "level": "commune", "unit_code": COMMUNE, "name": "Chung tay chống dịch", "purpose": "Hộ cách ly",
        "legal_basis": "decree_64_2008", "call_document": "Thư kêu gọi 01/TKG-MTTQ", "opens_on": "2021-07-01",
        "closes_on": "2021-09-30", "accounts": [{"kind": "bank", "number": "0011", "bank_name": "Vietcombank"}]})
    assert campaign.status_code == 201, campaign.text
    return campaign.json()["id"]


def donate(relief: TestClient, campaign_id: str, cash: int = 0, goods: dict | None = None) -> None:
    response = relief.post(f"/campaigns/{campaign_id}/donations", json={
        "donor": {"kind": "organisation", "name": "Công ty May 10", "public_consent": True},
        "received_on": "2021-07-21", "channel": "goods" if goods else "bank_transfer", "cash_vnd": cash,
        "goods": [{"item_code": k, "quantity": q} for k, q in (goods or {}).items()]})
    assert response.status_code == 201, response.text


def round_body(campaign_id: str) -> dict:
    return {"campaign_id": campaign_id, "name": "Đợt 1: hộ cách ly tại nhà", "planned_on": ROUND_DAY,
            "package": {"items": {"rice": 10}, "cash_vnd": 300_000, "per_member": {"sugar": 1}, "member_cap": 4},
            "eligibility": {"commune_codes": [COMMUNE], "quarantine_on": ROUND_DAY}}


def test_issue_3_rounds_end_to_end(nats_url, settings_for, fresh_relief_env):
    relief_settings = settings_for("relief", NATS_URL=nats_url)
    admin = signed_in(settings_for("households"), username=STAFF)  # households, relief, ledger: one DATA_DIR
    tnv_03 = volunteer(settings_for("ledger"), "tnv-03", communes=[COMMUNE])
    with TestClient(households_main.create(settings_for("households", NATS_URL=nats_url)), headers=admin) as hh, \
            TestClient(ledger_main.create(settings_for("ledger", NATS_URL=nats_url)), headers=tnv_03) as ledger:
        households = Households(hh)
        with TestClient(relief_main.create(relief_settings), headers=officer(relief_settings)) as relief:
            a = households.register(COMMUNE, "Tổ 1", members=3)
            b = households.register(COMMUNE, "Tổ 2", poverty="poor")
            c = households.register(COMMUNE, "Tổ 1", members=2)  # not in quarantine itself ...
            duplicate_of_c = households.register(COMMUNE, "Tổ 1")  # ... but its duplicate record is
            elsewhere = households.register(OTHER, "Thôn 4")
            for household in (a, b, duplicate_of_c, elsewhere):
                households.quarantine(household)
            households.quarantine(b, "2021-06-01", "2021-06-14")  # an earlier episode: b counts once
            households.merge(c, duplicate_of_c)
            for household, episodes in ((a, 1), (b, 2), (elsewhere, 1), (c, 0)):
                eventually(relief_knows(relief, household, episodes), f"relief hears of {household}")
            eventually(lambda: relief.get(f"/eligibility/households/{duplicate_of_c}").json()["merged_into"] == c,
                       "relief hears of the merge")

            campaign_id = open_campaign_with_stock(relief)
            donate(relief, campaign_id, goods={"rice": 45, "sugar": 20})
            donate(relief, campaign_id, cash=5_000_000)
            round_id = relief.post("/rounds", json=round_body(campaign_id)).json()["id"]
            preview = relief.get(f"/rounds/{round_id}/preview").json()
            assert preview["eligible"] == 3 and preview["shortfall"] == {}
            assert preview["needs"] == {"cash": 900_000, "rice": 30, "sugar": 3 + 1 + 2}
            issued = relief.post(f"/rounds/{round_id}/issue")
            assert issued.status_code == 200, issued.text

            first = entitlements(relief, round_id)
            assert set(first) == {a, b, c}  # exactly the eligible: not the duplicate, not another commune
            assert first[a]["lines"] == {"cash": 300_000, "rice": 10, "sugar": 3}
            events = eventually(lambda: (e := published(nats_url, "EntitlementIssued")) and len(e) >= 3 and e,
                                "EntitlementIssued on the RELIEF stream")
            assert sorted(str(e.source_id) for e in events) == sorted(row["id"] for row in first.values())
            assert all(e.round_id == uuid.UUID(round_id) and e.commune_code == COMMUNE for e in events)
            assert "Nguyễn" not in str([e.model_dump() for e in events])  # nothing personal on the bus

            late = households.register(COMMUNE, "Tổ 2")
            households.quarantine(late, "2021-07-24", "2021-08-07")
            eventually(relief_knows(relief, late, 1), "relief hears of the late household")
            assert [h["household_id"] for h in relief.get(f"/rounds/{round_id}/top-up/preview").json()["households"]
                    ] == [late]
            topped = relief.post(f"/rounds/{round_id}/top-up").json()
            assert topped["issued"] == 1
            assert relief.post(f"/rounds/{round_id}/top-up").json()["issued"] == 0
            after = entitlements(relief, round_id)
            assert set(after) == {a, b, c, late}
            eventually(lambda: len(published(nats_url, "EntitlementIssued")) == 4, "the top-up's event published")

            served = after[b]
            eventually(lambda: ledger.get(f"/entitlements/{served['id']}").status_code == 200,
                       "the ledger hears of the entitlement")
            delivered = ledger.post("/deliveries", headers={"Idempotency-Key": "tnv-03:1"}, json={
                "entitlement_id": served["id"], "items": [{"item_code": "rice", "unit": "kg", "quantity": 10},
                                                          {"item_code": "sugar", "unit": "kg", "quantity": 1}],
                "cash_vnd": 300_000, "volunteer_id": "tnv-03", "device_id": "phone-1",
                "delivered_at": "2021-07-26T09:00:00+07:00"})
            assert delivered.status_code == 201, delivered.text
            eventually(lambda: relief.get(f"/entitlements/{served['id']}").json()["status"] == "served",
                       "the delivery marks the entitlement served in relief")
            assert relief.get(f"/entitlements/{served['id']}").json()["served"]["volunteer_id"] == "tnv-03"
            rice = relief.get(f"/campaigns/{campaign_id}/stock").json()["items"]["rice"]
            assert (rice["received"], rice["allocated"], rice["delivered"], rice["available"]) == (45, 40, 10, 5)
            not_served = relief.get(f"/rounds/{round_id}/not-served").json()
            assert {h["household_id"] for h in not_served["households"]} == {a, c, late}
            before_replay = (entitlements(relief, round_id), not_served["households"],
                             {h: relief.get(f"/eligibility/households/{h}").json() for h in (a, b, c, late)})
            eligibility_file = relief_settings.service_dir / "eligibility.sqlite"

        # replay 1: the same store, consumers from the first message, the read model from scratch
        last = asyncio.run(_forget_relief_consumers(nats_url))
        eligibility_file.unlink()
        with TestClient(relief_main.create(relief_settings), headers=officer(relief_settings)) as relief:
            eventually(caught_up(relief, last), "relief replays both streams")
            health = relief.get("/healthz").json()["consumers"]["HOUSEHOLDS/relief-households"]
            assert health["handled"] == 0 and health["skipped"] == last["HOUSEHOLDS"]  # all seen: no effect
            again = (entitlements(relief, round_id), relief.get(f"/rounds/{round_id}/not-served").json()["households"],
                     {h: relief.get(f"/eligibility/households/{h}").json() for h in (a, b, c, late)})
            assert again == before_replay
            time.sleep(0.5)
            assert len(published(nats_url, "EntitlementIssued")) == 4  # once each, still

        # replay 2: a fresh, empty relief store consuming households' stream from the start (the
        # ledger's delivery names an entitlement this store never issued: it is dead-lettered)
        last = asyncio.run(_forget_relief_consumers(nats_url))
        fresh_settings = Settings.from_env("relief", {**fresh_relief_env, "NATS_URL": nats_url})
        with TestClient(relief_main.create(fresh_settings), headers=officer(fresh_settings)) as fresh:
            eventually(caught_up(fresh, {**last, "LEDGER": 0}), "a fresh relief replays households' stream")
            assert {h: fresh.get(f"/eligibility/households/{h}").json() for h in (a, b, c, late)} == before_replay[2]
            assert fresh.get(f"/eligibility/households/{duplicate_of_c}").json()["merged_into"] == c
            campaign_id = open_campaign_with_stock(fresh)
            same_rule = fresh.post("/rounds", json=round_body(campaign_id)).json()["id"]
            selected = fresh.get(f"/rounds/{same_rule}/preview").json()["households"]
            assert {h["household_id"]: h["package"] for h in selected} == {
                h: row["lines"] for h, row in before_replay[0].items()}
