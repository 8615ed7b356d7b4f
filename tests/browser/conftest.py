"""The whole system for browser tests: nats-server, households, relief, ledger and the web front as
subprocesses on free loopback ports, seeded through the APIs, and headless Debian chromium
driven by Playwright (no browser download: /usr/bin/chromium, `make browser` installs it).

One stack per test session (starting it takes a few seconds); tests that change data use their
own households, so their order does not matter.
"""

import json
import os
import shutil
import signal
import subprocess
import sys
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from services.common.auth import Role
from services.common.natsserver import NatsServer, free_port
from tests.signin import signed_in
from tests.waiting import eventually as wait

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
COMMUNE = "00070"
ROUND_DAY = "2021-07-25"
SERVICES = ("households", "relief", "ledger", "web")
HEADS = ["Nguyễn Văn An", "Trần Thị Bình", "Lê Văn Cường", "Phạm Thị Dung", "Hoàng Văn Em", "Nguyễn Văn Phúc",
         "Đỗ Thị Giang", "Vũ Văn Hùng"]



def eventually(check, what: str, timeout: float = 30.0):
    return wait(check, what, timeout, every=0.2, tolerate=(httpx.HTTPError,))


@dataclass
class Stack:
    root: Path
    keys: Path
    urls: dict[str, str] = field(default_factory=dict)
    processes: dict[str, subprocess.Popen] = field(default_factory=dict)
    seed: dict = field(default_factory=dict)

    @property
    def web(self) -> str:
        return self.urls["web"]

    def headers(self, role: Role = Role.admin, communes=("*",), username: str = "seed-admin") -> dict[str, str]:
        return signed_in(self.keys, role=role, communes=communes, username=username)

    def session(self, role: Role, communes=(COMMUNE,), username: str = "tnv-an") -> dict:
        """What the login page keeps in localStorage after POST /auth/token."""
        token = self.headers(role, communes, username)["Authorization"].removeprefix("Bearer ")
        return {"access_token": token, "expires_at": None,
                "user": {"user_id": f"user:{username}", "username": username, "role": str(role),
                         "communes": list(communes)}}

    def client(self, service: str, **kwargs) -> httpx.Client:
        return httpx.Client(base_url=self.urls[service], timeout=30, **kwargs)


def _start(stack: Stack, env: dict) -> None:
    for name in SERVICES:
        log = open(stack.root / f"{name}.log", "ab")
        stack.processes[name] = subprocess.Popen([sys.executable, "-m", f"services.{name}"], env=env, cwd=ROOT,
                                                 stdout=log, stderr=subprocess.STDOUT)
    for name, url in stack.urls.items():
        def healthy(name=name, url=url):
            if stack.processes[name].poll() is not None:
                raise AssertionError(f"{name} exited: {(stack.root / f'{name}.log').read_text()[-3000:]}")
            return httpx.get(f"{url}/healthz", timeout=2).status_code == 200
        eventually(healthy, f"{name} healthy", timeout=60)


def _stop(stack: Stack) -> None:
    for process in stack.processes.values():
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    for process in stack.processes.values():
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()


def _seed(stack: Stack) -> dict:
    admin = stack.headers()
    ids = []
    with stack.client("households", headers=admin) as hh:
        for i, name in enumerate(HEADS):
            response = hh.post("/households", json={
                "head": {"name": name, "cccd": f"0010850{i + 1:05d}", "birth_year": 1980 + i},
                "members": [{"name": f"Con {i}", "relation": "child", "birth_year": 2015}],
                "commune_code": COMMUNE, "village": f"Tổ {1 + i % 2}", "phone": f"09123456{i:02d}",
                "poverty_status": "poor" if i % 3 == 0 else "none",
                "legal_basis": {"ground": "public_task", "reference": "Chỉ thị 16/CT-TTg"}})
            assert response.status_code == 201, response.text
            ids.append(response.json()["id"])
            response = hh.post(f"/households/{ids[-1]}/quarantines", json={
                "kind": "f1_home_quarantine", "decision_number": f"{uuid.uuid4().hex[:6]}/QĐ-UBND",
                "starts_on": "2021-07-20", "expected_end_on": "2021-08-03"})
            assert response.status_code == 201, response.text
    with stack.client("relief", headers=admin) as relief:
        for hid in ids:
            eventually(lambda hid=hid: relief.get(f"/eligibility/households/{hid}").status_code == 200
                       and relief.get(f"/eligibility/households/{hid}").json()["quarantine_episodes"],
                       "relief hears of the households")
        campaign = relief.post("/campaigns", json={
            "level": "commune", "unit_code": COMMUNE, "name": "Chung tay chống dịch", "purpose": "Hộ cách ly tại nhà",
            "legal_basis": "decree_64_2008", "call_document": "Thư kêu gọi 01/TKG-MTTQ", "opens_on": "2021-07-01",
            "closes_on": "2021-09-30", "accounts": [{"kind": "bank", "number": "0011", "bank_name": "Vietcombank"}]})
        assert campaign.status_code == 201, campaign.text
        campaign_id = campaign.json()["id"]
        for n, body in enumerate([
                {"donor": {"kind": "organisation", "name": "Công ty May 10", "public_consent": True},
                 "received_on": "2021-07-21", "channel": "goods", "cash_vnd": 0,
                 "goods": [{"item_code": "rice", "quantity": 100, "unit_value_vnd": 15000},
                           {"item_code": "sugar", "quantity": 20, "unit_value_vnd": 20000},
                           {"item_code": "milk", "quantity": 30, "unit_value_vnd": 8000, "expiry_date": "2021-08-10"}]},
                {"donor": {"kind": "individual", "name": "Nguyễn Thị Hảo", "public_consent": False},
                 "received_on": "2021-07-22", "channel": "bank_transfer", "cash_vnd": 5_000_000, "goods": []}]):
            response = relief.post(f"/campaigns/{campaign_id}/donations", json=body,
                                   headers={"Idempotency-Key": f"seed-{n}"})
            assert response.status_code == 201, response.text
        round_ = relief.post("/rounds", json={
            "campaign_id": campaign_id, "name": "Đợt 1: hộ cách ly tại nhà", "planned_on": ROUND_DAY,
            "package": {"items": {"rice": 10}, "cash_vnd": 300_000, "per_member": {"sugar": 1}, "member_cap": 4},
            "eligibility": {"commune_codes": [COMMUNE], "quarantine_on": ROUND_DAY}})
        assert round_.status_code == 201, round_.text
        round_id = round_.json()["id"]
        preview = relief.get(f"/rounds/{round_id}/preview").json()
        assert preview["eligible"] == len(ids), preview
        issued = relief.post(f"/rounds/{round_id}/issue")
        assert issued.status_code == 200, issued.text
        rows = relief.get(f"/rounds/{round_id}/entitlements", params={"page_size": 1000}).json()["entitlements"]
        by_household = {row["household_id"]: row["id"] for row in rows}
        # a second round, left as a draft, for the officer's preview page
        draft = relief.post("/rounds", json={
            "campaign_id": campaign_id, "name": "Đợt 2: bổ sung", "planned_on": "2021-08-01",
            "package": {"items": {"rice": 5}, "cash_vnd": 200_000},
            "eligibility": {"commune_codes": [COMMUNE], "quarantine_on": "2021-07-26"}})
        assert draft.status_code == 201, draft.text
    with stack.client("ledger") as ledger:
        for entitlement in by_household.values():
            eventually(lambda e=entitlement: ledger.get(f"/entitlements/{e}", headers=admin).status_code == 200,
                       "the ledger hears of the entitlements")
    return {"households": dict(zip(HEADS, ids)), "campaign_id": campaign_id, "round_id": round_id,
            "draft_round_id": draft.json()["id"], "entitlements": by_household}


