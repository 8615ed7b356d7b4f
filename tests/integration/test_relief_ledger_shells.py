"""Relief and ledger as running services on a real nats-server, and the deploy config.

Relief follows households' contract events into one eligibility aggregate per household;
a copy of an event (same source version, new Nats-Msg-Id, so JetStream keeps both) has
no second effect.
"""

import asyncio
import contextlib
import os
import subprocess
import sys
import time
import uuid
from datetime import date, datetime, timezone
from pathlib import Path

import httpx
import nats
import pytest
from eventsourcing.persistence import Tracking
from fastapi.testclient import TestClient
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from nats.js.errors import NotFoundError

from contracts import (
    HouseholdCorrected,
    HouseholdRegistered,
    HouseholdsMerged,
    MembersChanged,
    QuarantineEnded,
    QuarantineStarted,
    encode,
)
from services.common.auth import Role
from services.common.bus import ensure_streams
from services.common.natsserver import binary, free_port
from services.common.store import UnitOfWork
from services.ledger import main as ledger_main
from services.relief import main as relief_main
from services.relief.application import HOUSEHOLD_HANDLERS, Relief
from services.relief.domain import OutOfStep
from tests.signin import signed_in
from tests.waiting import eventually

ROOT = Path(__file__).resolve().parents[2]
WAIT = 10.0
NOW = datetime(2021, 7, 20, 8, 0, tzinfo=timezone.utc)


def envelope(household_id: uuid.UUID, version: int) -> dict:
    return {"event_id": uuid.uuid4(), "occurred_at": NOW, "source_id": household_id,
            "source_version": version}


def registered(household_id, version=1, members=4):
    return HouseholdRegistered(**envelope(household_id, version), commune_code="26734", village="Thôn 3",
                               member_count=members, poverty_status="near_poor",
                               vulnerability={"elderly": 1, "child_under_6": 2})


def quarantine_started(household_id, episode_id, version):
    return QuarantineStarted(**envelope(household_id, version), episode_id=episode_id,
                             starts_on=date(2021, 7, 20), expected_end_on=date(2021, 8, 3))


def quarantine_ended(household_id, episode_id, version):
    return QuarantineEnded(**envelope(household_id, version), episode_id=episode_id,
                           ended_on=date(2021, 8, 1))


async def publish(url: str, events: list, start_relief_here: bool = False) -> None:
    """Publish contract events as households' relay would, each with its own Nats-Msg-Id.

    The nats-server is shared by the whole session, so the HOUSEHOLDS stream may hold other
    tests' messages: with `start_relief_here`, relief's durable consumer is recreated to
    begin at the first of these events."""
    nc = await nats.connect(url)
    try:
        js = nc.jetstream()
        await ensure_streams(js)
        for index, event in enumerate(events):
            subject, payload, headers = encode(event)
            headers["Nats-Msg-Id"] = f"households-test:{uuid.uuid4()}"
            ack = await js.publish(subject, payload, headers=headers)
            assert not ack.duplicate
            if index == 0 and start_relief_here:
                await _relief_consumer_from(js, ack.seq)
    finally:
        await nc.close()


async def _relief_consumer_from(js, sequence: int) -> None:
    subscription = relief_main.HOUSEHOLDS
    with contextlib.suppress(NotFoundError):
        await js.delete_consumer(subscription.stream, subscription.durable)
    await js.add_consumer(subscription.stream, ConsumerConfig(
        durable_name=subscription.durable, deliver_policy=DeliverPolicy.BY_START_SEQUENCE,
        opt_start_seq=sequence, ack_policy=AckPolicy.EXPLICIT, filter_subject=subscription.filter_subject,
    ))


def wait_until(check, what: str):
    return eventually(check, what, WAIT)


def eligibility(client: TestClient, household_id) -> dict | None:
    response = client.get(f"/eligibility/households/{household_id}")
    return response.json() if response.status_code == 200 else None


