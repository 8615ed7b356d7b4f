"""relief-audit verify-receipt: one household checks its receipt offline."""

import orjson
import pytest
from typer.testing import CliRunner

from services.ledger.audit import sample
from services.ledger.audit.cli import app
from services.ledger.export_format import RECEIPT_FORMAT, Receipt, b64
from services.ledger.merkle import MerkleTree

KEY = sample.signing_key()


@pytest.fixture(scope="module")
def receipt() -> dict:
    tree = MerkleTree()
    export = [orjson.loads(line) for line in sample.export(sample.World(households=37).deliveries(), KEY, 10, tree)]
    entry = next(r["entry"] for r in export if r["kind"] == "entry" and r["seq"] == 23)
    last = {k: v for k, v in export[-1].items() if k != "kind"}
    data = {"format": RECEIPT_FORMAT, "entry": entry, "leaf_hash": tree.levels[0][22].hex(), "leaf_index": 22,
            "inclusion_proof": [h.hex() for h in tree.inclusion_proof(22, last["tree_size"])],
            "checkpoint": last, "public_key": b64(sample.public_raw(KEY))}
    Receipt.model_validate(data)  # the ledger's own schema
    return data


def check(tmp_path, data, *args):
    path = tmp_path / "receipt.json"
    path.write_bytes(orjson.dumps(data))
    result = CliRunner().invoke(app, ["verify-receipt", str(path), *args])
    return result.exit_code, result.output


def test_a_good_receipt_passes(tmp_path, receipt):
    code, output = check(tmp_path, receipt, "--public-key", receipt["public_key"])
    assert code == 0 and output.startswith("OK seq=23 tree_size=37"), output


@pytest.mark.parametrize("tamper,rule", [
    (lambda r: r["entry"].update(cash_vnd=900_000), "leaf_hash"),
    (lambda r: r.update(leaf_index=21), "leaf_hash"),
    (lambda r: r["inclusion_proof"].__setitem__(1, "00" * 32), "inclusion_proof"),
    (lambda r: r["inclusion_proof"].pop(), "inclusion_proof"),
    (lambda r: r["checkpoint"].update(root_hash="11" * 32), "checkpoint_signature"),
    (lambda r: r["checkpoint"].update(tree_size=36), "checkpoint_signature"),
    (lambda r: r.update(public_key=b64(sample.public_raw(sample.signing_key("mallory")))), "checkpoint_signature"),
])
def test_a_tampered_receipt_fails(tmp_path, receipt, tamper, rule):
    data = orjson.loads(orjson.dumps(receipt))
    tamper(data)
    code, output = check(tmp_path, data)
    assert code == 1 and output.startswith(f"FAIL seq=23 rule={rule} |"), output


def test_a_receipt_signed_by_another_key_fails_against_the_pinned_key(tmp_path, receipt):
    code, output = check(tmp_path, receipt, "--public-key", b64(sample.public_raw(sample.signing_key("x"))))
    assert code == 1 and "rule=public_key" in output
