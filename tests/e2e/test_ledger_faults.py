"""The ledger process under faults, over a real nats-server, on SQLite and PostgreSQL:

- killed (SIGKILL) after deliveries were committed but before they were published, and again
  while publishing: after restarts, LEDGER holds every delivery exactly once;
- every relief event delivered twice (copies with their own Nats-Msg-Id) changes nothing;
- the relief consumer restarted from zero (durable deleted) ends in the same state, and a
  fresh store fed from zero reaches the same entitlements;
- `relief-audit verify` passes on the export, with relief's events from RELIEF.
"""

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import nats
import pytest
from nats.js.errors import NotFoundError

from services.common.natsserver import NatsServer, free_port
from tests.integration.test_ledger_nats import ledger_stream, publish
from tests.unit.test_ledger_helpers import TEST_KEY, delivery_body, issued, volunteer
from tests.waiting import eventually as wait

pytestmark = pytest.mark.nats
ROOT = Path(__file__).resolve().parents[2]
AUDIT = Path(sys.executable).with_name("relief-audit")


def eventually(check, what: str, timeout: float = 30.0):
    return wait(check, what, timeout, every=0.2, tolerate=(httpx.HTTPError,))


class LedgerProcess:
    def __init__(self, store_env: dict, nats_url: str, log: Path):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        keys = log.parent / "auth"  # the key ring the tokens are signed with: the process gets the folder
        self.env = {**{k: v for k, v in os.environ.items() if not k.startswith(("POSTGRES_", "LEDGER_"))},
                    **store_env, "NATS_URL": nats_url, "LEDGER_PORT": str(self.port),
                    "LEDGER_SIGNING_KEY": TEST_KEY, "LEDGER_CHECKPOINT_SECONDS": "1", "AUTH_KEYS_DIR": str(keys)}
        self.headers = volunteer(keys)  # the volunteer delivery_body() names, of issued()'s commune
        self.log = log
        self.process = None

    def start(self) -> "LedgerProcess":
        out = open(self.log, "ab")
        self.process = subprocess.Popen([sys.executable, "-m", "services.ledger"], env=self.env, cwd=ROOT,
                                        stdout=out, stderr=subprocess.STDOUT)
        eventually(lambda: httpx.get(f"{self.url}/ledger/info").status_code == 200, "ledger answers")
        return self

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.kill()

    def healthy(self) -> dict | None:
        response = httpx.get(f"{self.url}/healthz")
        return response.json() if response.status_code == 200 else None


def deliver(ledger: LedgerProcess, e, key: str) -> httpx.Response:
    return httpx.post(f"{ledger.url}/deliveries", json=delivery_body(e),
                      headers={"Idempotency-Key": key, **ledger.headers}, timeout=30)


def entitlement(ledger: LedgerProcess, e) -> httpx.Response:
    return httpx.get(f"{ledger.url}/entitlements/{e.source_id}", headers=ledger.headers)


def knows_all(ledger: LedgerProcess, entitlements) -> bool:
    return all(entitlement(ledger, e).status_code == 200 for e in entitlements)


async def delete_durable(url: str) -> None:
    nc = await nats.connect(url)
    try:
        with contextlib.suppress(NotFoundError):
            await nc.jetstream().delete_consumer("RELIEF", "ledger-relief")
    finally:
        await nc.close()


def snapshot(ledger: LedgerProcess, entitlements) -> tuple[list, bytes]:
    states = [entitlement(ledger, e).json() for e in entitlements]
    return states, httpx.get(f"{ledger.url}/ledger/export").content  # public: no sign-in


