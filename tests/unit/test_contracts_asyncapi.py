"""The AsyncAPI document is generated from what the services declare."""

import json
import subprocess
import sys
from pathlib import Path

from contracts import households
from contracts.base import ContractEvent
from services.common.asyncapi import declaration, document, main, stream_of

ROOT = Path(__file__).resolve().parents[2]
HOUSEHOLD_EVENTS = [v for v in vars(households).values()
                    if isinstance(v, type) and issubclass(v, ContractEvent) and v is not ContractEvent]


def operations(doc: dict, action: str) -> dict[str, str]:
    """operation name -> subject, for one action (send / receive)."""
    return {name: doc["channels"][name]["address"] for name, op in doc["operations"].items()
            if op["action"] == action}


def test_document_lists_every_households_subject():
    doc = document().to_jsonable()
    assert doc["asyncapi"] == "3.0.0"
    sent = operations(doc, "send")
    for cls in HOUSEHOLD_EVENTS:
        assert f"households:publishes:{cls.type_name()}" in sent, cls
        assert sent[f"households:publishes:{cls.type_name()}"] == cls.subject


def test_relief_consumes_what_its_runtime_subscribes_to():
    doc = document().to_jsonable()
    received = {subject for name, subject in operations(doc, "receive").items() if name.startswith("relief:")}
    subscriptions = declaration("relief").subscriptions
    assert [s.durable for s in subscriptions] == ["relief-households", "relief-ledger"]
    assert received == {cls.subject for s in subscriptions for cls in s.handlers}
    assert {cls.subject for cls in HOUSEHOLD_EVENTS} <= received


def test_payloads_are_the_contract_models():
    doc = document().to_jsonable()
    schemas = doc["components"]["schemas"]
    for cls in HOUSEHOLD_EVENTS:
        assert set(schemas[cls.type_name()]["properties"]) == set(cls.model_fields)
        assert set(schemas[cls.type_name()]["required"]) == set(cls.model_json_schema()["required"])
    for message in doc["components"]["messages"].values():
        assert message["payload"]["$ref"].removeprefix("#/components/schemas/") in schemas


def test_every_published_subject_has_a_stream():
    for service in ("households", "relief", "ledger"):
        for cls in declaration(service).publishes:
            assert stream_of(cls.subject)


def test_cli_writes_a_stable_json_file(tmp_path):
    out = tmp_path / "docs" / "asyncapi.json"
    assert main(["--out", str(out)]) == 0
    first = out.read_text()
    assert json.loads(first)["info"]["title"]
    done = subprocess.run([sys.executable, "-m", "services.common.asyncapi"], cwd=ROOT,
                          capture_output=True, text=True, check=True)
    assert done.stdout == first
