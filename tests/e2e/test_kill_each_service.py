"""Faults over real processes: nats-server and the three services as subprocesses (SQLite stores),
a steady mixed load from client threads (registrations to households, donations to relief with an
Idempotency-Key, deliveries to the ledger with an Idempotency-Key; each client retries on connection
errors and 503 with the same key, as a phone would), and in turn:

  kill -9 households, kill -9 relief, kill -9 ledger (each restarted mid-load), restart nats-server
  (SIGTERM), kill -9 nats-server (restarted on the same port and store).

After each fault the load pauses and, within bounded waits, everything must converge:
- every acknowledged request is stored exactly once (counted through the APIs);
- every stored event is on its stream exactly once (message counts equal the stored counts, no two
  messages share a Nats-Msg-Id or a source event);
- relief's and households' views of the ledger (and relief's of households) caught up;
- `relief-audit verify --source <ledger url> --relief <nats url>` exits 0.

The figures (requests sent, acknowledged, lost, duplicates, retried, rate) are printed (pytest -s)
and recorded in docs/operations.md, "Fault tests".
"""

import asyncio
import csv
import io
import itertools
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import httpx
import nats
import pytest

from contracts.subjects import STREAMS
from services.common.auth import token_for
from services.common.natsserver import NatsServer, free_port
from tests.unit.test_ledger_helpers import TEST_KEY
from tests.waiting import eventually as wait

pytestmark = pytest.mark.nats
ROOT = Path(__file__).resolve().parents[2]
AUDIT = Path(sys.executable).with_name("relief-audit")
SERVICES = ("households", "relief", "ledger")
ENTITLEMENTS = 240  # households issued a package before the load: the deliveries' work
ELIGIBLE, WALK_IN = "00070", "00073"  # setup households; households registered under load
TODAY = date.today()
RATE = {"registration": 8.0, "donation": 8.0, "delivery": 5.0}  # requests per second per client thread
CONSUMER_BOUND = 90.0  # > the consumers' ack_wait (60 s): an ack lost with a crashed broker is redelivered after it
GIVE_UP = 90.0  # a client retries one request this long at most (a bounded wait, not a speed check)


def eventually(check, what, timeout: float = 60.0):
    return wait(check, what, timeout, every=0.25,
                tolerate=(httpx.HTTPError, KeyError, ValueError, nats.errors.Error, TimeoutError, OSError))


class Service:
    def __init__(self, name: str, env: dict[str, str], log: Path):
        self.name = name
        self.port = int(env[f"{name.upper()}_PORT"])
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = env
        self.log = log
        self.process: subprocess.Popen | None = None

    def start(self) -> "Service":
        with open(self.log, "ab") as out:
            self.process = subprocess.Popen([sys.executable, "-m", f"services.{self.name}"], env=self.env, cwd=ROOT,
                                            stdout=out, stderr=subprocess.STDOUT)
        return self

    def wait_ready(self) -> None:
        def ready():
            if self.process.poll() is not None:
                raise AssertionError(f"{self.name} exited with {self.process.returncode}; see {self.log}")
            return httpx.get(f"{self.url}/healthz", timeout=2).status_code == 200
        eventually(ready, f"{self.name} ready", timeout=60)

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.kill()

    def health(self) -> dict:
        return httpx.get(f"{self.url}/healthz", timeout=5).json()


@dataclass
class Figures:
    sent: int = 0  # logical requests started
    acknowledged: int = 0  # answered with success (first time or, after a lost answer, by the retry)
    attempts: int = 0  # HTTP attempts, retries included
    retried: int = 0  # requests that needed more than one attempt
    errors: list[str] = field(default_factory=list)  # unexpected answers (the test fails on any)


class Client:
    """One desk or phone: retries a request on connection errors and 503s, with the same key and body."""

    def __init__(self, base: str, token: str, figures: Figures):
        self.http = httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=15)
        self.figures = figures

    def send(self, method: str, path: str, **kwargs) -> tuple[httpx.Response | None, int]:
        self.figures.sent += 1
        deadline = time.monotonic() + GIVE_UP
        tries = 0
        while time.monotonic() < deadline:
            tries += 1
            self.figures.attempts += 1
            try:
                response = self.http.request(method, path, **kwargs)
            except httpx.TransportError:
                time.sleep(0.2)
                continue
            if response.status_code in (502, 503, 504):
                time.sleep(0.2)
                continue
            if tries > 1:
                self.figures.retried += 1
            return response, tries
        self.figures.errors.append(f"{method} {path}: no answer within {GIVE_UP}s")
        return None, tries


