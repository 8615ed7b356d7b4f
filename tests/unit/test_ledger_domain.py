"""The ledger's rules and public format, without a store."""

import base64
import uuid

import orjson
import pytest
from pydantic import TypeAdapter

from services.common.errors import Invalid
from services.ledger import export_format as fmt
from services.ledger.domain import AlreadyServed, Entitlement, EntitlementClosed, NotReversible, check_within
from services.ledger.keys import SigningKey
from tests.unit.test_ledger_helpers import NOODLES, RICE, TEST_KEY


def entitlement() -> Entitlement:
    return Entitlement(entitlement_id=uuid.uuid4(), source_version=1, round_id=uuid.uuid4(),
                       household_id=uuid.uuid4(), commune_code="26734", items=[RICE, NOODLES], cash_vnd=500_000,
                       earmarked_donation_id=None)


def delivery(seq=1, **kw) -> dict:
    return {"seq": seq, "volunteer_id": "tnv-07", "device_id": "phone-3", "delivered_at": "2021-07-20T08:00:00.000000Z",
            "recorded_at": "2021-07-20T08:00:01.000000Z", "items": [RICE], "cash_vnd": 0, "evidence_hash": None, **kw}


@pytest.mark.parametrize("items, cash, field", [
    ([{**RICE, "quantity": 11}], 0, "items.0.quantity"),
    ([RICE, {**NOODLES, "quantity": 31}], 0, "items.1.quantity"),
    ([{"item_code": "milk", "unit": "hop", "quantity": 1}], 0, "items.0.item_code"),
    ([{**RICE, "unit": "bao"}], 0, "items.0.unit"),
    ([RICE, RICE], 0, "items.1.item_code"),
    ([], 500_001, "cash_vnd"),
    ([], 0, "items"),
])
def test_beyond_the_entitlement_is_refused_naming_the_field(items, cash, field):
    with pytest.raises(Invalid) as refused:
        check_within([RICE, NOODLES], 500_000, items, cash)
    assert refused.value.field == field


def test_part_of_the_package_is_allowed():
    check_within([RICE, NOODLES], 500_000, [{**RICE, "quantity": 5}], 100_000)


def test_served_once_then_reversal_reopens():
    e = entitlement()
    e.check_delivery([RICE], 0)
    e.deliver(delivery())
    with pytest.raises(AlreadyServed) as second:
        e.check_delivery([RICE], 0)
    assert second.value.details["seq"] == 1
    assert second.value.details["served_by"] == {"volunteer_id": "tnv-07", "device_id": "phone-3"}
    with pytest.raises(NotReversible):
        e.check_reversal(7)
    e.check_reversal(1)
    e.reverse(2, 1, "recorded_in_error", "staff-1")
    e.check_delivery([RICE], 0)  # open again
    with pytest.raises(NotReversible):
        e.check_reversal(1)


def test_cancelled_entitlement_takes_no_delivery():
    e = entitlement()
    e.cancel(2, "issued_in_error")
    with pytest.raises(EntitlementClosed):
        e.check_delivery([RICE], 0)


def test_canonical_bytes_are_compact_sorted_utf8():
    entry = {"kind": "delivery", "volunteer_id": "Nguyễn", "items": [{"unit": "kg", "item_code": "rice", "quantity": 1}]}
    assert fmt.canonical(entry) == ('{"items":[{"item_code":"rice","quantity":1,"unit":"kg"}],'
                                    '"kind":"delivery","volunteer_id":"Nguyễn"}').encode()


def test_checkpoint_signature_and_key_id():
    key = SigningKey.load(TEST_KEY, None)
    cp = {"tree_size": 3, "root_hash": "ab" * 32, "timestamp": "2021-07-20T08:00:00.000000Z", "key_id": key.key_id}
    assert fmt.checkpoint_message(cp) == f"mttq-relief-ledger/v1\n3\n{'ab' * 32}\n2021-07-20T08:00:00.000000Z\n".encode()
    cp["signature"] = key.sign(fmt.checkpoint_message(cp))
    fmt.Checkpoint.model_validate(cp)
    assert fmt.checkpoint_signature_valid(cp, key.public_raw)
    assert not fmt.checkpoint_signature_valid({**cp, "tree_size": 4}, key.public_raw)
    assert key.key_id == fmt.key_id(base64.b64decode(key.public_key))


def test_key_file_is_made_once_and_kept(tmp_path):
    first = SigningKey.load(None, tmp_path)
    assert (tmp_path / "signing-key").stat().st_mode & 0o777 == 0o600
    assert SigningKey.load(None, tmp_path).public_key == first.public_key


def test_iso_utc_is_one_spelling():
    from datetime import datetime, timedelta, timezone
    moment = datetime(2021, 7, 20, 15, 0, tzinfo=timezone(timedelta(hours=7)))
    assert fmt.iso_utc(moment) == "2021-07-20T08:00:00.000000Z"
    with pytest.raises(ValueError):
        fmt.iso_utc(datetime(2021, 7, 20))


def test_export_lines_parse_with_the_public_shapes():
    line = orjson.loads('{"kind":"header","format":"mttq-relief-ledger/v1","public_key":"x","key_id":"0011223344556677"}')
    assert TypeAdapter(fmt.ExportLine).validate_python(line).kind == "header"
