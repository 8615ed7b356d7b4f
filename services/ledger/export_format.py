"""The ledger's public format: entries, checkpoints, the export and receipts (mttq-relief-ledger/v1).

Everything here is what an outsider needs to check the ledger without our code:

- canonical entry bytes = orjson.dumps(entry, option=OPT_SORT_KEYS): compact JSON, keys sorted at
  every level, UTF-8; leaf hash = SHA-256(0x00 || canonical bytes); the tree is RFC 6962's.
- a checkpoint signs, with Ed25519, the UTF-8 message
  "mttq-relief-ledger/v1\\n{tree_size}\\n{root_hash}\\n{timestamp}\\n";
  key_id = hex of the first 8 bytes of SHA-256(raw 32-byte public key).
- the export is JSON lines: a header, then entries and checkpoints in log order (a checkpoint
  line follows the entry that completes its tree_size; tree sizes only grow).
- a receipt is one entry, its inclusion proof and the signed checkpoint it is proven against.

Entries hold ids, codes, quantities and times only: no names, ID numbers or health data.
A reversal repeats the reversed delivery's fields (so totals net without looking back) and adds
reverses_seq, reason and reversed_by; its recorded_at is when the reversal was recorded.
"""

import base64
import hashlib
from datetime import datetime, timezone
from typing import Annotated, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field

FORMAT = "mttq-relief-ledger/v1"
RECEIPT_FORMAT = f"{FORMAT}/receipt"

Hex32 = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]
Timestamp = Annotated[str, Field(pattern=r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$",
                                 description="UTC, microseconds, 'Z': see iso_utc()")]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Item(_Strict):
    item_code: str
    unit: str
    quantity: int = Field(ge=0)


class DeliveryEntry(_Strict):
    kind: Literal["delivery"] = "delivery"
    seq: int = Field(ge=1)
    entitlement_id: str
    round_id: str
    household_id: str
    commune_code: str = Field(pattern=r"^\d{5}$")
    items: list[Item]
    cash_vnd: int = Field(ge=0)
    volunteer_id: str
    device_id: str
    delivered_at: Timestamp
    evidence_hash: str | None = Field(None, pattern=r"^[0-9a-f]{16,128}$")
    recorded_at: Timestamp


class ReversalEntry(DeliveryEntry):
    kind: Literal["reversal"] = "reversal"  # type: ignore[assignment]
    reverses_seq: int = Field(ge=1)
    reason: str
    reversed_by: str


Entry = Annotated[DeliveryEntry | ReversalEntry, Field(discriminator="kind")]


class Checkpoint(_Strict):
    tree_size: int = Field(ge=0)
    root_hash: Hex32
    timestamp: Timestamp
    key_id: str = Field(pattern=r"^[0-9a-f]{16}$")
    signature: str = Field(description="base64 Ed25519 signature of checkpoint_message()")


class HeaderLine(_Strict):
    kind: Literal["header"] = "header"
    format: Literal["mttq-relief-ledger/v1"] = FORMAT
    public_key: str = Field(description="base64 of the raw 32-byte Ed25519 public key")
    key_id: str


class EntryLine(_Strict):
    kind: Literal["entry"] = "entry"
    seq: int = Field(ge=1)
    entry: Entry
    leaf_hash: Hex32


class CheckpointLine(Checkpoint):
    kind: Literal["checkpoint"] = "checkpoint"


ExportLine = Annotated[HeaderLine | EntryLine | CheckpointLine, Field(discriminator="kind")]


class Receipt(_Strict):
    format: Literal["mttq-relief-ledger/v1/receipt"] = RECEIPT_FORMAT
    entry: Entry
    leaf_hash: Hex32
    leaf_index: int = Field(ge=0, description="seq - 1")
    inclusion_proof: list[Hex32]
    checkpoint: Checkpoint
    public_key: str


def canonical(entry: dict) -> bytes:
    """The bytes a leaf hashes: compact JSON, keys sorted, UTF-8."""
    return orjson.dumps(entry, option=orjson.OPT_SORT_KEYS)


def entry_leaf_hash(entry: dict) -> str:
    return hashlib.sha256(b"\x00" + canonical(entry)).hexdigest()


def checkpoint_message(checkpoint: dict | Checkpoint) -> bytes:
    cp = checkpoint.model_dump() if isinstance(checkpoint, BaseModel) else checkpoint
    return f"{FORMAT}\n{cp['tree_size']}\n{cp['root_hash']}\n{cp['timestamp']}\n".encode()


def key_id(public_key_raw: bytes) -> str:
    return hashlib.sha256(public_key_raw).digest()[:8].hex()


def iso_utc(moment: datetime) -> str:
    """The one timestamp spelling in entries and checkpoints: 2021-07-20T08:00:00.000000Z."""
    if moment.tzinfo is None:
        raise ValueError("a naive datetime has no place in the ledger")
    utc = moment.astimezone(timezone.utc)
    if utc.year < 1000:  # strftime does not pad the year; isoformat would: keep the old spelling
        return utc.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return utc.replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"  # same text, faster


def b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def unb64(text: str) -> bytes:
    return base64.b64decode(text, validate=True)


def checkpoint_signature_valid(checkpoint: dict | Checkpoint, public_key_raw: bytes) -> bool:
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    cp = checkpoint.model_dump() if isinstance(checkpoint, BaseModel) else checkpoint
    if cp.get("key_id") != key_id(public_key_raw):
        return False
    try:
        Ed25519PublicKey.from_public_bytes(public_key_raw).verify(unb64(cp["signature"]),
                                                                  checkpoint_message(cp))
    except (InvalidSignature, ValueError):
        return False
    return True
