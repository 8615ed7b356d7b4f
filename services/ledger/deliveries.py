"""Recording deliveries and reversals: the commands, how the writer decides a batch of them and
saves it in one transaction, and the outcomes clients get.

A batch is decided in memory (a second delivery of one entitlement in the same batch meets
the first one's event), then saved at once. The writer keeps recently used entitlements and
idempotency keys in memory and assumes a key it does not know is new: the event store is the
judge. If the save hits its unique key (another writer, relief's cancellation, a key used
before the cache knew it), the cache is dropped and each command is decided and saved again
alone, on fresh state from the store, so exactly the loser learns who won. A recorded result and an
"already served" refusal are kept under their idempotency key and answered again unchanged on a
retry; other refusals (unknown entitlement, out of scope, bad quantities) are decided afresh.
"""

import logging
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any
from uuid import UUID

from eventsourcing.persistence import IntegrityError

from services.common.auth import Principal
from services.common.errors import DomainError, Invalid, NotFound
from services.ledger.domain import (
    CHECKPOINTS_ID, LOG_ID, CheckpointSigned, Entitlement, EntryAppended, IdempotencyRecord,
    AlreadyServed, DuplicateRefused, NotReversible, delivery_entry, reversal_entry,
)
from services.ledger.export_format import checkpoint_message, entry_leaf_hash, iso_utc

logger = logging.getLogger(__name__)
RETRIES_ALONE = 20
CACHE_SIZE = 10_000


@dataclass(frozen=True)
class RecordDelivery:
    idempotency_key: str
    body_hash: str
    entitlement_id: UUID
    items: list[dict]
    cash_vnd: int
    volunteer_id: str
    device_id: str
    delivered_at: str
    evidence_hash: str | None = None
    by: Principal | None = None  # who asks: the entitlement's commune must be theirs (None: not checked)


@dataclass(frozen=True)
class ReverseDelivery:
    reverses_seq: int
    reason: str
    reversed_by: str
    body_hash: str
    idempotency_key: str | None = None
    by: Principal | None = None  # who asks: the entitlement's commune must be theirs (None: not checked)


@dataclass(frozen=True)
class SignCheckpoint:
    """From the timer: sign the tree as it is, if it grew since the last checkpoint."""


@dataclass
class Outcome:
    status: int
    body: dict[str, Any]
    seq: int | None = None  # set when the body gets a receipt


class KeyReused(Invalid):
    code = "idempotency_key_reused"

    def body(self) -> dict[str, Any]:
        return {"detail": [{"loc": ["header", "idempotency-key"], "msg": self.message_en,
                            "msg_vi": self.message_vi, "type": self.code}]}


class Recent(OrderedDict):
    """A bounded map, least recently used out first."""

    def get(self, key, default=None):
        if key in self:
            self.move_to_end(key)
            return self[key]
        return default

    def put(self, key, value) -> None:
        self[key] = value
        self.move_to_end(key)
        if len(self) > CACHE_SIZE:
            self.popitem(last=False)