@pytest.mark.nats
def test_relief_follows_households_and_applies_a_copy_once(nats_server, settings_for):
    household, episode = uuid.uuid4(), uuid.uuid4()
    started = quarantine_started(household, episode, 2)
    asyncio.run(publish(nats_server.url, [registered(household), started], start_relief_here=True))

    app = relief_main.create(settings_for("relief", NATS_URL=nats_server.url))
    with TestClient(app, headers=signed_in(settings_for("relief"), Role.auditor, username="kiem-toan")) as client:
        unknown = client.get(f"/eligibility/households/{uuid.uuid4()}")
        assert unknown.status_code == 404 and unknown.json()["error"] == "not_found"
        seen = wait_until(lambda: (e := eligibility(client, household)) and e["in_quarantine"] and e,
                          "relief shows the quarantine")
        assert seen["commune_code"] == "26734" and seen["village"] == "Thôn 3"
        assert seen["member_count"] == 4 and seen["vulnerability"]["child_under_6"] == 2
        assert seen["quarantine_episodes"] == [{"episode_id": str(episode), "starts_on": "2021-07-20",
                                                "expected_end_on": "2021-08-03", "ended_on": None}]
        health = client.get("/healthz")
        assert health.status_code == 200 and health.json()["nats"] == "connected"

        # the same event again under a new Msg-Id (JetStream keeps it), then the next change
        asyncio.run(publish(nats_server.url, [started, quarantine_ended(household, episode, 3)]))
        ended = wait_until(lambda: (e := eligibility(client, household)) and not e["in_quarantine"] and e,
                           "relief shows the quarantine ended")
        stats = client.get("/healthz").json()["consumers"]["HOUSEHOLDS/relief-households"]

    assert stats["handled"] == 4  # the copy was delivered and handled ...
    assert len(ended["quarantine_episodes"]) == 1 and ended["quarantine_episodes"][0]["ended_on"] == "2021-08-01"
    assert ended["source_version"] == 3
    store = Relief(settings_for("relief"))
    try:  # ... but stored nothing: registered, started, ended
        assert store.household(household).version == 3
    finally:
        store.close()


def test_relief_applies_every_household_event_kind_once(settings_for):
    app = Relief(settings_for("relief"))
    survivor, duplicate, episode = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    stream = [
        registered(survivor), registered(duplicate, members=2),
        HouseholdCorrected(**envelope(survivor, 2), commune_code="26735", village="Thôn 5",
                           poverty_status="poor"),
        MembersChanged(**envelope(survivor, 3), member_count=5, vulnerability={"elderly": 2}),
        quarantine_started(survivor, episode, 4), quarantine_ended(survivor, episode, 5),
        HouseholdsMerged(**envelope(survivor, 6), merged_id=duplicate),
    ]
    try:
        for position, replay in enumerate([stream, stream], start=1):  # the second pass is a replay
            uow = UnitOfWork(app)
            for event in replay:
                HOUSEHOLD_HANDLERS[type(event)](uow, event)
            uow.commit(Tracking("HOUSEHOLDS/test", position))

        kept = app.household(survivor)
        assert kept.version == 6 and kept.source_version == 6
        assert (kept.commune_code, kept.village, kept.poverty_status) == ("26735", "Thôn 5", "poor")
        assert kept.member_count == 5 and kept.vulnerability["elderly"] == 2
        assert not kept.in_quarantine and kept.episodes[episode].ended_on == date(2021, 8, 1)
        assert kept.merged_ids == [duplicate]
        merged = app.household(duplicate)
        assert merged.merged_into == survivor and merged.version == 2

        with pytest.raises(OutOfStep):  # a quarantine for a household relief never saw
            HOUSEHOLD_HANDLERS[QuarantineStarted](UnitOfWork(app), quarantine_started(uuid.uuid4(), episode, 2))
    finally:
        app.close()


@pytest.mark.nats
def test_ledger_serves_health_and_honest_info(nats_server, settings_for):
    with TestClient(ledger_main.create(settings_for("ledger", NATS_URL=nats_server.url))) as client:
        wait_until(lambda: client.get("/healthz").status_code == 200, "ledger ready")
        info = client.get("/ledger/info").json()
    assert (info["service"], info["version"], info["entries"]) == ("ledger", "0.1.0", 0)
    assert info["latest_checkpoint"] is None  # nothing recorded, nothing signed


@pytest.mark.nats
@pytest.mark.parametrize("service", ["relief", "ledger"])
def test_service_runs_as_a_process(service, nats_server, store_env, tmp_path):
    port = free_port()
    env = {**os.environ, **store_env, "NATS_URL": nats_server.url, f"{service.upper()}_PORT": str(port)}
    log = tmp_path / f"{service}.log"
    with log.open("wb") as sink:
        process = subprocess.Popen([sys.executable, "-m", f"services.{service}"], cwd=ROOT, env=env,
                                   stdout=sink, stderr=subprocess.STDOUT)
    try:
        def ready():
            with contextlib.suppress(httpx.HTTPError):
                return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200
            assert process.poll() is None, log.read_text()

        wait_until(ready, f"{service} answers /healthz")
        # Not at the very instant the first fetch starts: a stop there can lose its cancellation
        # in the tracked consumer (asyncio.wait_for on 3.11; see the report on services.common).
        time.sleep(0.5)
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            pytest.fail(f"{service} did not stop within 15 s of SIGTERM")


def test_single_node_nats_config_is_valid():
    done = subprocess.run([binary(), "-t", "-c", "deploy/nats/single.conf"], cwd=ROOT,
                          capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stdout + done.stderr
