"""Recording deliveries through HTTP on a SQLite store (no NATS needed): the outcomes a
volunteer's phone gets, receipts that verify, reversals, proofs and the export."""

import uuid

import orjson
import pytest
from fastapi.testclient import TestClient
from pydantic import TypeAdapter

from services.common.natsserver import free_port
from services.common.settings import Settings
from services.ledger import export_format as fmt
from services.ledger import main as ledger_main
from services.ledger.merkle import CompactRange, leaf_hash, verify_consistency, verify_inclusion
from tests.unit.test_ledger_helpers import (
    RICE, as_volunteer_of, cancelled, config, delivery_body, issued, learn, officer, volunteer,
)


@pytest.fixture
def settings(tmp_path) -> Settings:
    return Settings.from_env("ledger", {"DATA_DIR": str(tmp_path), "NATS_URL": f"nats://127.0.0.1:{free_port()}"})


@pytest.fixture
def client(settings):
    with TestClient(ledger_main.create(settings, config(checkpoint_seconds=3600))) as client:
        yield client


def ledger(client):
    return client.app.state.runtime.application


def post(client, body, key=None):
    """As the volunteer the body names, signed in."""
    return client.post("/deliveries", json=body,
                       headers={"Idempotency-Key": key or str(uuid.uuid4()), **as_volunteer_of(client, body)})


def reverse(client, seq, reason="wrong_household", reversed_by="staff-1"):
    """As a relief officer of every commune, signed in."""
    return client.post(f"/deliveries/{seq}/reversal", json={"reason": reason, "reversed_by": reversed_by},
                       headers=officer(client, reversed_by))


def verify_receipt(receipt: dict) -> None:
    fmt.Receipt.model_validate(receipt)
    public = fmt.unb64(receipt["public_key"])
    cp = receipt["checkpoint"]
    assert fmt.checkpoint_signature_valid(cp, public)
    leaf = leaf_hash(fmt.canonical(receipt["entry"]))
    assert leaf.hex() == receipt["leaf_hash"]
    assert verify_inclusion(leaf, receipt["leaf_index"], cp["tree_size"],
                            [bytes.fromhex(p) for p in receipt["inclusion_proof"]], bytes.fromhex(cp["root_hash"]))


def test_recorded_once_with_a_receipt_that_verifies(client):
    entitlements = [issued() for _ in range(5)]
    learn(ledger(client), *entitlements)
    for i, e in enumerate(entitlements, start=1):
        response = post(client, delivery_body(e, evidence_hash="AB" * 32))
        assert response.status_code == 201, response.text
        body = response.json()
        assert body["seq"] == i and body["entitlement_id"] == str(e.source_id)
        assert body["receipt"]["entry"]["evidence_hash"] == "ab" * 32
        verify_receipt(body["receipt"])
    assert client.get("/ledger/info").json()["entries"] == 5


def test_same_key_same_body_gives_the_first_result_unchanged(client):
    e = issued()
    learn(ledger(client), e)
    first = post(client, delivery_body(e), key="k-1")
    post(client, delivery_body(issued()), key="k-other")  # the tree grows in between
    again = post(client, delivery_body(e), key="k-1")
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.content == first.content


def test_same_key_different_body_is_422(client):
    e = issued()
    learn(ledger(client), e)
    assert post(client, delivery_body(e), key="k-1").status_code == 201
    response = post(client, delivery_body(e, cash_vnd=1), key="k-1")
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["header", "idempotency-key"]


def test_other_key_for_a_served_entitlement_is_409_with_the_winner(client):
    e = issued()
    learn(ledger(client), e)
    won = post(client, delivery_body(e, volunteer="tnv-01", device="phone-1")).json()
    lost = post(client, delivery_body(e, volunteer="tnv-02", device="phone-2"))
    assert lost.status_code == 409
    body = lost.json()
    assert body["error"] == "already_served" and body["seq"] == won["seq"]
    assert body["served_by"] == {"volunteer_id": "tnv-01", "device_id": "phone-1"}
    assert body["delivered_at"] == "2021-07-20T08:00:00.000000Z"


