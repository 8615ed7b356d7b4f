"""The ledger's outbox relay in its own process (the default of `python -m services.ledger`),
over a real nats-server, on SQLite and PostgreSQL:

- the relay process killed: the service starts it again, and LEDGER still holds each delivery once;
- the service killed (SIGKILL): its relay process stops too, so none is left publishing behind it.
"""

import asyncio
import os
import signal
from pathlib import Path

import pytest

from services.common.natsserver import NatsServer
from tests.e2e.test_ledger_faults import LedgerProcess, deliver, eventually, knows_all
from tests.integration.test_ledger_nats import ledger_stream, publish
from tests.unit.test_ledger_helpers import issued

pytestmark = pytest.mark.nats


def relay_of(ledger: LedgerProcess) -> dict:
    return eventually(lambda: (h := ledger.healthy()) and h["outbox"].get("process") == "running" and h["outbox"],
                      "relay process running")


def gone(pid: int) -> bool:
    """Exited: reaped, or a zombie waiting for a parent that is itself gone."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] in ("Z", "X")
    except FileNotFoundError:
        return True


def test_a_killed_relay_process_is_started_again_and_each_delivery_published_once(tmp_path, store_env):
    server = NatsServer(tmp_path / "nats").start()
    entitlements = [issued() for _ in range(20)]
    ledger = LedgerProcess(store_env, server.url, tmp_path / "ledger.log")
    try:
        asyncio.run(publish(server.url, entitlements))
        ledger.start()
        eventually(lambda: knows_all(ledger, entitlements), "ledger learned the entitlements")
        first = relay_of(ledger)
        for i, e in enumerate(entitlements[:10]):
            assert deliver(ledger, e, f"k-{i}").status_code == 201
        os.kill(first["pid"], signal.SIGKILL)
        for i, e in enumerate(entitlements[10:], start=10):
            assert deliver(ledger, e, f"k-{i}").status_code == 201  # recording never waits for the relay
        again = eventually(lambda: (r := relay_of(ledger))["restarts"] >= 1 and r, "relay started again")
        assert again["pid"] != first["pid"]

        def all_published():
            messages = asyncio.run(ledger_stream(server.url))
            return messages if len(messages) >= 20 else None
        eventually(all_published, "every delivery on LEDGER", timeout=60)
        messages = asyncio.run(ledger_stream(server.url))
        assert sorted(m["entry_seq"] for _, m in messages) == list(range(1, 21))
        assert eventually(lambda: relay_of(ledger)["position"] >= 20 and relay_of(ledger),
                          "relay position reported")["published"] >= 1
    finally:
        ledger.stop()
        server.stop()


def test_the_relay_process_stops_when_the_service_is_killed(tmp_path, store_env):
    server = NatsServer(tmp_path / "nats").start()
    ledger = LedgerProcess(store_env, server.url, tmp_path / "ledger.log")
    try:
        ledger.start()
        pid = relay_of(ledger)["pid"]
        assert not gone(pid)
        ledger.kill()
        eventually(lambda: gone(pid), "the relay process exited with its service", timeout=15)
    finally:
        ledger.stop()
        server.stop()
