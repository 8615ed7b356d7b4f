"""The compiled scanner behind `relief-audit verify` (services/ledger/audit/_fastscan.c) may only
ever accept what the Python verifier accepts, and must leave every failure for Python to name:
on any export, however damaged, both give the same outcome (the first failure, its entry and
rule, the entry count and root)."""

import shutil
import sysconfig

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.ledger.audit import sample, verify
from services.ledger.audit.sources import relief_events, whole_lines
from services.ledger.audit.verify import ReliefFacts, Verifier

WORLD = sample.World(households=24)
LINES = list(sample.export(WORLD.deliveries(reversal_every=5), sample.signing_key(), 7))
EXPORT = b"\n".join(LINES) + b"\n"
compiled_only = pytest.mark.skipif(verify._fastscan is None, reason="covered by test_the_scanner_is_built_where_it_can_be")


def outcomes(data: bytes, relief=None, chunk: int = 1 << 22, pinned=()) -> tuple[dict, dict]:
    chunks = [data[i:i + chunk] for i in range(0, len(data), chunk)]
    both = [Verifier(relief, pinned=pinned, compiled=compiled).run_chunks(chunks).as_dict()
            for compiled in (True, False)]
    return both[0], both[1]


def test_the_scanner_is_built_where_it_can_be():
    """Without it verify is right but several times slower: a machine with a C compiler and
    OpenSSL's headers (every machine this project runs CI on) must have built it."""
    compiler = (sysconfig.get_config_var("CC") or "cc").split()[0]
    if shutil.which(compiler) and (sysconfig.get_paths()["include"]):
        assert verify._fastscan is not None, "pip install -e . did not build services/ledger/audit/_fastscan"


@compiled_only
def test_a_clean_export_gives_the_same_outcome_in_any_chunking():
    for chunk in (1, 7, 100, 4096, 1 << 22):
        compiled, python = outcomes(EXPORT, chunk=chunk)
        assert compiled == python
        assert compiled["ok"] and compiled["entries"] == 32 and compiled["checkpoints"] == 5


@compiled_only
def test_relief_rules_run_on_what_the_scanner_takes(tmp_path):
    path = tmp_path / "relief.jsonl"
    stock_short = sample.World(households=24, stock_factor=0.5)
    path.write_bytes(b"\n".join(orjson.dumps(e) for e in stock_short.relief_events()) + b"\n")
    facts = ReliefFacts(relief_events(relief_file=str(path)))
    compiled, python = outcomes(EXPORT, facts)
    assert compiled == python
    assert compiled["failure"]["rule"] == "stock"


@compiled_only
def test_a_pinned_checkpoint_is_checked_where_the_scanner_stops():
    checkpoints = [orjson.loads(line) for line in LINES if line.startswith(b'{"kind":"checkpoint"')]
    tampered = checkpoints[1] | {"root_hash": "0" * 64}
    compiled, python = outcomes(EXPORT, pinned=[tampered])
    assert compiled == python
    assert compiled["failure"]["rule"] == "pinned_checkpoint"


def mutate(data: bytes, at: int, how: str, byte: int) -> bytes:
    at %= len(data)
    if how == "replace":
        return data[:at] + bytes([byte]) + data[at + 1:]
    if how == "insert":
        return data[:at] + bytes([byte]) + data[at:]
    return data[:at] + data[at + 1:]


@compiled_only
@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.integers(0, len(EXPORT)), st.sampled_from(["replace", "insert", "delete"]),
                          st.sampled_from(b'{}[]",:0123456789\\ \n\r\tazkqe\x00\x7f\xc3\xb3\xed\xa0\xf4\x90')),
                min_size=1, max_size=3),
       st.sampled_from([5, 64, 1 << 22]))
def test_any_damaged_bytes_give_the_same_outcome(changes, chunk):
    data = EXPORT
    for at, how, byte in changes:
        data = mutate(data, at, how, byte)
    compiled, python = outcomes(data, chunk=chunk)
    assert compiled == python


