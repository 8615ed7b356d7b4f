"""The HTTP access log never holds a lookup's query string (a CCCD or a phone)."""

import logging
import subprocess
import sys
import time

import httpx

from services.common.natsserver import free_port
from services.common.serve import PathOnly


def test_the_filter_keeps_the_path_and_drops_the_query():
    record = logging.LogRecord("uvicorn.access", logging.INFO, __file__, 1, '%s - "%s %s HTTP/%s" %d',
                               ("127.0.0.1:5000", "GET", "/households?cccd=001085012345", "1.1", 200), None)
    PathOnly().filter(record)
    assert "001085012345" not in record.getMessage() and "/households?" in record.getMessage()


def test_a_running_service_logs_no_cccd(tmp_path):
    port = free_port()
    env = {"DATA_DIR": str(tmp_path), "HOUSEHOLDS_PORT": str(port), "NATS_URL": "nats://127.0.0.1:1",
           "PATH": "/usr/bin:/bin"}
    service = subprocess.Popen([sys.executable, "-m", "services.households"], env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                httpx.get(f"http://127.0.0.1:{port}/households?cccd=001085012345", timeout=1)
                break
            except httpx.HTTPError:
                time.sleep(0.2)
    finally:
        service.terminate()
        output = service.communicate(timeout=20)[0]
    assert "GET /households?" in output  # the request was logged...
    assert "001085012345" not in output  # ...without the CCCD
