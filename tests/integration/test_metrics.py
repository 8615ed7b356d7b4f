"""/metrics over a real nats-server: households registers (HTTP, outbox), relief consumes them;
the counters on both services move by exactly what happened."""

import asyncio
import time

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from services.common.consumer import TrackedConsumer
from services.common.natsserver import NatsServer
from services.households.main import create as create_households
from services.relief.main import create as create_relief
from tests.integration.test_households_api import household
from tests.signin import signed_in

pytestmark = pytest.mark.nats


def scrape(client: TestClient) -> dict[tuple, float]:
    """{(sample name, (label, value), ...): value} from the service's /metrics."""
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return {(s.name, *sorted(s.labels.items())): s.value
            for family in text_string_to_metric_families(response.text) for s in family.samples}


def wait_for(check, what: str, timeout: float = 20.0):
    deadline = time.monotonic() + timeout
    while not (result := check()):
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout}s: {what}")
        time.sleep(0.1)
    return result


def handled(client: TestClient, consumer: str, outcome: str = "handled") -> float:
    return scrape(client).get(
        ("consumer_messages_total", ("consumer", consumer), ("outcome", outcome)), 0)


@pytest.fixture
def own_nats(tmp_path):
    with NatsServer(tmp_path / "nats") as server:
        yield server


def test_counters_follow_requests_published_and_consumed_events(settings_for, own_nats):
    STAFF = signed_in(settings_for("households"), username="can bo Lan")  # noqa: N806 - as before sign-in
    with TestClient(create_households(settings_for("households", NATS_URL=own_nats.url))) as households, \
            TestClient(create_relief(settings_for("relief", NATS_URL=own_nats.url))) as relief:
        wait_for(lambda: households.get("/healthz").status_code == 200, "households ready")
        ids = [households.post("/households", json=household(cccd=f"00107000000{i}"), headers=STAFF).json()["id"]
               for i in range(3)]
        assert households.get(f"/households/{ids[0]}", headers=STAFF).status_code == 200
        assert households.get("/no-such-page").status_code == 404

        wait_for(lambda: handled(relief, "relief-households") >= 3, "relief consumed the registrations")
        wait_for(lambda: scrape(households)[("outbox_lag",)] == 0, "outbox drained")
        seen = scrape(households)
        assert seen[("http_requests_total", ("method", "POST"), ("route", "/households"), ("status", "201"))] == 3
        assert seen[("http_requests_total", ("method", "GET"), ("route", "/households/{household_id}"),
                     ("status", "200"))] == 1
        assert seen[("http_requests_total", ("method", "GET"), ("route", "unmatched"), ("status", "404"))] == 1
        assert seen[("http_request_duration_seconds_count", ("method", "POST"), ("route", "/households"))] == 3
        assert seen[("outbox_published_total",)] == 3
        assert seen[("nats_connected",)] == 1 and seen[("store_ready",)] == 1

        consumed = scrape(relief)
        assert consumed[("consumer_messages_total", ("consumer", "relief-households"), ("outcome", "handled"))] == 3
        for outcome in ("skipped", "retried", "dead_lettered"):
            assert consumed[("consumer_messages_total", ("consumer", "relief-households"), ("outcome", outcome))] == 0
        assert consumed[("consumer_pending", ("consumer", "relief-households"))] == 0
        assert consumed[("consumer_position", ("consumer", "relief-households"))] == 3
        assert ("consumer_pending", ("consumer", "relief-ledger")) in consumed



def test_consumer_pending_is_what_jetstream_holds_for_it(settings_for, own_nats, monkeypatch):
    relief_settings = settings_for("relief", NATS_URL=own_nats.url)
    STAFF = signed_in(relief_settings, username="can bo Lan")  # noqa: N806 - one DATA_DIR, one key ring
    with TestClient(create_households(settings_for("households", NATS_URL=own_nats.url))) as households:
        for i in range(4):
            households.post("/households", json=household(cccd=f"00107000004{i}"), headers=STAFF)
        wait_for(lambda: scrape(households).get(("outbox_published_total",)) == 4, "published")

    async def stalled(self, subscription):
        await asyncio.sleep(0.05)

    monkeypatch.setattr(TrackedConsumer, "_fetch_and_process", stalled)
    with TestClient(create_relief(relief_settings)) as relief:
        wait_for(lambda: scrape(relief).get(("consumer_pending", ("consumer", "relief-households"))) == 4,
                 "4 registrations pending while relief's consumer stalls")
        monkeypatch.undo()
        wait_for(lambda: handled(relief, "relief-households") == 4, "relief caught up")
        assert scrape(relief)[("consumer_pending", ("consumer", "relief-households"))] == 0