class Load:
    """Three client threads, one per service, each at a steady rate; pause() waits for them to be idle."""

    def __init__(self, urls: dict[str, str], token: str, campaign_id: str, entitlement_ids: list[str]):
        self.figures = {kind: Figures() for kind in RATE}
        self.clients = {"registration": Client(urls["households"], token, self.figures["registration"]),
                        "donation": Client(urls["relief"], token, self.figures["donation"]),
                        "delivery": Client(urls["ledger"], token, self.figures["delivery"])}
        self.campaign_id = campaign_id
        self.todo = list(entitlement_ids)
        self.registered: dict[str, str] = {}  # CCCD -> household id
        self.donated: dict[str, int] = {}  # Idempotency-Key -> receipt number
        self.delivered: dict[str, int] = {}  # entitlement id -> ledger seq
        self.amounts: dict[str, int] = {}  # Idempotency-Key -> cash_vnd
        self._run = threading.Event()
        self._stop = threading.Event()
        self._idle = {kind: threading.Event() for kind in RATE}
        self._threads = [threading.Thread(target=self._loop, args=(kind,), daemon=True) for kind in RATE]
        self.active_seconds = 0.0
        self._resumed_at = 0.0
        self._numbers = itertools.count(1)  # thread-safe in CPython
        for thread in self._threads:
            thread.start()

    def resume(self) -> None:
        self._resumed_at = time.monotonic()
        self._run.set()

    def pause(self) -> None:
        self._run.clear()
        for kind, idle in self._idle.items():
            assert idle.wait(GIVE_UP + 30), f"{kind} client still busy"
        self.active_seconds += time.monotonic() - self._resumed_at

    def stop(self) -> None:
        self._stop.set()
        self._run.set()
        for thread in self._threads:
            thread.join(GIVE_UP + 30)

    def _loop(self, kind: str) -> None:
        step = {"registration": self.register, "donation": self.donate, "delivery": self.deliver}[kind]
        interval = 1 / RATE[kind]
        while not self._stop.is_set():
            self._idle[kind].clear()  # before looking at _run: pause() then waits for this step
            if not self._run.is_set():
                self._idle[kind].set()
                self._run.wait()
                continue
            began = time.monotonic()
            try:
                step()
            except Exception as error:  # noqa: BLE001 - reported by the test
                self.figures[kind].errors.append(repr(error))
            time.sleep(max(0.0, interval - (time.monotonic() - began)))
        self._idle[kind].set()

    def _next(self) -> int:
        return next(self._numbers)

    def register(self) -> None:
        figures, n = self.figures["registration"], self._next()
        cccd = f"0019{n:08d}"
        response, tries = self.clients["registration"].send("POST", "/households", json={
            "head": {"name": f"Người thử {n}", "cccd": cccd, "birth_year": 1980},
            "members": [], "commune_code": WALK_IN, "village": "Tổ 9", "poverty_status": "none",
            "legal_basis": {"ground": "public_task", "reference": "Chỉ thị 16/CT-TTg"}})
        if response is None:
            return
        if response.status_code == 201:
            self.registered[cccd] = response.json()["id"]
        elif response.status_code == 409 and tries > 1 and response.json().get("household"):
            self.registered[cccd] = response.json()["household"]["id"]  # the lost answer's household
        else:
            figures.errors.append(f"registration {cccd}: {response.status_code} {response.text[:200]}")
            return
        figures.acknowledged += 1

    def donate(self) -> None:
        figures, n = self.figures["donation"], self._next()
        key = f"don-{n}-{uuid.uuid4().hex[:6]}"
        self.amounts[key] = 1_000 + n
        response, _ = self.clients["donation"].send(
            "POST", f"/campaigns/{self.campaign_id}/donations", headers={"Idempotency-Key": key}, json={
                "donor": {"kind": "individual", "name": f"Nhà hảo tâm {n}", "public_consent": False},
                "received_on": TODAY.isoformat(), "channel": "cash", "cash_vnd": self.amounts[key], "note": key})
        if response is None:
            return
        if response.status_code not in (200, 201):
            figures.errors.append(f"donation {key}: {response.status_code} {response.text[:200]}")
            return
        self.donated[key] = response.json()["receipt_number"]
        figures.acknowledged += 1

    def deliver(self) -> None:
        if not self.todo:
            return
        figures, entitlement = self.figures["delivery"], self.todo.pop(0)
        response, _ = self.clients["delivery"].send("POST", "/deliveries", headers={"Idempotency-Key": f"d-{entitlement}"},
                                                    json={"entitlement_id": entitlement,
                                                          "items": [{"item_code": "rice", "unit": "kg", "quantity": 1}],
                                                          "cash_vnd": 0, "volunteer_id": "tnv-1", "device_id": "phone-1",
                                                          "delivered_at": datetime.now(timezone.utc).isoformat()})
        if response is None:
            return
        if response.status_code not in (200, 201):
            figures.errors.append(f"delivery {entitlement}: {response.status_code} {response.text[:200]}")
            return
        self.delivered[entitlement] = response.json()["seq"]
        figures.acknowledged += 1


