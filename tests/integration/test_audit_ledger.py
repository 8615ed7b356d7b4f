"""relief-audit against the real ledger service (HTTP on a SQLite store): what the ledger
exports, signs and hands out as receipts is what the auditor accepts, and a changed byte is not."""

import orjson
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from services.common.natsserver import free_port
from services.common.settings import Settings
from services.ledger import main as ledger_main
from services.ledger.audit.cli import app as audit
from tests.unit.test_ledger_helpers import as_volunteer_of, config, delivery_body, issued, learn, officer


@pytest.fixture
def client(tmp_path):
    settings = Settings.from_env("ledger", {"DATA_DIR": str(tmp_path), "NATS_URL": f"nats://127.0.0.1:{free_port()}"})
    with TestClient(ledger_main.create(settings, config(checkpoint_seconds=3600))) as client:
        yield client


def run(*argv):
    result = CliRunner().invoke(audit, [*argv])
    return result.exit_code, result.output


def test_the_ledgers_export_and_receipts_pass_and_tampering_fails(client, tmp_path, monkeypatch):
    entitlements = [issued() for _ in range(12)]
    learn(client.app.state.runtime.application, *entitlements)
    receipts = []
    for e in entitlements[:10]:
        body = delivery_body(e)
        response = client.post("/deliveries", json=body,
                               headers={"Idempotency-Key": str(e.source_id), **as_volunteer_of(client, body)})
        assert response.status_code == 201, response.text
        receipts.append(response.json()["receipt"])
    assert client.post("/deliveries/4/reversal", json={"reason": "wrong_household", "reversed_by": "staff-1"},
                       headers=officer(client)).status_code == 201
    body = delivery_body(entitlements[3], volunteer="tnv-09")
    assert client.post("/deliveries", json=body,
                       headers={"Idempotency-Key": "again", **as_volunteer_of(client, body)}).status_code == 201
    # what follows is what the public and the audit tool read: no sign-in

    export, relief = tmp_path / "ledger.jsonl", tmp_path / "relief.jsonl"
    export.write_bytes(client.get("/ledger/export").content)
    relief.write_bytes(b"\n".join(orjson.dumps({"type": "EntitlementIssued", "data": e.model_dump(mode="json")})
                                  for e in entitlements))
    key = client.get("/ledger/public-key").json()["public_key"]
    seen = tmp_path / "seen.json"
    seen.write_bytes(orjson.dumps(client.get("/ledger/checkpoints").json()["checkpoints"][4]))

    code, output = run("verify", "-s", str(export), "--relief-events", str(relief), "--public-key", key,
                       "--checkpoint", str(seen), "--no-progress")
    assert code == 0 and output.startswith("OK entries=12 "), output

    def served(ledger, path, params=None):  # the CLI's HTTP GET, answered by the ledger in-process
        return client.get(path, params=params).json()

    monkeypatch.setattr("services.ledger.audit.receipt.fetch", served)
    code, output = run("consistency", "--ledger", "http://ledger", "--checkpoint", str(seen))
    assert code == 0 and output.startswith("OK from=5 to=12"), output
    forged = {**orjson.loads(seen.read_bytes()), "root_hash": "00" * 32}
    (tmp_path / "forged.json").write_bytes(orjson.dumps(forged))
    assert "rule=checkpoint_signature" in run("consistency", "--ledger", "http://ledger", "--checkpoint",
                                                str(tmp_path / "forged.json"))[1]

    (tmp_path / "receipt.json").write_bytes(orjson.dumps(receipts[6]))
    assert run("verify-receipt", str(tmp_path / "receipt.json"), "--public-key", key)[0] == 0

    figures = orjson.loads(run("report", "-s", str(export), "--relief-events", str(relief), "-f", "json")[1])
    assert (figures["served"], figures["eligible"], len(figures["eligible_not_served"]), figures["reversals"]) == (10, 12, 2, 1)

    lines = export.read_bytes().splitlines()
    lines[7] = lines[7].replace(b'"cash_vnd":500000', b'"cash_vnd":500001')
    export.write_bytes(b"\n".join(lines))
    code, output = run("verify", "-s", str(export), "--no-progress")
    assert code == 1 and output.startswith("FAIL seq="), output
    assert orjson.loads(lines[7])["seq"] == int(output.split()[1].split("=")[1])
