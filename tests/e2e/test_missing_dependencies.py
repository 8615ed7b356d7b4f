"""Slow or missing dependencies. NATS down at start: the services start, say they are not
ready, keep serving what needs only their store, and catch up once nats-server comes up on
the configured port. A write the store cannot take is a 503, never a 500 or a false 2xx."""

import asyncio
import contextlib
import sqlite3

import nats
import pytest
from eventsourcing.persistence import OperationalError
from fastapi.testclient import TestClient

from services.common.natsserver import NatsServer, free_port
from services.households.main import create as create_households
from services.relief.main import create as create_relief
from services.common.store import UnitOfWork
from tests.integration.test_households_api import household
from tests.signin import signed_in
from tests.integration.test_plumbing_nats import (bus, consumer_app, copies, copy_note, js,  # noqa: F401 - fixtures
                                                  note_contract, run_until, tracked_consumer)
from tests.integration.test_plumbing_nats import publish as publish_notes
from tests.integration.test_metrics import scrape, wait_for

pytestmark = pytest.mark.nats


def stream_size(url: str, stream: str) -> int:
    async def size():
        nc = await nats.connect(url)
        try:
            return (await nc.jetstream().stream_info(stream)).state.messages
        finally:
            await nc.close()
    return asyncio.run(size())


def test_nats_down_at_start_then_up_services_catch_up(settings_for, tmp_path):
    port = free_port()
    url = f"nats://127.0.0.1:{port}"
    admin = signed_in(settings_for("households"), username="can bo Lan")  # one DATA_DIR, one key ring
    with TestClient(create_households(settings_for("households", NATS_URL=url)), headers=admin) as households, \
            TestClient(create_relief(settings_for("relief", NATS_URL=url)), headers=admin) as relief:
        for client in (households, relief):
            health = client.get("/healthz")
            assert health.status_code == 503
            assert health.json()["nats"] == "disconnected" and health.json()["store"] == "ok"
        ids = [households.post("/households", json=household(cccd=f"00107000002{i}"))
               for i in range(2)]
        assert [r.status_code for r in ids] == [201, 201]  # stored: the outbox holds them
        ids = [r.json()["id"] for r in ids]
        assert households.get(f"/households/{ids[0]}").status_code == 200
        assert relief.get(f"/eligibility/households/{ids[0]}").status_code == 404  # not heard of yet
        metrics = scrape(households)
        assert metrics[("nats_connected",)] == 0 and metrics[("outbox_lag",)] >= 2  # notifications, private ones too

        with NatsServer(tmp_path / "nats", port=port):
            for client in (households, relief):
                wait_for(lambda client=client: client.get("/healthz").status_code == 200, "ready", timeout=30)
            for household_id in ids:
                wait_for(lambda h=household_id: relief.get(f"/eligibility/households/{h}").status_code == 200,
                         "relief caught up", timeout=30)
            assert scrape(households)[("outbox_lag",)] == 0
            assert stream_size(url, "HOUSEHOLDS") == 2


@contextlib.contextmanager
def store_refusing(settings, store_env):
    """SQLite: another writer holds the file past the lock timeout. PostgreSQL: the database
    refuses connections and the service's open ones are cut, as when the server is stopped."""
    if "PERSISTENCE_MODULE" not in store_env:
        lock = sqlite3.connect(settings.service_dir / "events.sqlite", isolation_level=None)
        lock.execute("BEGIN EXCLUSIVE")
        try:
            yield
        finally:
            lock.execute("ROLLBACK")
            lock.close()
        return
    import psycopg

    name = store_env["POSTGRES_DBNAME"]
    admin = psycopg.connect(dbname="postgres", host=store_env["POSTGRES_HOST"], port=store_env["POSTGRES_PORT"],
                            user="postgres", autocommit=True)
    try:
        admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
        admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (name,))
        yield
    finally:
        admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
        admin.close()


def test_a_write_the_store_cannot_take_is_a_503_and_nothing_is_stored(settings_for, store_env):
    # A client waits about 10 x POSTGRES_CONNECT_TIMEOUT (eventsourcing's retries) for its 503.
    settings = settings_for("households", NATS_URL="nats://127.0.0.1:1", POSTGRES_CONNECT_TIMEOUT="1")
    with TestClient(create_households(settings), headers=signed_in(settings, username="can bo Lan")) as households:
        with store_refusing(settings, store_env):
            refused = households.post("/households", json=household(cccd="001070000031"))
        assert refused.status_code == 503, refused.text
        assert refused.headers["Retry-After"]
        body = refused.json()
        assert body["error"] == "store_unavailable"
        assert "Không lưu được" in body["message"] and "Not stored" in body["message_en"]

        stored = households.post("/households", json=household(cccd="001070000031"))
        assert stored.status_code == 201, stored.text  # not a duplicate: the refused write left nothing


async def test_a_consumer_waits_out_a_store_outage_and_parks_nothing(js, consumer_app, monkeypatch):
    """Reads and commits failing for longer than max_deliver allows: not the messages' fault,
    so nothing is parked, and the batch is held and retried so stream order holds."""
    await publish_notes(js, "a", "b", "c")
    outage = {"reads": 4, "commits": 2}

    def reading(uow, note):
        if note.text == "b" and outage["reads"] > 0:
            outage["reads"] -= 1
            raise OperationalError("could not connect to server")
        copy_note(uow, note)

    real_commit = UnitOfWork.commit

    def committing(uow, tracking):
        if outage["commits"] > 0:
            outage["commits"] -= 1
            raise OperationalError("database is locked")
        real_commit(uow, tracking)

    monkeypatch.setattr(UnitOfWork, "commit", committing)
    consumer = tracked_consumer(consumer_app, js, max_deliver=2)
    consumer.handlers["NoteWritten"] = reading
    await run_until(consumer, lambda: consumer.stats.handled >= 3, timeout=30)
    assert copies(consumer_app) == ["a", "b", "c"]
    assert consumer.stats.dead_lettered == 0 and outage == {"reads": 0, "commits": 0}