@pytest.mark.parametrize("change, field", [
    ({"items": [{**RICE, "quantity": 11}]}, ["body", "items", "0", "quantity"]),
    ({"cash_vnd": 500_001}, ["body", "cash_vnd"]),
])
def test_beyond_the_entitlement_is_422_naming_the_field(client, change, field):
    e = issued()
    learn(ledger(client), e)
    response = post(client, delivery_body(e, **change))
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == field
    assert post(client, delivery_body(e)).status_code == 201  # nothing was recorded


def test_unknown_entitlement_is_404_and_cancelled_is_409(client):
    assert post(client, delivery_body(issued())).status_code == 404
    e = issued()
    learn(ledger(client), e, cancelled(e))
    assert post(client, delivery_body(e)).json()["error"] == "entitlement_cancelled"


def test_round_and_household_name_the_entitlement_as_relief_derives_it(client):
    e = issued()
    learn(ledger(client), e)
    body = delivery_body(e)
    del body["entitlement_id"]
    body |= {"round_id": str(e.round_id), "household_id": str(e.household_id)}
    response = post(client, body)
    assert response.status_code == 201 and response.json()["entitlement_id"] == str(e.source_id)
    assert post(client, {**body, "entitlement_id": str(uuid.uuid4())}).status_code == 422


def test_batch_gives_each_delivery_its_own_result_in_order(client):
    a, b = issued(), issued()
    learn(ledger(client), a, b)
    items = [delivery_body(a) | {"idempotency_key": "a1"}, delivery_body(a) | {"idempotency_key": "a2"},
             delivery_body(issued()) | {"idempotency_key": "x"},
             delivery_body(b, cash_vnd=9_000_000) | {"idempotency_key": "b1"},
             delivery_body(b) | {"idempotency_key": "b2"}, delivery_body(a) | {"idempotency_key": "a1"}]
    results = client.post("/deliveries/batch", json={"deliveries": items}, headers=volunteer(client)).json()["results"]
    assert [r["status"] for r in results] == [201, 409, 404, 422, 201, 200]
    assert [r["idempotency_key"] for r in results] == ["a1", "a2", "x", "b1", "b2", "a1"]
    assert results[1]["body"]["seq"] == results[0]["body"]["seq"]
    assert results[5]["body"] == results[0]["body"]


def test_reversal_is_a_new_entry_that_reopens_the_entitlement(client):
    e = issued()
    learn(ledger(client), e)
    first = post(client, delivery_body(e, volunteer="tnv-01")).json()
    reversal = reverse(client, first["seq"])
    assert reversal.status_code == 201
    entry = reversal.json()["receipt"]["entry"]
    assert entry["kind"] == "reversal" and entry["reverses_seq"] == first["seq"] and entry["items"] == first["receipt"]["entry"]["items"]
    verify_receipt(reversal.json()["receipt"])
    again = reverse(client, first["seq"], "other")
    assert again.status_code == 409
    assert reverse(client, reversal.json()["seq"], "other", "x").status_code == 409
    assert reverse(client, 999, "other", "x").status_code == 404
    second = post(client, delivery_body(e, volunteer="tnv-02"))
    assert second.status_code == 201 and second.json()["seq"] == 3
    assert client.get(f"/entitlements/{e.source_id}", headers=volunteer(client)).json()["delivery"]["seq"] == 3
    original = client.get(f"/ledger/proof/{first['seq']}").json()
    assert original["entry"] == first["receipt"]["entry"]  # nothing edited