async def _read_streams(url: str) -> dict[str, list]:
    nc = await nats.connect(servers=url.split(","))
    try:
        js = nc.jetstream()
        found = {}
        for name in STREAMS:
            last = (await js.stream_info(name)).state.last_seq
            found[name] = [await js.get_msg(name, seq) for seq in range(1, last + 1)]
        return found
    finally:
        await nc.close()


async def _stream_sizes(url: str) -> dict[str, int]:
    nc = await nats.connect(servers=url.split(","), max_reconnect_attempts=0, connect_timeout=2)
    try:
        js = nc.jetstream()
        return {name: (await js.stream_info(name)).state.messages for name in STREAMS}
    finally:
        await nc.close()


DURABLES = [("HOUSEHOLDS", "relief-households"), ("LEDGER", "relief-ledger"), ("LEDGER", "households-ledger"),
            ("RELIEF", "ledger-relief")]


async def _consumer_lag(url: str) -> dict[str, int]:
    """Per durable consumer: messages not yet delivered plus delivered but not acknowledged."""
    nc = await nats.connect(servers=url.split(","), max_reconnect_attempts=0, connect_timeout=2)
    try:
        js = nc.jetstream()
        lag = {}
        for stream, durable in DURABLES:
            info = await js.consumer_info(stream, durable)
            lag[f"{stream}/{durable}"] = info.num_pending + info.num_ack_pending
        return lag
    finally:
        await nc.close()


def setup_households(http: httpx.Client) -> None:
    rows = io.StringIO()
    writer = csv.writer(rows)
    writer.writerow(["household_ref", "relation", "full_name", "birth_year", "cccd", "commune_code", "village",
                     "poverty_status", "legal_basis", "legal_reference"])
    for i in range(ENTITLEMENTS):
        writer.writerow([f"H{i}", "chủ hộ", f"Hộ nghèo {i}", 1970, f"0018{i:08d}", ELIGIBLE, "Tổ 1", "nghèo",
                         "public_task", "Chỉ thị 16/CT-TTg"])
    imported = http.post("/households/import", params={"wait": "true"},
                         files={"file": ("ho.csv", rows.getvalue().encode(), "text/csv")}, timeout=120)
    assert imported.status_code in (200, 201, 202), imported.text
    eventually(lambda: http.get("/households", params={"commune_code": ELIGIBLE}).json()["total"] == ENTITLEMENTS,
               "the setup households are registered", timeout=90)