def test_killed_between_commit_and_publish_loses_nothing_and_doubles_nothing(tmp_path, store_env):
    nats_dir, port = tmp_path / "nats", free_port()
    server = NatsServer(nats_dir, port=port).start()
    entitlements = [issued() for _ in range(60)]
    ledger = LedgerProcess(store_env, server.url, tmp_path / "ledger.log")
    try:
        asyncio.run(publish(server.url, entitlements, copies=2))
        ledger.start()
        eventually(lambda: knows_all(ledger, entitlements), "ledger learned the entitlements")

        server.stop()  # the relay cannot publish: deliveries are committed, not published
        served = {}
        for i, e in enumerate(entitlements[:20]):
            response = deliver(ledger, e, f"k-{i}")
            assert response.status_code == 201, response.text
            served[str(e.source_id)] = response.json()["seq"]
        ledger.kill()

        server = NatsServer(nats_dir, port=port).start()
        ledger.start()
        for i, e in enumerate(entitlements[:20]):  # a phone retrying after the crash
            assert deliver(ledger, e, f"k-{i}").status_code == 200
        for i, e in enumerate(entitlements[20:40], start=20):
            response = deliver(ledger, e, f"k-{i}")
            assert response.status_code == 201
            served[str(e.source_id)] = response.json()["seq"]
            if i == 30:
                ledger.kill()  # while the relay is publishing
                ledger.start()
        eventually(lambda: ledger.healthy(), "ledger ready again")
        for i, e in enumerate(entitlements[40:], start=40):
            served[str(e.source_id)] = deliver(ledger, e, f"k-{i}").json()["seq"]

        def all_published():
            messages = asyncio.run(ledger_stream(server.url))
            return messages if len(messages) >= len(served) else None
        eventually(all_published, "every delivery on LEDGER", timeout=60)
        time.sleep(1.5)  # anything doubled would land by now
        messages = asyncio.run(ledger_stream(server.url))
        published = {m["source_id"]: m["entry_seq"] for _, m in messages}
        assert len(messages) == len(served) == 60
        assert published == served
        assert sorted(published.values()) == list(range(1, 61))

        export = tmp_path / "ledger.jsonl"
        eventually(lambda: httpx.get(f"{ledger.url}/ledger/info").json()["latest_checkpoint"]["tree_size"] == 60,
                   "a checkpoint covers everything")
        export.write_bytes(httpx.get(f"{ledger.url}/ledger/export").content)
        if AUDIT.exists():
            audit = subprocess.run([str(AUDIT), "verify", "--source", str(export), "--relief", server.url,
                                    "--public-key", httpx.get(f"{ledger.url}/ledger/public-key").json()["public_key"],
                                    "--no-progress"], capture_output=True, text=True, cwd=ROOT, timeout=120)
            assert audit.returncode == 0, audit.stdout + audit.stderr
    finally:
        ledger.stop()
        server.stop()


def test_consumer_restarted_from_zero_ends_in_the_same_state(tmp_path, store_env):
    server = NatsServer(tmp_path / "nats").start()
    entitlements = [issued() for _ in range(30)]
    ledger = LedgerProcess(store_env, server.url, tmp_path / "ledger.log")
    fresh = LedgerProcess({**store_env, "DATA_DIR": str(tmp_path / "fresh")}, server.url, tmp_path / "fresh.log")
    try:
        asyncio.run(publish(server.url, entitlements, copies=2))
        ledger.start()
        eventually(lambda: knows_all(ledger, entitlements), "ledger learned the entitlements")
        for i, e in enumerate(entitlements[:10]):
            assert deliver(ledger, e, f"k-{i}").status_code == 201
        before = snapshot(ledger, entitlements)
        ledger.stop()

        asyncio.run(delete_durable(server.url))
        ledger.start()
        consumer = eventually(lambda: (h := ledger.healthy()) and h["consumers"].get("RELIEF/ledger-relief"),
                              "consumer running again")
        eventually(lambda: ledger.healthy()["consumers"]["RELIEF/ledger-relief"]["skipped"] >= 60,
                   "the replay from zero reached the end")
        assert consumer["handled"] == 0
        assert snapshot(ledger, entitlements) == before

        if "POSTGRES_DBNAME" not in store_env:  # a new store fed from zero: the same entitlements
            ledger.stop()
            asyncio.run(delete_durable(server.url))
            fresh.start()
            eventually(lambda: knows_all(fresh, entitlements), "fresh ledger learned the entitlements")
            states = [entitlement(fresh, e).json() for e in entitlements]
            assert [s["state"] for s in states] == ["open"] * 30
            assert [{k: v for k, v in s.items() if k not in ("state", "delivery")} for s in states] == \
                [{k: v for k, v in s.items() if k not in ("state", "delivery")} for s in before[0]]
    finally:
        ledger.stop()
        fresh.stop()
        server.stop()
