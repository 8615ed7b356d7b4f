"""Property: whatever a crowd of phones sends, in whatever order, each entitlement is served at
most once net of reversals, the log numbers entries 1..n without gaps, and a retried request
(same key, same body) gets the first answer back unchanged."""

import uuid

from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.common.natsserver import free_port
from services.common.settings import Settings
from services.ledger import main as ledger_main
from tests.unit.test_ledger_helpers import as_volunteer_of, config, delivery_body, issued, learn, officer

ENTITLEMENTS = 3
operation = st.one_of(
    st.tuples(st.just("deliver"), st.integers(0, ENTITLEMENTS - 1), st.sampled_from(["tnv-1", "tnv-2"])),
    st.tuples(st.just("retry"), st.integers(0, 50), st.none()),
    st.tuples(st.just("reverse"), st.integers(0, ENTITLEMENTS - 1), st.none()),
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(operations=st.lists(operation, min_size=1, max_size=25))
def test_served_at_most_once_gapless_and_retries_answer_the_same(tmp_path_factory, operations):
    data = tmp_path_factory.mktemp("ledger")
    env = {"DATA_DIR": str(data), "NATS_URL": f"nats://127.0.0.1:{free_port()}"}
    with TestClient(ledger_main.create(Settings.from_env("ledger", env), config(checkpoint_seconds=3600))) as client:
        entitlements = [issued() for _ in range(ENTITLEMENTS)]
        learn(client.app.state.runtime.application, *entitlements)
        served: dict[int, int] = {}  # entitlement index -> seq of the delivery that stands
        sent: list[tuple[str, dict, int, dict]] = []  # key, body, status, answer
        entries = 0
        for kind, index, volunteer in operations:
            if kind == "deliver":
                key, body = str(uuid.uuid4()), delivery_body(entitlements[index], volunteer=volunteer)
                answer = client.post("/deliveries", json=body,
                                     headers={"Idempotency-Key": key, **as_volunteer_of(client, body)})
                if index in served:
                    assert answer.status_code == 409 and answer.json()["seq"] == served[index]
                else:
                    assert answer.status_code == 201, answer.text
                    entries += 1
                    assert answer.json()["seq"] == entries  # no gap, no reuse
                    served[index] = entries
                sent.append((key, body, answer.status_code, answer.json()))
            elif kind == "retry" and sent:
                key, body, status, first = sent[index % len(sent)]
                again = client.post("/deliveries", json=body,
                                    headers={"Idempotency-Key": key, **as_volunteer_of(client, body)})
                if status == 201:
                    assert again.status_code == 200 and again.json() == first
                else:
                    assert again.status_code == 409
            elif kind == "reverse" and index in served:
                answer = client.post(f"/deliveries/{served.pop(index)}/reversal",
                                     json={"reason": "recorded_in_error", "reversed_by": "staff-1"},
                                     headers=officer(client))
                assert answer.status_code == 201, answer.text
                entries += 1
                assert answer.json()["seq"] == entries
        assert client.get("/ledger/info").json()["entries"] == entries