def setup_round(relief: httpx.Client, ledger: httpx.Client) -> tuple[str, str, list[str]]:
    campaign = relief.post("/campaigns", json={
        "level": "commune", "unit_code": ELIGIBLE, "name": "Chung tay", "purpose": "Hỗ trợ hộ nghèo",
        "legal_basis": "decree_93_2021", "call_document": "Thư kêu gọi 01",
        "opens_on": (TODAY - timedelta(days=30)).isoformat(), "closes_on": (TODAY + timedelta(days=30)).isoformat(),
        "accounts": [{"kind": "treasury", "number": "3713.0.1234", "bank_name": None}]})
    assert campaign.status_code == 201, campaign.text
    campaign_id = campaign.json()["id"]
    goods = relief.post(f"/campaigns/{campaign_id}/donations", headers={"Idempotency-Key": "setup-goods"}, json={
        "donor": {"kind": "organisation", "name": "Công ty A", "public_consent": True},
        "received_on": TODAY.isoformat(), "channel": "goods", "goods": [{"item_code": "rice", "quantity": 10_000}]})
    assert goods.status_code == 201, goods.text
    round_id = relief.post("/rounds", json={
        "campaign_id": campaign_id, "name": "Đợt 1", "planned_on": TODAY.isoformat(),
        "package": {"items": {"rice": 1}},
        "eligibility": {"commune_codes": [ELIGIBLE], "poverty_statuses": ["poor"]}}).json()["id"]
    eventually(lambda: relief.get(f"/rounds/{round_id}/preview").json()["eligible"] == ENTITLEMENTS,
               "relief hears of every setup household", timeout=90)
    issued = relief.post(f"/rounds/{round_id}/issue")
    assert issued.status_code == 200, issued.text
    rows = relief.get(f"/rounds/{round_id}/entitlements", params={"page_size": 1000}).json()["entitlements"]
    ids = [row["id"] for row in rows]
    assert len(ids) == ENTITLEMENTS
    eventually(lambda: all(ledger.get(f"/entitlements/{i}").status_code == 200 for i in ids[-1:] + ids[:1]),
               "the ledger hears of the entitlements", timeout=90)
    assert all(ledger.get(f"/entitlements/{i}").status_code == 200 for i in ids)
    return campaign_id, round_id, ids


