"""Bad input against each service's OpenAPI (schemathesis, apps in-process over ASGI, SQLite,
NATS unreachable on purpose): no operation answers 5xx, signed in as an admin so every check
behind the sign-in is reached. Without a token, relief's and the ledger's private operations
answer 401 (the public ones, whatever they answer, never 5xx). Bounded: MAX_EXAMPLES per
operation. The number of cases run is written to the test log at the end of the module."""

import logging
import shutil
import tempfile
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.python.asgi import shutdown_lifespans

from services.common.settings import Settings
from services.households.main import create as create_households
from services.ledger.main import create as create_ledger
from services.relief.main import create as create_relief
from tests.signin import signed_in
from tests.unit.test_ledger_helpers import config

MAX_EXAMPLES = 100
SIGNED_OUT_EXAMPLES = 10
DATA = Path(tempfile.mkdtemp(prefix="schemathesis-"))
ENV = {"DATA_DIR": str(DATA), "NATS_URL": "nats://127.0.0.1:1"}
ADMIN = signed_in(Settings.from_env("relief", ENV))  # the three services share DATA_DIR, so one key ring
APPS = {
    "households": create_households(Settings.from_env("households", ENV)),
    "relief": create_relief(Settings.from_env("relief", ENV)),
    "ledger": create_ledger(Settings.from_env("ledger", ENV), config()),
}
cases_run: dict[str, int] = {}


@pytest.fixture(scope="module", autouse=True)
def report_cases(request):
    yield
    shutdown_lifespans()
    line = f"schemathesis cases run: {sum(cases_run.values())} ({cases_run})"
    logging.getLogger(__name__).warning(line)
    with request.config.pluginmanager.get_plugin("capturemanager").global_and_fixture_disabled():
        print(f"\n{line}")
    shutil.rmtree(DATA, ignore_errors=True)


SCHEMAS = {name: schemathesis.openapi.from_asgi("/openapi.json", app) for name, app in APPS.items()}


def not_ready(case, response) -> bool:
    """/healthz's answer while NATS is away, as here: readiness, not a fault."""
    return case.operation.path == "/healthz" and response.status_code == 503


def unreadable_body(response) -> bool:
    """FastAPI refuses a body it cannot parse at all (400, or 422 "json_invalid") before any
    dependency runs, the sign-in check too: nothing was read or stored."""
    if response.status_code == 400:
        return response.json().get("detail") == "There was an error parsing the body"
    if response.status_code != 422:
        return False
    errors = response.json().get("detail") or [{}]
    return all(e.get("type") == "json_invalid" for e in errors)


def service_of(case) -> str:
    return next(name for name, app in APPS.items() if app is case.operation.app)


@schemathesis.pytest.parametrize(**SCHEMAS)
@settings(max_examples=SIGNED_OUT_EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck),
          derandomize=True)
def test_without_a_token_private_operations_answer_401(case):
    service = service_of(case)
    cases_run[service] = cases_run.get(service, 0) + 1
    case.headers = {k: v for k, v in (case.headers or {}).items() if k.lower() != "authorization"}
    response = case.call()
    if not_ready(case, response):
        return
    assert response.status_code < 500, f"{case.operation.label}: {response.status_code} {response.text[:500]}"
    private = bool(case.operation.definition.raw.get("security"))
    as_documented = case.method.upper() == case.operation.method.upper()  # not a probe with another method
    if private and as_documented and service in ("relief", "ledger") and not unreadable_body(response):
        # households' own rules are tested with households
        assert response.status_code == 401, f"{case.operation.label}: {response.status_code} {response.text[:300]}"


@schemathesis.pytest.parametrize(**SCHEMAS)
@settings(max_examples=MAX_EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
def test_no_operation_answers_5xx(case):
    service = service_of(case)
    cases_run[service] = cases_run.get(service, 0) + 1
    response = case.call(headers=ADMIN)
    if not_ready(case, response):
        return
    assert response.status_code < 500, f"{case.operation.label}: {response.status_code} {response.text[:500]}\n" \
                                       f"{case.as_curl_command()}"
