"""A synthetic but realistic ledger, for tests, the benchmark and demos: relief's events
(donations, entitlements) and the ledger's signed export, written with a key we hold.
No personal data, as in the real thing: ids and codes only."""

import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from hashlib import sha256

import orjson
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from services.ledger.export_format import FORMAT, b64, checkpoint_message, iso_utc, key_id
from services.ledger.merkle import CompactRange, MerkleTree

NS = uuid.UUID("6f1c3a52-8d0e-4e59-9a53-4b1f2f0c7e11")
START = datetime(2021, 7, 20, 8, 0, tzinfo=timezone.utc)
PACKAGE = [{"item_code": "gao", "unit": "kg", "quantity": 10}, {"item_code": "mi_goi", "unit": "gói", "quantity": 30}]


def uid(*parts) -> str:
    return str(uuid.uuid5(NS, ":".join(map(str, parts))))


@dataclass
class World:
    households: int
    communes: tuple[str, ...] = ("26734", "26737", "26740")
    villages: int = 3
    campaign_id: str = uid("campaign")
    round_id: str = uid("round", 1)
    stock_factor: float = 1.0
    entitlements: list[dict] = field(default_factory=list)

    def __post_init__(self) -> None:
        for n in range(self.households):
            household = uid("household", n)
            commune = self.communes[n % len(self.communes)]
            self.entitlements.append({
                "event_id": uid("ev", "ent", n), "occurred_at": iso_utc(START - timedelta(days=2)),
                "source_id": uid("entitlement", self.round_id, household), "source_version": 1,
                "round_id": self.round_id, "campaign_id": self.campaign_id, "household_id": household,
                "commune_code": commune, "village": f"Thôn {n // len(self.communes) % self.villages + 1}",
                "items": PACKAGE, "cash_vnd": 500_000, "earmarked_donation_id": None,
                "eligible_since": str(date(2021, 7, 15)), "issued_on": str(date(2021, 7, 18))})

    def relief_events(self) -> list[dict]:
        """Contract events as the `--relief-events` file holds them: {"type", "data"}."""
        n = max(1, round(self.households * self.stock_factor))
        donation = {"event_id": uid("ev", "don"), "occurred_at": iso_utc(START - timedelta(days=3)),
                    "source_id": uid("donation", 1), "source_version": 1, "campaign_id": self.campaign_id,
                    "receipt_number": 1, "legal_basis": "decree_93_2021", "received_on": "2021-07-17",
                    "cash_vnd": 500_000 * n,
                    "goods": [{**line, "quantity": line["quantity"] * n} for line in PACKAGE], "earmark": None}
        return [{"type": "DonationReceived", "data": donation}] + [
            {"type": "EntitlementIssued", "data": e} for e in self.entitlements]

    def deliveries(self, reversal_every: int = 0, seconds_apart: int = 90) -> Iterator[dict]:
        """One delivery per entitlement; every `reversal_every`-th is reversed and delivered again."""
        moment = START
        for n, ent in enumerate(self.entitlements):
            moment += timedelta(seconds=seconds_apart)
            delivery = {"kind": "delivery", "entitlement_id": ent["source_id"], "round_id": ent["round_id"],
                        "household_id": ent["household_id"], "commune_code": ent["commune_code"],
                        "items": ent["items"], "cash_vnd": ent["cash_vnd"], "volunteer_id": f"tnv-{n % 7}",
                        "device_id": f"dev-{n % 7}", "delivered_at": iso_utc(moment),
                        "evidence_hash": sha256(str(n).encode()).hexdigest(), "recorded_at": iso_utc(moment)}
            yield delivery
            if reversal_every and n % reversal_every == reversal_every - 1:
                yield {**delivery, "kind": "reversal", "reverses_seq": None, "reason": "recorded_in_error",
                       "reversed_by": "can-bo-1", "recorded_at": iso_utc(moment + timedelta(seconds=5))}
                yield {**delivery, "delivered_at": iso_utc(moment + timedelta(seconds=10)),
                       "recorded_at": iso_utc(moment + timedelta(seconds=10))}


def signing_key(seed: str = "ledger") -> Ed25519PrivateKey:
    return Ed25519PrivateKey.from_private_bytes(sha256(seed.encode()).digest())


def public_raw(key: Ed25519PrivateKey) -> bytes:
    return key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


def checkpoint(key: Ed25519PrivateKey, tree_size: int, root: bytes, moment: datetime) -> dict:
    cp = {"tree_size": tree_size, "root_hash": root.hex(), "timestamp": iso_utc(moment),
          "key_id": key_id(public_raw(key))}
    return {**cp, "signature": b64(key.sign(checkpoint_message(cp)))}


def export(entries: Iterable[dict], key: Ed25519PrivateKey, checkpoint_every: int = 100,
           tree: MerkleTree | None = None) -> Iterator[bytes]:
    """Export lines: numbers entries (a reversal with reverses_seq None reverses the entry just
    before it), hashes them and signs a checkpoint every `checkpoint_every` entries and at the end."""
    yield orjson.dumps({"kind": "header", "format": FORMAT, "public_key": b64(public_raw(key)),
                        "key_id": key_id(public_raw(key))})
    compact, seq = CompactRange(), 0
    for seq, entry in enumerate(entries, 1):
        entry = {**entry, "seq": seq}
        if entry["kind"] == "reversal" and entry["reverses_seq"] is None:
            entry["reverses_seq"] = seq - 1
        body = orjson.dumps(entry, option=orjson.OPT_SORT_KEYS)
        leaf = sha256(b"\x00" + body).digest()
        compact.append(leaf)
        if tree is not None:
            tree.append(leaf)
        # written as the ledger writes it: the entry's canonical bytes, verbatim
        yield b'{"kind":"entry","seq":%d,"entry":%s,"leaf_hash":"%s"}' % (seq, body, leaf.hex().encode())
        if seq % checkpoint_every == 0:
            yield orjson.dumps({"kind": "checkpoint", **checkpoint(key, seq, compact.root(), START + timedelta(seconds=seq))})
    if seq % checkpoint_every:
        yield orjson.dumps({"kind": "checkpoint", **checkpoint(key, seq, compact.root(), START + timedelta(seconds=seq))})
