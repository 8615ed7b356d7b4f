"""relief-audit verify, through its CLI: a clean export passes; every tampering and every broken
rule fails with exit 1 and names the first bad entry and the rule, in the stable format
`FAIL seq=<n> rule=<rule> | <vi> | <en>`."""

import re

import orjson
import pytest
from typer.testing import CliRunner

from services.ledger.audit import sample, verify
from services.ledger.audit.cli import app
from services.ledger.export_format import b64

KEY = sample.signing_key()
HOUSEHOLDS, EVERY = 60, 16  # 60 deliveries, 6 reversed and delivered again: 72 entries


@pytest.fixture(autouse=True, params=["compiled", "python"] if verify._fastscan else ["python"])
def scanner(request, monkeypatch):
    """Every test runs on both paths: the compiled scanner must accept exactly what Python does,
    and leave every failure for Python to name."""
    if request.param == "python":
        monkeypatch.setattr(verify, "_fastscan", None)
    return request.param


def world(**kw) -> sample.World:
    return sample.World(households=HOUSEHOLDS, **kw)


def lines(entries=None, key=KEY) -> list[bytes]:
    entries = list(world().deliveries(reversal_every=10)) if entries is None else entries
    return list(sample.export(entries, key, EVERY))


def run(tmp_path, export_lines, *args, relief=None):
    path = tmp_path / "export.jsonl"
    path.write_bytes(b"\n".join(export_lines) + b"\n")
    argv = ["verify", "--source", str(path), "--no-progress", *args]
    if relief is not None:
        (tmp_path / "relief.jsonl").write_bytes(b"\n".join(orjson.dumps(e) for e in relief) + b"\n")
        argv += ["--relief-events", str(tmp_path / "relief.jsonl")]
    result = CliRunner().invoke(app, argv)
    return result.exit_code, result.output


def failed(outcome) -> tuple[int, str]:
    code, output = outcome
    assert code == 1, output
    match = re.search(r"^FAIL seq=(\S+) rule=(\S+) \| .+ \| .+$", output, re.M)
    assert match, output
    return (int(match[1]) if match[1] != "-" else None), match[2]


def index_of(export_lines, kind, **fields) -> int:
    for i, line in enumerate(export_lines):
        record = orjson.loads(line)
        if record["kind"] == kind and all(record.get(k) == v for k, v in fields.items()):
            return i
    raise LookupError(fields)


def test_a_clean_export_passes_with_and_without_relief_events(tmp_path):
    code, output = run(tmp_path, lines(), relief=world().relief_events())
    assert code == 0, output
    assert output.startswith("OK entries=72 checkpoints=5 root=")
    code, output = run(tmp_path, lines(), "--public-key", b64(sample.public_raw(KEY)))
    assert code == 0, output



def test_an_export_rewritten_by_a_json_tool_still_verifies(tmp_path):
    """Entries re-serialised with other key order and spacing are the same entries: the leaf is
    the hash of their canonical form, whatever bytes carry them."""
    def rewrite(line: bytes) -> bytes:
        record = orjson.loads(line)
        if record["kind"] == "entry":
            record["entry"] = dict(reversed(record["entry"].items()))
        return orjson.dumps(record, option=orjson.OPT_INDENT_2).replace(b"\n", b"")

    rewritten = [rewrite(line) for line in lines()]
    assert rewritten[1] != lines()[1]
    code, output = run(tmp_path, rewritten, relief=world().relief_events())
    assert code == 0, output
    assert output.startswith("OK entries=72 checkpoints=5 root=")


def test_one_changed_byte_in_a_stored_entry_names_it(tmp_path):
    export = lines()
    i = index_of(export, "entry", seq=20)
    assert export[i].count(b'"quantity":10') == 1
    export[i] = export[i].replace(b'"quantity":10', b'"quantity":19')
    assert failed(run(tmp_path, export)) == (20, "leaf_hash")