@dataclass
class Batch:
    """Commands decided together; `head` is the last seq, stored or pending. With `known`
    (the writer's memory) a key it does not hold is taken as new, and the store says otherwise."""

    ledger: Any
    head: int
    known: "Desk | None" = None
    entitlements: dict[UUID, Entitlement | None] = field(default_factory=dict)
    records: dict[str, IdempotencyRecord.Recorded] = field(default_factory=dict)  # new, by key
    events: list[EntryAppended] = field(default_factory=list)
    checkpoint: CheckpointSigned | None = None

    def decide(self, command) -> Outcome:
        try:
            if isinstance(command, RecordDelivery):
                return self._deliver(command)
            if isinstance(command, ReverseDelivery):
                return self._reverse(command)
            return Outcome(204, {})
        except DomainError as error:
            if self.known is not None and getattr(command, "idempotency_key", None):
                # a refusal may only mean the key was used before the writer's memory knew it
                known, self.known = self.known, None
                try:
                    found = self._replay(command.idempotency_key, command.body_hash)
                except DomainError as reused:
                    found = Outcome(reused.status_code, reused.body())
                finally:
                    self.known = known
                if found is not None:
                    return found
            return Outcome(error.status_code, error.body())

    def new_events(self) -> list:
        """Everything the batch decided, in the order it is saved."""
        events = [e for entitlement in self.entitlements.values() if entitlement is not None
                  for e in entitlement.collect_events()]
        events += self.records.values()
        events += self.events
        if self.checkpoint is not None:
            events.append(self.checkpoint)
        return events

    def _deliver(self, c: RecordDelivery) -> Outcome:
        replay = self._replay(c.idempotency_key, c.body_hash)
        if replay is not None:
            return replay
        entitlement = self._entitlement(c.entitlement_id)
        _check_scope(c.by, entitlement)
        try:
            entitlement.check_delivery(c.items, c.cash_vnd)
        except AlreadyServed as refused:
            return self._refusal(c, refused)
        now = datetime.now(timezone.utc)
        delivery = {"seq": self.head + 1, "volunteer_id": c.volunteer_id, "device_id": c.device_id,
                    "delivered_at": c.delivered_at, "recorded_at": iso_utc(now), "items": c.items,
                    "cash_vnd": c.cash_vnd, "evidence_hash": c.evidence_hash}
        entitlement.deliver(delivery, now)
        entry = delivery_entry(entitlement, delivery)
        self._append(entry, entitlement.version, now)
        return self._success(c.idempotency_key, c.body_hash,
                             {"kind": "delivery", "seq": self.head, "entitlement_id": entry["entitlement_id"]}, now)

    def _reverse(self, c: ReverseDelivery) -> Outcome:
        replay = self._replay(c.idempotency_key, c.body_hash) if c.idempotency_key else None
        if replay is not None:
            return replay
        found = self.ledger.merkle.entry(c.reverses_seq)
        pending = [e.entry for e in self.events if e.originator_version == c.reverses_seq]
        entry = pending[0] if pending else (found[0] if found else None)
        if entry is None:
            raise NotFound("Không có mục này trong sổ", "No such entry in the ledger", seq=c.reverses_seq)
        if entry["kind"] != "delivery":
            raise NotReversible("Chỉ đảo được một lần phát", "Only a delivery can be reversed",
                                reverses_seq=c.reverses_seq)
        entitlement = self._entitlement(UUID(entry["entitlement_id"]))
        _check_scope(c.by, entitlement)
        entitlement.check_reversal(c.reverses_seq)
        standing = entitlement.delivery
        now = datetime.now(timezone.utc)
        entitlement.reverse(self.head + 1, c.reverses_seq, c.reason, c.reversed_by)
        self._append(reversal_entry(entitlement, standing, self.head + 1, iso_utc(now), c.reason, c.reversed_by),
                     entitlement.version, now)
        result = {"kind": "reversal", "seq": self.head, "entitlement_id": str(entitlement.id),
                  "reverses_seq": c.reverses_seq}
        return self._success(c.idempotency_key, c.body_hash, result, now)

    def _replay(self, key: str, body_hash: str) -> Outcome | None:
        record = self.records.get(key)
        if record is None and self.known is not None:
            record = self.known.keys.get(key)
        elif record is None:
            record = self.ledger.get_or_none(IdempotencyRecord.create_id(key))
        if record is None:
            return None
        if record.body_hash != body_hash:
            raise KeyReused("idempotency_key", "Khoá chống lặp này đã dùng cho một yêu cầu khác",
                            "This Idempotency-Key came with a different request")
        if record.result.get("kind") == "refused":
            return Outcome(409, dict(record.result["answer"]))
        return Outcome(200, dict(record.result), record.result["seq"])

    def _refusal(self, c: RecordDelivery, refused: AlreadyServed) -> Outcome:
        """Keep the 409 under the key: a retry of a refused request must never record, even after
        the delivery it met is reversed (the phone was told not to hand anything over)."""
        answer = refused.body()
        now = datetime.now(timezone.utc)
        self.records[c.idempotency_key] = DuplicateRefused.recorded(
            c.idempotency_key, c.body_hash,
            {"kind": "refused", "seq": None, "answer": answer, "volunteer_id": c.volunteer_id,
             "entitlement_id": str(c.entitlement_id), "at": iso_utc(now)}, now)
        return Outcome(409, dict(answer))

    def _success(self, key: str | None, body_hash: str, result: dict, now: datetime) -> Outcome:
        if key:
            self.records[key] = IdempotencyRecord.recorded(key, body_hash, result, now)
        return Outcome(201, dict(result), result["seq"])

    def _entitlement(self, entitlement_id: UUID) -> Entitlement:
        if entitlement_id not in self.entitlements:
            found = self.known.entitlements.get(entitlement_id) if self.known else None
            found = found or self.ledger.get_or_none(entitlement_id)
            self.entitlements[entitlement_id] = found if isinstance(found, Entitlement) else None
        entitlement = self.entitlements[entitlement_id]
        if entitlement is None:
            raise NotFound("Sổ cái chưa biết suất này", "The ledger has not heard of this entitlement",
                           entitlement_id=str(entitlement_id))
        return entitlement

    def _append(self, entry: dict, entitlement_version: int, now: datetime) -> None:
        self.head += 1
        self.events.append(EntryAppended(originator_id=LOG_ID, originator_version=self.head, timestamp=now,
                                         entry=entry, leaf_hash=entry_leaf_hash(entry),
                                         entitlement_version=entitlement_version))


def _check_scope(by: Principal | None, entitlement: Entitlement) -> None:
    """403 unless the entitlement's commune is one of the caller's (checked here, where it is loaded)."""
    if by is not None:
        by.check_commune(entitlement.commune_code, "suất này", "this entitlement")