def entry_edits():
    fields = st.sampled_from(["seq", "kind", "entitlement_id", "household_id", "items", "cash_vnd", "unit"])
    values = st.sampled_from([1, 0, -0, 2**70, 1.0, True, None, "", "delivery", "reversal", "gói", [], {},
                              [{"item_code": "gao", "unit": "kg", "quantity": 10}], "\u2028", "\\"])
    return st.tuples(st.integers(1, len(LINES) - 1), fields, values, st.booleans())


@compiled_only
@settings(max_examples=300, deadline=None)
@given(st.lists(entry_edits(), min_size=1, max_size=3))
def test_edited_entries_with_recomputed_leaves_give_the_same_outcome(edits):
    """Edits that keep the leaf hash right (an insider re-hashing): only the rules or the signed
    roots can catch them, and both paths must agree on which and where."""
    lines = list(LINES)
    for index, name, value, drop in edits:
        record = orjson.loads(lines[index])
        if record["kind"] != "entry":
            continue
        entry = record["entry"]
        items = entry.get("items")
        target = items[0] if name == "unit" and isinstance(items, list) and items and isinstance(items[0], dict) else entry
        if drop:
            target.pop(name, None)
        else:
            target[name] = value
        try:
            body = orjson.dumps(entry, option=orjson.OPT_SORT_KEYS)
        except orjson.JSONEncodeError:
            continue
        record["leaf_hash"] = verify.sha256(b"\x00" + body).hexdigest()
        lines[index] = b'{"kind":"entry","seq":%d,"entry":%s,"leaf_hash":"%s"}' % (
            record["seq"], body, record["leaf_hash"].encode())
    compiled, python = outcomes(b"\n".join(lines) + b"\n")
    assert compiled == python


def test_chunks_are_cut_into_whole_lines():
    chunks = [b'{"a"', b":1}\n{", b'"b":2}\n', b"", b'{"c":3}']
    assert [buffer[:end] for buffer, end in whole_lines(chunks)] == [b'{"a":1}\n', b'{"b":2}\n', b'{"c":3}\n']


def respelled(line: bytes, old: bytes, new: bytes) -> bytes:
    """The entry with some bytes spelled otherwise (the same JSON value), leaf hash recomputed."""
    record = orjson.loads(line)
    body = orjson.dumps(record["entry"], option=orjson.OPT_SORT_KEYS).replace(old, new)
    leaf = verify.sha256(b"\x00" + body).hexdigest().encode()
    return b'{"kind":"entry","seq":%d,"entry":%s,"leaf_hash":"%s"}' % (record["seq"], body, leaf)


@compiled_only
def test_an_entitlement_spelled_with_escapes_is_still_the_same_entitlement():
    """JSON escapes make the same string of other bytes: a second delivery of entitlement X
    spelled \\u0058 is not a new entitlement. (Python names it at its leaf: those bytes are not
    the canonical form the leaf hash is defined over.)"""
    first = orjson.loads(LINES[1])["entry"]
    header, entry_lines = LINES[0], [line for line in LINES[1:] if line.startswith(b'{"kind":"entry"')]
    ent = first["entitlement_id"].encode()
    again = dict(first, seq=2, entitlement_id=first["entitlement_id"])
    body = orjson.dumps(again, option=orjson.OPT_SORT_KEYS)
    second = b'{"kind":"entry","seq":2,"entry":%s,"leaf_hash":"%s"}' % (body, verify.sha256(b"\x00" + body).hexdigest().encode())
    escaped = respelled(second, b'"entitlement_id":"' + ent[:1], b'"entitlement_id":"\\u%04x' % ent[0])
    compiled, python = outcomes(b"\n".join([header, entry_lines[0], escaped]) + b"\n")
    assert compiled == python
    assert compiled["failure"]["seq"] == 2 and compiled["failure"]["rule"] in ("leaf_hash", "double_delivery")