def test_a_changed_entry_with_a_recomputed_leaf_hash_fails_at_the_checkpoint_covering_it(tmp_path):
    entries = list(world().deliveries(reversal_every=10))
    forged = lines(entries[:19] + [{**entries[19], "cash_vnd": 1}] + entries[20:])
    honest = lines(entries)
    export = honest[:index_of(honest, "entry", seq=20)] + [forged[index_of(forged, "entry", seq=20)]] + \
        honest[index_of(honest, "entry", seq=20) + 1:]
    assert failed(run(tmp_path, export)) == (32, "checkpoint_root")


def test_a_dropped_entry_is_named(tmp_path):
    export = lines()
    del export[index_of(export, "entry", seq=20)]
    assert failed(run(tmp_path, export)) == (20, "seq")


def test_two_reordered_entries_are_named(tmp_path):
    export = lines()
    i, j = index_of(export, "entry", seq=20), index_of(export, "entry", seq=21)
    export[i], export[j] = export[j], export[i]
    assert failed(run(tmp_path, export)) == (20, "seq")


def test_swapped_checkpoints_are_named(tmp_path):
    export = lines()
    i, j = index_of(export, "checkpoint", tree_size=16), index_of(export, "checkpoint", tree_size=32)
    export[i], export[j] = export[j], export[i]
    assert failed(run(tmp_path, export)) == (32, "checkpoint_position")


def test_an_altered_checkpoint_root_or_signature_is_named(tmp_path):
    export = lines()
    i = index_of(export, "checkpoint", tree_size=48)
    cp = orjson.loads(export[i])
    for forged in ({**cp, "root_hash": "0" * 64},
                   {**cp, "signature": b64(KEY.sign(b"something else"))},
                   {"kind": "checkpoint", **sample.checkpoint(sample.signing_key("mallory"), 48,
                                                              bytes.fromhex(cp["root_hash"]), sample.START)}):
        assert failed(run(tmp_path, export[:i] + [orjson.dumps(forged)] + export[i + 1:])) == (48, "checkpoint_signature")


def test_a_checkpoint_signed_over_the_wrong_root_is_named(tmp_path):
    export = lines()
    i = index_of(export, "checkpoint", tree_size=48)
    forged = sample.checkpoint(KEY, 48, bytes(32), sample.START)
    assert failed(run(tmp_path, export[:i] + [orjson.dumps({"kind": "checkpoint", **forged})] + export[i + 1:])) == \
        (48, "checkpoint_root")


def test_a_log_re_signed_with_another_key_fails_against_the_pinned_key(tmp_path):
    export = lines(key=sample.signing_key("mallory"))
    assert run(tmp_path, export)[0] == 0  # self-consistent, which is why an auditor pins the key
    assert failed(run(tmp_path, export, "--public-key", b64(sample.public_raw(KEY)))) == (None, "public_key")


def test_history_rewritten_by_the_key_holder_fails_against_a_checkpoint_seen_earlier(tmp_path):
    honest = lines()
    seen = orjson.loads(honest[index_of(honest, "checkpoint", tree_size=32)])
    (tmp_path / "seen.json").write_bytes(orjson.dumps(seen))
    entries = list(world().deliveries(reversal_every=10))
    rewritten = lines(entries[:4] + [{**entries[4], "cash_vnd": 0}] + entries[5:])
    assert run(tmp_path, rewritten)[0] == 0
    assert failed(run(tmp_path, rewritten, "--checkpoint", str(tmp_path / "seen.json"))) == (32, "pinned_checkpoint")
    assert run(tmp_path, honest, "--checkpoint", str(tmp_path / "seen.json"))[0] == 0
    assert failed(run(tmp_path, honest[:30], "--checkpoint", str(tmp_path / "seen.json"))) == (32, "pinned_checkpoint")


# --- business rules: the export is honestly hashed and signed, the deliveries are wrong ---

def deliveries() -> list[dict]:
    return list(world().deliveries())


def test_a_double_delivery_is_named(tmp_path):
    entries = deliveries()
    entries.insert(30, {**entries[3], "volunteer_id": "tnv-x"})
    assert failed(run(tmp_path, lines(entries))) == (31, "double_delivery")


