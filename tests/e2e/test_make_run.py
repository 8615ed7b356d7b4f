"""`make run`'s entry point as a user starts it: an embedded nats-server and three service
processes. It prints how to sign in as its demo admin, and that works; a household registered
at households reaches relief over JetStream, and Ctrl-C stops everything."""

import os
import re
import signal
import subprocess
import sys
import time

import httpx
import pytest

from services.common.natsserver import free_port

pytestmark = pytest.mark.nats
HEAD = {"name": "Nguyễn Văn An", "cccd": "001085012345", "birth_year": 1985}


def eventually(check, timeout: float = 30.0, every: float = 0.2):
    deadline = time.monotonic() + timeout
    while True:
        try:
            result = check()
            if result:
                return result
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            raise AssertionError(f"not true after {timeout}s: {check.__doc__ or check}")
        time.sleep(every)


@pytest.fixture
def running(tmp_path):
    ports = {name: free_port() for name in ("NATS", "HOUSEHOLDS", "RELIEF", "LEDGER", "WEB")}
    env = {k: v for k, v in os.environ.items() if k not in ("NATS_URL", "PERSISTENCE_MODULE")}
    env |= {f"{name}_PORT": str(port) for name, port in ports.items()} | {"DATA_DIR": str(tmp_path / "var")}
    process = subprocess.Popen([sys.executable, "-m", "services.common.run"], env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    urls = {name.lower(): f"http://127.0.0.1:{port}" for name, port in ports.items() if name != "NATS"}
    try:
        for url in urls.values():
            eventually(lambda url=url: httpx.get(f"{url}/healthz").status_code == 200)
        yield urls, process, banner(process)
    finally:
        if process.poll() is None:
            process.kill()
        process.wait()


def banner(process) -> str:
    """What `make run` printed up to its "Ctrl-C to stop" line."""
    lines = []
    for line in iter(process.stdout.readline, ""):
        lines.append(line)
        if "Ctrl-C" in line:
            break
    return "".join(lines)


def sign_in_as_printed(banner: str) -> dict[str, str]:
    """Run the printed curl example (with httpx): the demo admin's token."""
    [(url, username, password)] = re.findall(r"curl -s -X POST (\S+)/auth/token -d username=(\S+) -d password=(\S+)",
                                             banner)
    signed = httpx.post(f"{url}/auth/token", data={"username": username, "password": password})
    assert signed.status_code == 200, signed.text
    assert signed.json()["user"]["role"] == "admin"
    return {"Authorization": f"Bearer {signed.json()['access_token']}"}


def test_a_registered_household_in_quarantine_reaches_relief_and_ctrl_c_stops_all(running):
    urls, process, printed = running
    assert f"{urls['households']}/auth/token" in printed
    bearer = sign_in_as_printed(printed)
    households = httpx.Client(base_url=urls["households"], headers=bearer)
    created = households.post("/households", json={
        "head": HEAD, "commune_code": "00070", "village": "Tổ dân phố 5",
        "members": [{"name": "Trần Thị Bình", "relation": "spouse", "birth_year": 1988}],
        "legal_basis": {"ground": "public_task", "reference": "Chỉ thị 16/CT-TTg"},
    })
    assert created.status_code == 201, created.text
    household_id = created.json()["id"]
    started = households.post(f"/households/{household_id}/quarantines", json={
        "kind": "f1_home_quarantine", "decision_number": "123/QĐ-UBND",
        "starts_on": "2021-07-20", "expected_end_on": "2021-08-03"})
    assert started.status_code == 201, started.text

    relief = httpx.Client(base_url=urls["relief"], headers=bearer)  # relief trusts households' tokens

    def relief_sees_quarantine():
        response = relief.get(f"/eligibility/households/{household_id}")
        return response.status_code == 200 and response.json()["quarantine_episodes"] and response.json()

    seen = eventually(relief_sees_quarantine)
    assert seen["commune_code"] == "00070" and seen["member_count"] == 2
    assert "Nguyễn" not in str(seen) and HEAD["cccd"] not in str(seen)  # nothing personal reached relief

    process.send_signal(signal.SIGINT)
    assert process.wait(timeout=30) == 0
    output = printed + process.stdout.read()
    for url in urls.values():
        assert url in output  # make run printed where each service listens
        with pytest.raises(httpx.ConnectError):
            httpx.get(f"{url}/healthz")
