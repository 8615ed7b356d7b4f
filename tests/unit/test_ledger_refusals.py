"""A refused delivery stays refused under its Idempotency-Key: a phone that retries a request
it was told was a duplicate must never record a handover, even after the first delivery is reversed."""

import uuid

from fastapi.testclient import TestClient

from services.common.natsserver import free_port
from services.common.settings import Settings
from services.ledger import main as ledger_main
from services.ledger.audit.report import compute
from services.ledger.audit.verify import Verifier
from tests.signin import signed_in
from tests.unit.test_ledger_helpers import config, delivery_body, issued, learn


def test_a_retried_duplicate_is_refused_again_after_a_reversal(tmp_path):
    settings = Settings.from_env("ledger", {"DATA_DIR": str(tmp_path), "NATS_URL": f"nats://127.0.0.1:{free_port()}"})
    with TestClient(ledger_main.create(settings, config(checkpoint_seconds=3600)), headers=signed_in(settings)) as client:
        entitlement = issued()
        learn(client.app.state.runtime.application, entitlement)
        first = client.post("/deliveries", json=delivery_body(entitlement, volunteer="tnv-1"),
                            headers={"Idempotency-Key": str(uuid.uuid4())})
        assert first.status_code == 201, first.text
        late_key, late_body = str(uuid.uuid4()), delivery_body(entitlement, volunteer="tnv-2")
        refused = client.post("/deliveries", json=late_body, headers={"Idempotency-Key": late_key})
        assert refused.status_code == 409 and refused.json()["seq"] == first.json()["seq"]

        reversed_ = client.post(f"/deliveries/{first.json()['seq']}/reversal",
                                json={"reason": "recorded_in_error", "reversed_by": "staff-1"})
        assert reversed_.status_code == 201, reversed_.text

        retried = client.post("/deliveries", json=late_body, headers={"Idempotency-Key": late_key})
        assert retried.status_code == 409 and retried.json() == refused.json()
        fresh = client.post("/deliveries", json=late_body, headers={"Idempotency-Key": str(uuid.uuid4())})
        assert fresh.status_code == 201, fresh.text
        assert client.get("/ledger/info").json()["entries"] == 3  # delivery, reversal, new delivery


def test_refusals_reach_the_export_and_the_audit_report_counts_them(tmp_path):
    settings = Settings.from_env("ledger", {"DATA_DIR": str(tmp_path), "NATS_URL": f"nats://127.0.0.1:{free_port()}"})
    with TestClient(ledger_main.create(settings, config(checkpoint_seconds=3600)), headers=signed_in(settings)) as client:
        entitlement = issued()
        learn(client.app.state.runtime.application, entitlement)
        for volunteer in ("tnv-1", "tnv-2", "tnv-2"):
            client.post("/deliveries", json=delivery_body(entitlement, volunteer=volunteer),
                        headers={"Idempotency-Key": str(uuid.uuid4())})
        lines = client.get("/ledger/export").text.splitlines()
    refusals = [line for line in lines if '"kind":"refusal"' in line]
    assert len(refusals) == 2 and all('"served_seq":1' in line for line in refusals)
    report = compute([line.encode() for line in lines])
    assert sum(report["refusals_per_volunteer"].values()) == 2
    assert Verifier().run(line.encode() for line in lines).failure is None  # verify reads past them
