"""A household's receipt (biên nhận), checked offline: the entry hashes to its leaf, the leaf
is in the tree the checkpoint signs, and the checkpoint is signed by the ledger's key."""

from hashlib import sha256

import orjson

from services.ledger.audit.verify import Failure
from services.ledger.export_format import RECEIPT_FORMAT, checkpoint_signature_valid, unb64
from services.ledger.merkle import verify_consistency, verify_inclusion


def check(receipt: dict, pinned_key: bytes | None = None) -> Failure | None:
    entry = receipt.get("entry") or {}
    seq = entry.get("seq")
    try:
        if receipt.get("format") != RECEIPT_FORMAT:
            return Failure(seq, "receipt_format", "không phải biên nhận", f"not a {RECEIPT_FORMAT}")
        key = unb64(receipt["public_key"])
        if pinned_key is not None and key != pinned_key:
            return Failure(seq, "public_key", "khoá công khai khác khoá đã ghim", "receipt key differs from the pinned key")
        leaf = sha256(b"\x00" + orjson.dumps(entry, option=orjson.OPT_SORT_KEYS)).digest()
        if leaf.hex() != receipt["leaf_hash"] or receipt["leaf_index"] != seq - 1:
            return Failure(seq, "leaf_hash", "nội dung biên nhận không khớp mã băm lá",
                           "receipt entry does not match its leaf hash or index")
        cp = receipt["checkpoint"]
        if not checkpoint_signature_valid(cp, key):
            return Failure(seq, "checkpoint_signature", "chữ ký điểm kiểm không hợp lệ",
                           "checkpoint signature does not verify")
        proof = [bytes.fromhex(h) for h in receipt["inclusion_proof"]]
        if not verify_inclusion(leaf, receipt["leaf_index"], cp["tree_size"], proof, bytes.fromhex(cp["root_hash"])):
            return Failure(seq, "inclusion_proof", "bằng chứng không dẫn tới gốc đã ký",
                           "inclusion proof does not lead to the signed root")
    except (KeyError, TypeError, ValueError) as error:
        return Failure(seq, "receipt_format", f"biên nhận thiếu trường: {error}", f"malformed receipt: {error!r}")
    return None


def fetch(ledger: str, path: str, params: dict | None = None) -> dict:
    import httpx

    from services.ledger.audit.sources import SourceError

    url = ledger.rstrip("/").removesuffix("/ledger/export") + path
    try:
        response = httpx.get(url, params=params, timeout=30)
        response.raise_for_status()
    except httpx.HTTPError as error:
        raise SourceError(f"không đọc được / cannot read {url}: {error}") from error
    return response.json()


def check_consistency(old: dict, served: dict, pinned_key: bytes) -> Failure | None:
    """`old` was signed by the log's key; the served newer checkpoint too; the proof joins them."""
    new = served.get("to_checkpoint") or {}
    size = new.get("tree_size")
    key = pinned_key
    for label, cp in (("old", old), ("new", new)):
        if not checkpoint_signature_valid(cp, key):
            return Failure(cp.get("tree_size"), "checkpoint_signature", f"chữ ký điểm kiểm ({label}) không hợp lệ",
                           f"{label} checkpoint signature does not verify")
    if served.get("from") != old["tree_size"] or served.get("to") != size or size < old["tree_size"]:
        return Failure(size, "consistency_proof", "cỡ cây trong bằng chứng không khớp", "proof sizes do not match the checkpoints")
    proof = [bytes.fromhex(h) for h in served.get("proof", [])]
    if not verify_consistency(old["tree_size"], size, bytes.fromhex(old["root_hash"]), bytes.fromhex(new["root_hash"]), proof):
        return Failure(size, "consistency_proof", "sổ mới không nối tiếp điểm kiểm cũ (lịch sử đã bị viết lại)",
                       "the newer checkpoint does not extend the older one (history was rewritten)")
    return None