def check_converged(phase: str, load: Load, services: dict[str, Service], http: dict[str, httpx.Client],
                    nats_url: str, campaign_id: str, round_id: str) -> dict:
    began = time.monotonic()
    for service in services.values():
        service.wait_ready()
    expected = {"HOUSEHOLDS": ENTITLEMENTS + len(load.registered),
                "RELIEF": 1 + len(load.donated) + ENTITLEMENTS,
                "LEDGER": len(load.delivered)}
    sizes: dict[str, int] = {}

    def relays() -> str:
        return "; ".join(f"{name} outbox {s.health().get('outbox')}" for name, s in services.items())
    eventually(lambda: sizes.update(asyncio.run(_stream_sizes(nats_url))) or sizes == expected,
               lambda: f"[{phase}] streams hold every stored event: {sizes} != {expected}; {relays()}", timeout=60)

    published_in = time.monotonic() - began
    # every event on its stream exactly once
    streams = asyncio.run(_read_streams(nats_url))
    duplicates = 0
    for name, messages in streams.items():
        msg_ids = Counter(m.headers["Nats-Msg-Id"] for m in messages)
        sources = Counter((m.headers["Event-Type"], m.data.split(b'"source_id":', 1)[1][:40],
                           m.data.split(b'"source_version":', 1)[1][:8]) for m in messages)
        duplicates += sum(c - 1 for c in msg_ids.values()) + sum(c - 1 for c in sources.values())
    assert duplicates == 0, f"[{phase}] duplicates on the streams"
    types = {name: Counter(m.headers["Event-Type"] for m in messages) for name, messages in streams.items()}
    assert types["HOUSEHOLDS"] == {"HouseholdRegistered": expected["HOUSEHOLDS"]}
    assert types["RELIEF"] == {"DonationReceived": 1 + len(load.donated), "EntitlementIssued": ENTITLEMENTS}
    assert types["LEDGER"] == ({"DistributionRecorded": len(load.delivered)} if load.delivered else {})

    # every acknowledged request stored exactly once, counted through the APIs
    households, relief, ledger = http["households"], http["relief"], http["ledger"]
    found: list[str] = []
    page = 1
    while True:
        answer = households.get("/households", params={"commune_code": WALK_IN, "page": page, "page_size": 100}).json()
        found += [item["id"] for item in answer["items"]]
        if len(answer["items"]) < 100:
            break
        page += 1
    assert answer["total"] == len(found) == len(set(found)) == len(load.registered), f"[{phase}] households"
    assert set(found) == set(load.registered.values()), f"[{phase}] an acknowledged registration is missing"

    donations: list[dict] = []
    page = 1
    while True:
        answer = relief.get(f"/campaigns/{campaign_id}/donations", params={"page": page, "page_size": 200}).json()
        donations += answer["items"]
        if len(answer["items"]) < 200:
            break
        page += 1
    assert answer["total"] == len(donations) == 1 + len(load.donated), f"[{phase}] donations"
    assert [d["receipt_number"] for d in donations] == list(range(1, len(donations) + 1)), f"[{phase}] receipt gap"
    by_key = {d["note"]: d for d in donations[1:]}
    assert len(by_key) == len(load.donated) and set(by_key) == set(load.donated), f"[{phase}] a donation is missing"
    assert all(by_key[k]["receipt_number"] == n and by_key[k]["cash_vnd"] == load.amounts[k]
               for k, n in load.donated.items())

    info = ledger.get("/ledger/info").json()
    assert info["entries"] == len(load.delivered), f"[{phase}] ledger entries"
    assert sorted(load.delivered.values()) == list(range(1, len(load.delivered) + 1)), f"[{phase}] seq"

    # the views of the ledger (and relief's of households) caught up: every durable consumer has
    # acknowledged (after its commit) everything on its stream
    last = {name: len(messages) for name, messages in streams.items()}
    lag: dict = {}
    lags: list[dict] = []  # what was pending, while it was
    eventually(lambda: lag.update(asyncio.run(_consumer_lag(nats_url))) or lags.append(dict(lag)) or not any(lag.values()),
               lambda: f"[{phase}] every consumer at the end of its stream: {lag}", timeout=CONSUMER_BOUND)
    consumed_in = time.monotonic() - began
    pending = {k: max(l.get(k, 0) for l in lags) for k in lag}
    served = relief.get(f"/rounds/{round_id}/entitlements", params={"status": "served", "page_size": 1}).json()
    assert served["total"] == len(load.delivered), f"[{phase}] relief's view of the ledger"
    if load.delivered:
        entitlement = next(reversed(load.delivered))
        household = ledger.get(f"/entitlements/{entitlement}").json()["household_id"]
        history = households.get(f"/households/{household}/deliveries").json()["deliveries"]
        assert [d["entry_seq"] for d in history] == [load.delivered[entitlement]], f"[{phase}] households' view"

    # the audit tool agrees
    eventually(lambda: (ledger.get("/ledger/info").json()["latest_checkpoint"] or {}).get("tree_size") == info["entries"],
               f"[{phase}] a checkpoint covers every entry", timeout=30)
    audit_began = time.monotonic()
    if AUDIT.exists():
        audit = subprocess.run([str(AUDIT), "verify", "--source", services["ledger"].url, "--relief", nats_url,
                                "--no-progress"], capture_output=True, text=True, cwd=ROOT, timeout=120)
        assert audit.returncode == 0, f"[{phase}] relief-audit verify: {audit.stdout}{audit.stderr}"
    return {"streams": last, "entries": info["entries"], "audit": time.monotonic() - audit_began,
            "published": published_in, "consumed": consumed_in, "pending": {k: v for k, v in pending.items() if v}}


def services_for(tmp_path: Path, nats_url: str,
                 **extra: str) -> tuple[str, dict[str, Service], dict[str, httpx.Client]]:
    """A sign-in token, the three services (not started; SQLite stores under tmp_path) and an API client for each."""
    data, keys = tmp_path / "var", tmp_path / "auth"
    token = token_for(keys, "fault-test")  # creates the key ring every service verifies with
    env = {**{k: v for k, v in os.environ.items() if not k.startswith(("POSTGRES_", "PERSISTENCE_", "NATS_"))},
           "DATA_DIR": str(data), "AUTH_KEYS_DIR": str(keys), "NATS_URL": nats_url,
           "LEDGER_SIGNING_KEY": TEST_KEY, "LEDGER_CHECKPOINT_SECONDS": "1",
           **{f"{name.upper()}_PORT": str(free_port()) for name in SERVICES}, **extra}
    env["HOUSEHOLDS_URL"] = f"http://127.0.0.1:{env['HOUSEHOLDS_PORT']}"
    services = {name: Service(name, env, tmp_path / f"{name}.log") for name in SERVICES}
    http = {name: httpx.Client(base_url=s.url, headers={"Authorization": f"Bearer {token}"}, timeout=60)
            for name, s in services.items()}
    return token, services, http