@pytest.fixture(scope="package")
def stack(tmp_path_factory):
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} missing: run `make browser` (apt-get install chromium) first")
    root = tmp_path_factory.mktemp("browser-stack")
    stack = Stack(root=root, keys=root / "auth")
    ports = {name: free_port() for name in SERVICES}
    stack.urls = {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}
    nats = NatsServer(root / "nats").start()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("POSTGRES_", "LEDGER_", "PERSISTENCE_"))}
    env |= {"DATA_DIR": str(root / "var"), "NATS_URL": nats.url, "AUTH_KEYS_DIR": str(stack.keys),
            "LEDGER_CHECKPOINT_SECONDS": "1", **{f"{n.upper()}_PORT": str(p) for n, p in ports.items()},
            **{f"{n.upper()}_URL": stack.urls[n] for n in ("households", "relief", "ledger")}}
    stack.keys.mkdir(parents=True, exist_ok=True)
    signed_in(stack.keys)  # the key ring exists before any service starts
    try:
        _start(stack, env)
        stack.seed = _seed(stack)
        yield stack
    finally:
        _stop(stack)
        nats.stop()
        if os.environ.get("KEEP_BROWSER_LOGS"):
            shutil.copytree(root, Path(os.environ["KEEP_BROWSER_LOGS"]), dirs_exist_ok=True,
                            ignore=shutil.ignore_patterns("nats", "*.sqlite*"))


# Package scope, not session: Playwright's sync API keeps an event loop running in this thread
# while it is open, and every later test that calls asyncio.run() would fail.
@pytest.fixture(scope="package")
def browser():
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} missing: run `make browser` (apt-get install chromium) first")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def open_as(browser, stack):
    """open_as(role, communes, username, phone=False) -> a new browser context signed in as that user
    (a cheap phone's screen with phone=True, else a desktop's)."""
    contexts = []

    def make(role: Role | None = None, communes=(COMMUNE,), username: str = "tnv-an", lang: str = "vi",
             phone: bool = False):
        viewport = {"width": 412, "height": 860} if phone else {"width": 1100, "height": 800}
        context = browser.new_context(base_url=stack.web, viewport=viewport,
                                      locale="vi-VN" if lang == "vi" else "en-GB", timezone_id="Asia/Ho_Chi_Minh")
        context.set_default_timeout(15_000)
        if lang == "en":
            context.add_cookies([{"name": "lang", "value": "en", "url": stack.web}])
        if role is not None:
            session = json.dumps(stack.session(role, communes, username))
            context.add_init_script(f"if (!localStorage.getItem('session')) localStorage.setItem('session', {session!r});")
        context.on("console", lambda message: message.type == "error" and "Content Security Policy" in message.text
                   and blocked.append(message.text))
        contexts.append(context)
        return context

    blocked: list[str] = []
    yield make
    for context in contexts:
        context.close()
    assert not blocked, f"the page's own code was blocked by its CSP: {blocked}"


SCREENSHOTS = ROOT / "docs" / "screenshots"


def screenshot(page, name: str, full_page: bool = True) -> None:
    """With UPDATE_SCREENSHOTS=1 (`make screenshots`): docs/screenshots/<name>.png, to commit when
    pages change. Otherwise taken all the same (it must work) but kept out of the checkout."""
    folder = SCREENSHOTS if os.environ.get("UPDATE_SCREENSHOTS") else Path(os.environ.get("TMPDIR", "/tmp")) / \
        "mttq-screenshots"
    folder.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(folder / f"{name}.png"), full_page=full_page)