class Desk:
    """The writer's side of the ledger: decides, saves, signs and answers. One thread only."""

    def __init__(self, ledger):
        self.ledger = ledger
        self.head = self._stored_version(LOG_ID)
        self.checkpoints = self._stored_version(CHECKPOINTS_ID)
        self.entitlements: Recent = Recent()
        self.keys: Recent = Recent()

    def _stored_version(self, stream: UUID) -> int:
        events = self.ledger.recorder.select_events(stream, desc=True, limit=1)
        return events[0].originator_version if events else 0

    def process(self, commands: list) -> list[Outcome]:
        log = self.ledger.merkle
        log.catch_up()
        batch = Batch(self.ledger, self.head, known=self)
        wanted = {c.entitlement_id for c in commands
                  if isinstance(c, RecordDelivery) and c.entitlement_id not in self.entitlements}
        if wanted:
            batch.entitlements.update(self.ledger.entitlements(list(wanted)))
        outcomes = [batch.decide(c) for c in commands]
        if batch.events and log.size == batch.events[0].originator_version - 1:
            # sign the batch's checkpoint in the same transaction: one fsync per batch
            leaves = [bytes.fromhex(e.leaf_hash) for e in batch.events]
            batch.checkpoint = self._checkpoint(batch.head, log.root_after(leaves))
        try:
            self._save(batch)
        except IntegrityError:
            self.entitlements.clear()
            self.keys.clear()
            outcomes = [self._alone(c) for c in commands]
        return self._answer(commands, outcomes)

    def _save(self, batch: Batch) -> None:
        events = batch.new_events()
        if events:  # the event store directly: app.save() checks each object against protocols
            # EventStore.put() without the Recording objects it builds for every event
            stored = [self.ledger.encoding.to_stored_event(e) for e in events]
            ids = self.ledger.recorder.insert_events(stored)
            try:  # the Merkle log takes its own leaves from memory; else catch_up() reads them back
                self.ledger.merkle.append_own(events, stored, ids)
            except Exception:  # noqa: BLE001 - saved is saved: catch_up() applies them from the store
                logger.exception("appending the writer's own entries to the Merkle log failed")
        self.head = batch.head
        if batch.checkpoint is not None:
            self.checkpoints += 1
        for entitlement in batch.entitlements.values():
            if entitlement is not None:
                self.entitlements.put(entitlement.id, entitlement)
        for key, record in batch.records.items():
            self.keys.put(key, record)

    def _alone(self, command) -> Outcome:
        for _ in range(RETRIES_ALONE):
            self.head = self._stored_version(LOG_ID)
            self.ledger.merkle.catch_up()
            batch = Batch(self.ledger, self.head)
            outcome = batch.decide(command)
            try:
                self._save(batch)
            except IntegrityError:
                continue
            return outcome
        raise RuntimeError("the ledger could not save a command after retries")

    def _answer(self, commands: list, outcomes: list[Outcome]) -> list[Outcome]:
        log = self.ledger.merkle
        log.catch_up()
        latest = log.latest_checkpoint()
        signed = latest["tree_size"] if latest else 0
        needed = max((o.seq for o in outcomes if o.seq), default=0)
        timer = any(isinstance(c, SignCheckpoint) for c in commands)
        if log.size > signed and (needed > signed or timer
                                  or log.size - signed >= self.ledger.config.checkpoint_every):
            self.sign(log.size)
        receipts = log.receipts([o.seq for o in outcomes if o.seq], self.ledger.key.public_key)
        for outcome in outcomes:
            if outcome.seq:
                receipt = receipts[outcome.seq]
                outcome.body.update(leaf_hash=receipt["leaf_hash"], receipt=receipt)
        return outcomes

    def _checkpoint(self, tree_size: int, root_hash: str) -> CheckpointSigned:
        key = self.ledger.key
        now = datetime.now(timezone.utc)
        checkpoint = {"tree_size": tree_size, "root_hash": root_hash, "timestamp": iso_utc(now), "key_id": key.key_id}
        checkpoint["signature"] = key.sign(checkpoint_message(checkpoint))
        return CheckpointSigned(originator_id=CHECKPOINTS_ID, originator_version=self.checkpoints + 1,
                                timestamp=now, checkpoint=checkpoint)

    def sign(self, tree_size: int) -> dict:
        for _ in range(RETRIES_ALONE):
            event = self._checkpoint(tree_size, self.ledger.merkle.root(tree_size))
            try:
                self.ledger.save(event)
            except IntegrityError:
                self.checkpoints = self._stored_version(CHECKPOINTS_ID)
                continue
            self.checkpoints += 1
            self.ledger.merkle.catch_up()
            return event.checkpoint
        raise RuntimeError("the ledger could not store a checkpoint")