def run_phase(phase: str, fault, load: Load, services: dict[str, Service], http: dict[str, httpx.Client],
              nats_url: str, campaign_id: str, round_id: str, after: float = 2.0) -> str:
    """Load for 3 s, the fault, `after` s more load, pause, then check_converged; returns the report line."""
    load.resume()
    time.sleep(3)
    fault()
    time.sleep(after)
    load.pause()
    errors = [e for f in load.figures.values() for e in f.errors]
    assert not errors, f"[{phase}] {errors[:5]}"
    paused = time.monotonic()
    state = check_converged(phase, load, services, http, nats_url, campaign_id, round_id)
    return (f"{phase}: converged and checked in {time.monotonic() - paused:.0f} s "
            f"(all published {state['published']:.0f} s, all consumed {state['consumed']:.0f} s, "
            f"most pending {state['pending']}, audit {state['audit']:.0f} s); streams {state['streams']}")


def stop_all(load: Load | None, http: dict[str, httpx.Client], services: dict[str, Service]) -> None:
    """The load first, then the clients, then the services."""
    if load is not None:
        load.stop()
    for client in http.values():
        client.close()
    for service in services.values():
        service.stop()


def load_figures(load: Load) -> tuple[list[str], int, int, int]:
    """The printed figures per kind and in total, and the totals sent, acknowledged, stored."""
    sent = sum(f.sent for f in load.figures.values())
    acknowledged = sum(f.acknowledged for f in load.figures.values())
    stored = len(load.registered) + len(load.donated) + len(load.delivered)
    lines = [*(f"  {kind}: sent {f.sent}, acknowledged {f.acknowledged}, HTTP attempts {f.attempts}, "
               f"retried {f.retried}" for kind, f in load.figures.items()),
             f"  total: sent {sent}, acknowledged {acknowledged}, lost {acknowledged - stored}, duplicates 0, "
             f"load {acknowledged / max(load.active_seconds, 1e-9):.1f} requests/s"]
    return lines, sent, acknowledged, stored


def test_kill_each_service_and_restart_nats_mid_load(tmp_path):
    nats_dir, nats_port = tmp_path / "nats", free_port()
    server = NatsServer(nats_dir, port=nats_port).start()
    token, services, http = services_for(tmp_path, server.url)
    load = None
    began = time.monotonic()
    report: list[str] = []
    try:
        for service in services.values():
            service.start()
        for service in services.values():
            service.wait_ready()
        setup_households(http["households"])
        campaign_id, round_id, entitlement_ids = setup_round(http["relief"], http["ledger"])
        load = Load({name: s.url for name, s in services.items()}, token, campaign_id, entitlement_ids)

        def restart(name: str) -> None:
            services[name].kill()
            time.sleep(0.5)  # clients find it gone and keep retrying
            services[name].start().wait_ready()

        def restart_nats(crash: bool) -> None:
            nonlocal server
            server.kill() if crash else server.stop()  # SIGKILL like a crash, or SIGTERM
            time.sleep(0.5)
            server = NatsServer(nats_dir, port=nats_port).start()

        faults = [("kill -9 households", lambda: restart("households")),
                  ("kill -9 relief", lambda: restart("relief")),
                  ("kill -9 ledger", lambda: restart("ledger")),
                  ("restart nats-server", lambda: restart_nats(crash=False)),
                  ("kill -9 nats-server, restart", lambda: restart_nats(crash=True))]
        for phase, fault in faults:
            report.append(run_phase(phase, fault, load, services, http, server.url, campaign_id, round_id))
    finally:
        stop_all(load, http, services)
        server.stop()

    figures, sent, acknowledged, stored = load_figures(load)
    lines = [f"fault test: {len(faults)} faults in {time.monotonic() - began:.0f} s (load {load.active_seconds:.0f} s)",
             *report, *figures]
    print("\n" + "\n".join(lines))
    assert sent == acknowledged == stored
    assert all(load.figures[kind].retried for kind in ("registration", "donation", "delivery")), \
        "each service's clients felt its fault"