def test_a_delivery_without_an_issued_entitlement_is_named(tmp_path):
    relief = [e for e in world().relief_events() if e["data"].get("household_id") != sample.uid("household", 41)]
    assert failed(run(tmp_path, lines(deliveries()), relief=relief)) == (42, "unknown_entitlement")


def test_more_than_the_entitlement_is_named(tmp_path):
    entries = deliveries()
    entries[9] = {**entries[9], "items": [{**entries[9]["items"][0], "quantity": 11}, entries[9]["items"][1]]}
    assert failed(run(tmp_path, lines(entries), relief=world().relief_events())) == (10, "over_entitlement")
    entries = deliveries()
    entries[9] = {**entries[9], "cash_vnd": 500_001}
    assert failed(run(tmp_path, lines(entries), relief=world().relief_events())) == (10, "over_entitlement")


def test_an_earmarked_gift_delivered_to_another_household_is_named(tmp_path):
    w = world()
    relief = w.relief_events()
    gift = {"type": "DonationReceived", "data": {**relief[0]["data"], "source_id": sample.uid("donation", 2),
                                                 "receipt_number": 2, "goods": [], "cash_vnd": 500_000,
                                                 "earmark": {"household_id": sample.uid("household", 99)}}}
    relief[1 + 25]["data"] = {**relief[1 + 25]["data"], "earmarked_donation_id": sample.uid("donation", 2)}
    assert failed(run(tmp_path, lines(list(w.deliveries())), relief=relief + [gift])) == (26, "earmark")


def test_totals_beyond_the_stock_received_are_named(tmp_path):
    short = world(stock_factor=0.5)  # stock for 30 packages, 60 issued
    assert failed(run(tmp_path, lines(list(short.deliveries())), relief=short.relief_events())) == (31, "stock")


def test_reversing_an_entry_twice_is_named(tmp_path):
    entries = list(world().deliveries(reversal_every=10))  # entries 10 (delivery), 11 (its reversal), 12 (again)
    entries.append({**entries[10], "reverses_seq": 10})
    assert failed(run(tmp_path, lines(entries))) == (73, "reversal_target")


@pytest.mark.parametrize("text", [b"not json", b'{"kind":"entry"}'])
def test_garbage_lines_are_named(tmp_path, text):
    export = lines()
    export.insert(5, text)
    assert failed(run(tmp_path, export))[0] == 5


def test_an_unreadable_source_exits_2(tmp_path):
    result = CliRunner().invoke(app, ["verify", "--source", str(tmp_path / "missing.jsonl")])
    assert result.exit_code == 2


def test_a_bad_relief_events_file_exits_2_naming_the_line(tmp_path):
    relief = world().relief_events()
    relief[3] = {"type": "EntitlementIssued", "data": {"round_id": "not a uuid"}}
    code, output = run(tmp_path, lines(), relief=relief)
    assert code == 2 and "relief.jsonl:4" in output


def test_json_outcome(tmp_path):
    export = lines()
    del export[index_of(export, "entry", seq=7)]
    code, output = run(tmp_path, export, "--json")
    outcome = orjson.loads(output)
    assert code == 1 and outcome["ok"] is False and outcome["failure"]["seq"] == 7 and outcome["failure"]["rule"] == "seq"


def test_a_delivery_after_its_entitlement_was_cancelled_is_named_unless_reissued(tmp_path):
    relief = world().relief_events()
    target = relief[1 + 20]["data"]
    cancel = {"type": "EntitlementCancelled", "data": {
        "event_id": sample.uid("ev", "cancel"), "occurred_at": "2021-07-19T00:00:00Z", "source_id": target["source_id"],
        "source_version": 2, "round_id": target["round_id"], "household_id": target["household_id"],
        "reason": "no_longer_eligible"}}
    assert failed(run(tmp_path, lines(deliveries()), relief=relief + [cancel])) == (21, "cancelled_entitlement")
    reissued = {"type": "EntitlementIssued", "data": {**target, "source_version": 3}}
    assert run(tmp_path, lines(deliveries()), relief=[reissued] + relief + [cancel])[0] == 0
