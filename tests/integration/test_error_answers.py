"""Bad input is answered with a 422 naming the field, whatever bytes it holds."""

from fastapi.testclient import TestClient

from services.households.main import create
from tests.signin import signed_in


def test_a_lone_surrogate_in_a_body_gets_a_422_not_a_500(settings_for):
    settings = settings_for("households", NATS_URL="nats://127.0.0.1:1")
    with TestClient(create(settings), headers=signed_in(settings)) as client:
        answer = client.post("/households", content=b'{"head": {"name": "\\ud800"}}',
                             headers={"Content-Type": "application/json"})
    assert answer.status_code == 422
    assert ["body", "head", "name"] in [error["loc"] for error in answer.json()["detail"]]


def test_a_quantity_beyond_64_bits_is_a_422_naming_the_field(settings_for):
    from services.ledger import main as ledger_main  # noqa: PLC0415
    from tests.unit.test_ledger_helpers import config  # noqa: PLC0415

    settings = settings_for("ledger", NATS_URL="nats://127.0.0.1:1")
    body = {"entitlement_id": "f728b4fa-4248-1e3a-8a5d-2f346baa9455", "device_id": "d1",
            "delivered_at": "2021-08-01T08:00:00Z", "cash_vnd": 2**64,
            "items": [{"item_code": "gao", "unit": "kg", "quantity": 2**64}]}
    with TestClient(ledger_main.create(settings, config()), headers=signed_in(settings)) as client:
        answer = client.post("/deliveries", json=body, headers={"Idempotency-Key": "k1"})
    assert answer.status_code == 422
    assert {("body", "cash_vnd"), ("body", "items", 0, "quantity")} <= {tuple(e["loc"]) for e in answer.json()["detail"]}
