"""`make run`: an embedded nats-server (unless NATS_URL is set) and the three services.

Ctrl-C stops everything. Ports: NATS_PORT (4222), HOUSEHOLDS_PORT (8001),
RELIEF_PORT (8002), LEDGER_PORT (8003); data under DATA_DIR (var/).

A store without an admin gets one (`admin`, random password kept in DATA_DIR/demo-admin.txt),
and every start prints how to sign in with it.
"""

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx

from services.common.natsserver import NatsServer
from services.common.settings import Settings

SERVICES = ("households", "relief", "ledger", "web")
DEMO_ADMIN_FILE = "demo-admin.txt"


def start_services(env: dict[str, str]) -> dict[str, subprocess.Popen]:
    return {
        name: subprocess.Popen([sys.executable, "-m", f"services.{name}"], env=env)
        for name in SERVICES
    }


def wait_healthy(urls: dict[str, str], stop: threading.Event, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    pending = dict(urls)
    while pending and time.monotonic() < deadline and not stop.is_set():
        for name, url in list(pending.items()):
            try:
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    pending.pop(name)
            except httpx.HTTPError:
                pass
        stop.wait(0.3)
    if pending:
        print(f"Chưa sẵn sàng / not ready yet: {', '.join(pending)}", file=sys.stderr)


def main() -> None:
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    env = dict(os.environ)
    data_dir = Path(env.setdefault("DATA_DIR", "var"))
    nats, processes = None, {}
    try:
        if "NATS_URL" not in env:
            nats = NatsServer(data_dir / "nats", port=int(env.get("NATS_PORT", 4222))).start()
            env["NATS_URL"] = nats.url
        login = demo_admin(env)
        processes = start_services(env)
        urls = {name: f"http://127.0.0.1:{Settings.from_env(name, env).port}" for name in SERVICES}
        wait_healthy(urls, stop)
        print(f"NATS        {env['NATS_URL']}")
        for name, url in urls.items():
            print(f"{name:<11} {url}   (API docs: {url}/docs)")
        if login is not None:
            print_login(urls["households"], *login, data_dir / DEMO_ADMIN_FILE)
        else:
            print(f"Đăng nhập / sign in: POST {urls['households']}/auth/token (accounts: relief-admin users list)")
        print("Ctrl-C để dừng / to stop.", flush=True)
        while not stop.wait(0.5):
            if any(p.poll() is not None for p in processes.values()):
                print("A service exited; stopping.", file=sys.stderr)
                sys.exit(1)
    finally:
        stop_all(processes.values())
        if nats is not None:
            nats.stop()


def demo_admin(env: dict[str, str]) -> tuple[str, str] | None:
    """The demo admin's (username, password): made on a store with no admin, else remembered."""
    from services.households.application import Households  # the store is households'
    from services.households.users import ensure_demo_admin

    settings = Settings.from_env("households", env)
    app = Households(settings)
    try:
        return ensure_demo_admin(app, settings.data_dir / DEMO_ADMIN_FILE)
    finally:
        app.close()


def print_login(url: str, username: str, password: str, remembered: Path) -> None:
    print(f"Đăng nhập / sign in: {username} / {password}   (lưu trong / kept in {remembered})")
    print(f"  curl -s -X POST {url}/auth/token -d username={username} -d password={password}")
    print('  then: curl -H "Authorization: Bearer <access_token>" ' f"{url}/households")


def stop_all(processes) -> None:
    for process in processes:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    for process in processes:
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()


if __name__ == "__main__":
    main()
