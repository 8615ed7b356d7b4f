"""Volunteers racing on the same entitlements through HTTP, on SQLite and PostgreSQL:
exactly one 201 per entitlement, every other request a 409 naming the winner.

Then the event store alone: two ledger writers (as two processes would be) over one store,
each deciding on what it saw; the unique (originator_id, version) key lets one win."""

import asyncio
import threading
import time
import uuid
from collections import defaultdict
from pathlib import Path

import httpx
import pytest
import uvicorn

from services.common.natsserver import free_port
from services.ledger import main as ledger_main
from services.ledger.application import Ledger
from services.ledger.deliveries import RecordDelivery
from services.ledger.domain import Entitlement
from tests.unit.test_ledger_helpers import config, delivery_body, issued, learn, volunteer

ENTITLEMENTS = 40
RACERS = 8


class Server:
    """A real uvicorn in a thread, so requests really arrive concurrently."""

    def __init__(self, app):
        self.port = free_port()
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self):
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            assert time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.05)
        return f"http://127.0.0.1:{self.port}"

    def __exit__(self, *exc):
        self.server.should_exit = True
        self.thread.join(20)


async def race(url: str, entitlements, keys: Path) -> list[tuple[str, int, dict]]:
    limits = httpx.Limits(max_connections=RACERS * 8)
    signed = [volunteer(keys, f"tnv-{racer}") for racer in range(RACERS)]  # each racer signed in as itself
    async with httpx.AsyncClient(base_url=url, timeout=60, limits=limits) as client:
        async def one(e, racer):
            body = delivery_body(e, volunteer=f"tnv-{racer}", device=f"phone-{racer}")
            response = await client.post("/deliveries", json=body,
                                         headers={"Idempotency-Key": str(uuid.uuid4()), **signed[racer]})
            return str(e.source_id), response.status_code, response.json()
        jobs = [one(e, racer) for racer in range(RACERS) for e in entitlements]
        return await asyncio.gather(*jobs)


def test_racing_volunteers_get_exactly_one_201_each(settings_for):
    settings = settings_for("ledger", NATS_URL=f"nats://127.0.0.1:{free_port()}")
    app = ledger_main.create(settings, config(checkpoint_seconds=3600))
    entitlements = [issued() for _ in range(ENTITLEMENTS)]
    with Server(app) as url:
        learn(app.state.runtime.application, *entitlements)
        results = asyncio.run(race(url, entitlements, settings.keys_dir))
        writer = app.state.runtime.application.writer.stats
    by_entitlement = defaultdict(list)
    for eid, status, body in results:
        by_entitlement[eid].append((status, body))
    seqs = set()
    for eid, outcomes in by_entitlement.items():
        winners = [body for status, body in outcomes if status == 201]
        assert len(winners) == 1, outcomes
        winner = winners[0]
        seqs.add(winner["seq"])
        for status, body in outcomes:
            if status != 201:
                assert status == 409, body
                assert body["seq"] == winner["seq"]
                assert body["served_by"] == {"volunteer_id": winner["receipt"]["entry"]["volunteer_id"],
                                             "device_id": winner["receipt"]["entry"]["device_id"]}
    assert seqs == set(range(1, ENTITLEMENTS + 1))
    assert writer.batches < len(results)  # group commit: many deliveries per transaction


def test_two_writers_on_one_store_cannot_both_serve(settings_for, tmp_path: Path):
    settings = settings_for("ledger")
    shared = {} if settings.uses_postgres else {"SQLITE_DBNAME": str(settings.service_dir / "events.sqlite")}
    first = Ledger(settings, config())
    other_dir = settings_for("ledger", DATA_DIR=str(tmp_path / "other"))
    second = Ledger(other_dir, config(), env=shared)
    try:
        entitlements = [issued() for _ in range(30)]
        learn(first, *entitlements)
        commands = {name: [RecordDelivery(idempotency_key=f"{name}-{e.source_id}", body_hash=name,
                                          entitlement_id=e.source_id, items=[], cash_vnd=1000, volunteer_id=name,
                                          device_id=name, delivered_at="2021-07-20T08:00:00.000000Z")
                           for e in entitlements] for name in ("a", "b")}
        results = {}
        threads = [threading.Thread(target=lambda n, app: results.__setitem__(n, app.record(commands[n])), args=(n, app))
                   for n, app in (("a", first), ("b", second))]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        for a, b in zip(results["a"], results["b"]):
            assert sorted([a.status, b.status]) == [201, 409], (a.body, b.body)
            winner, loser = (a, b) if a.status == 201 else (b, a)
            assert loser.body["seq"] == winner.body["seq"]
        for e in entitlements:
            assert isinstance(first.get_or_none(e.source_id), Entitlement)
        first.merkle.catch_up()
        second.merkle.catch_up()
        assert first.merkle.size == second.merkle.size == 30
        assert first.merkle.root(30) == second.merkle.root(30)
    finally:
        second.close()
        first.close()