def test_proofs_consistency_and_export_check_out(client):
    entitlements = [issued() for _ in range(13)]
    learn(ledger(client), *entitlements)
    for e in entitlements:
        assert post(client, delivery_body(e)).status_code == 201
    checkpoints = client.get("/ledger/checkpoints").json()["checkpoints"]
    assert [c["tree_size"] for c in checkpoints] == list(range(1, 14))
    for first, second in [(1, 13), (4, 13), (5, 8), (7, 7)]:
        c = client.get("/ledger/consistency", params={"from": first, "to": second}).json()
        assert verify_consistency(first, second, bytes.fromhex(c["from_checkpoint"]["root_hash"]),
                                  bytes.fromhex(c["to_checkpoint"]["root_hash"]), [bytes.fromhex(p) for p in c["proof"]])
    proof = client.get("/ledger/proof/3", params={"tree_size": 11}).json()
    assert proof["checkpoint"]["tree_size"] == 11
    verify_receipt(proof)

    lines = [orjson.loads(line) for line in client.get("/ledger/export").content.splitlines()]
    parsed = [TypeAdapter(fmt.ExportLine).validate_python(line) for line in lines]
    assert parsed[0].kind == "header" and parsed[0].public_key == client.get("/ledger/public-key").json()["public_key"]
    tree, seen_checkpoints = CompactRange(), 0
    for line in lines[1:]:
        if line["kind"] == "entry":
            assert line["seq"] == tree.size + 1
            leaf = leaf_hash(fmt.canonical(line["entry"]))
            assert leaf.hex() == line["leaf_hash"]
            tree.append(leaf)
        else:
            assert line["tree_size"] == tree.size and line["root_hash"] == tree.root().hex()
            seen_checkpoints += 1
    assert seen_checkpoints == 13
    for personal in (b"Th\xc3\xb4n", b"village", b"name", b"cccd"):  # entries are extra="forbid" too
        assert personal not in client.get("/ledger/export").content


def test_idempotency_and_log_survive_a_restart_and_a_lost_projection(settings):
    e = issued()
    with TestClient(ledger_main.create(settings, config())) as client:
        learn(ledger(client), e)
        first = post(client, delivery_body(e), key="k-1")
        root = client.get("/ledger/info").json()["latest_checkpoint"]["root_hash"]
    (settings.service_dir / "merkle.sqlite").unlink()  # rebuilt from the event store
    with TestClient(ledger_main.create(settings, config())) as client:
        again = post(client, delivery_body(e), key="k-1")
        assert (again.status_code, again.content) == (200, first.content)
        assert client.get("/ledger/info").json()["latest_checkpoint"]["root_hash"] == root


def test_the_writer_appends_its_own_entries_exactly_as_a_rebuild_reads_them(settings, monkeypatch):
    """The Merkle log takes the writer's entries from memory; the same log rebuilt from the
    notification log alone exports byte for byte the same. A crash between the save and that
    append (here: the append fails) leaves nothing wrong: the log catches up from the store."""
    from services.ledger.log import MerkleLog

    entitlements = [issued() for _ in range(6)]
    with TestClient(ledger_main.create(settings, config(checkpoint_seconds=3600))) as client:
        app = ledger(client)
        learn(app, *entitlements)
        calls = []
        own = MerkleLog.append_own
        monkeypatch.setattr(MerkleLog, "append_own", lambda self, *a: calls.append(own(self, *a)) or calls[-1])
        first = post(client, delivery_body(entitlements[0]))
        assert first.status_code == 201
        assert post(client, delivery_body(entitlements[0])).status_code == 409  # a refusal, exported too
        assert reverse(client, first.json()["seq"]).status_code == 201
        items = [delivery_body(e) | {"idempotency_key": f"b-{i}"} for i, e in enumerate(entitlements[1:4])]
        batch = client.post("/deliveries/batch", json={"deliveries": items}, headers=volunteer(client))
        assert [r["status"] for r in batch.json()["results"]] == [201] * 3
        assert calls and all(calls)  # taken from memory, not read back

        def crash(self, *saved):
            raise RuntimeError("killed between the save and the append")

        monkeypatch.setattr(MerkleLog, "append_own", crash)
        late = post(client, delivery_body(entitlements[4]))
        assert late.status_code == 201  # saved is saved: the log caught up from the store
        verify_receipt(late.json()["receipt"])
        monkeypatch.setattr(MerkleLog, "append_own", own)
        last = post(client, delivery_body(entitlements[5]))
        verify_receipt(last.json()["receipt"])
        for r in [first, *(r["body"] for r in batch.json()["results"])]:
            body = r.json() if hasattr(r, "json") else r
            verify_receipt(client.get(f"/ledger/proof/{body['seq']}").json())
        exported = client.get("/ledger/export").content
        info = client.get("/ledger/info").json()
    assert info["entries"] == 7
    (settings.service_dir / "merkle.sqlite").unlink()  # rebuilt from the notification log alone
    with TestClient(ledger_main.create(settings, config(checkpoint_seconds=3600))) as client:
        assert client.get("/ledger/export").content == exported
        assert client.get("/ledger/info").json()["latest_checkpoint"] == info["latest_checkpoint"]
