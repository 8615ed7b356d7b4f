"""The ledger application: its settings, the writer, the Merkle log, and how it follows relief."""

import os
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from eventsourcing.persistence import StoredEvent
from eventsourcing.postgres import PostgresAggregateRecorder
from eventsourcing.sqlite import SQLiteAggregateRecorder

from contracts import EntitlementCancelled, EntitlementIssued
from services.common.settings import Settings
from services.common.store import ServiceApplication, UnitOfWork
from services.ledger.deliveries import Desk, Outcome
from services.ledger.domain import WRITER_EVENTS, Entitlement
from services.ledger.group_commit import GroupCommit
from services.ledger.keys import SigningKey
from services.ledger.log import MerkleLog


@dataclass(frozen=True)
class LedgerConfig:
    """| LEDGER_CHECKPOINT_EVERY | 1000 | sign a checkpoint after this many new entries |
    | LEDGER_CHECKPOINT_SECONDS | 10 | ... or this long after the last one, if the tree grew |
    | LEDGER_SIGNING_KEY | (file) | base64 of the 32-byte Ed25519 seed; else DATA_DIR/ledger/signing-key |
    | LEDGER_MAX_BATCH | 1000 | commands saved in one group commit |"""

    checkpoint_every: int = 1000
    checkpoint_seconds: float = 10.0
    signing_key: str | None = None
    max_batch: int = 1000

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> "LedgerConfig":
        env = dict(os.environ if env is None else env)
        return cls(checkpoint_every=int(env.get("LEDGER_CHECKPOINT_EVERY", cls.checkpoint_every)),
                   checkpoint_seconds=float(env.get("LEDGER_CHECKPOINT_SECONDS", cls.checkpoint_seconds)),
                   signing_key=env.get("LEDGER_SIGNING_KEY") or None,
                   max_batch=int(env.get("LEDGER_MAX_BATCH", cls.max_batch)))


class Ledger(ServiceApplication):
    fast_events = WRITER_EVENTS
    fast_reads = (Entitlement.Issued, Entitlement.Reissued, Entitlement.Cancelled)

    def __init__(self, settings: Settings, config: LedgerConfig | None = None, env: dict[str, Any] | None = None):
        super().__init__(settings, env)
        self.config = config or LedgerConfig.from_env()
        self.key = SigningKey.load(self.config.signing_key, settings.service_dir)
        self.merkle = MerkleLog(self, settings.service_dir / "merkle.sqlite")
        self.desk = Desk(self)
        self.writer = GroupCommit(self.desk.process, max_batch=self.config.max_batch)

    def record(self, commands: list) -> list[Outcome]:
        """Decide and save `commands` through the group-committing writer (blocking)."""
        return self.writer(commands)

    def entitlements(self, ids: list[UUID]) -> dict[UUID, Entitlement | None]:
        """Many entitlements in one query (the writer's batch), None for those not stored."""
        found: dict[UUID, list] = {i: [] for i in ids}
        for stored in select_many(self.recorder, ids):
            originator = stored.originator_id
            found[originator if isinstance(originator, UUID) else UUID(originator)].append(
                self.encoding.to_domain_event(stored))
        out = {}
        for entitlement_id, events in found.items():
            aggregate = None
            for domain_event in events:  # project_aggregate() without its per-event Protocol check
                aggregate = domain_event.mutate(aggregate)
            out[entitlement_id] = aggregate if isinstance(aggregate, Entitlement) else None
        return out

    def entitlement(self, entitlement_id: UUID) -> Entitlement | None:
        found = self.get_or_none(entitlement_id)
        return found if isinstance(found, Entitlement) else None

    def entry_count(self) -> int:
        self.merkle.catch_up()
        return self.merkle.size

    def close(self) -> None:
        self.writer.close()
        self.merkle.close()
        super().close()


class LedgerStore(ServiceApplication):
    """The ledger's event store alone, without the writer and the Merkle log: what the outbox
    relay process reads. Same name, so the same tables (PostgreSQL names them after it)."""

    name = Ledger.name
    fast_events, fast_reads = Ledger.fast_events, Ledger.fast_reads


def select_many(recorder, ids: list[UUID]) -> list[StoredEvent]:
    """The stored events of many aggregates, ordered by aggregate and version, in one query on
    the recorder's own table: eventsourcing selects one aggregate at a time."""
    columns = "originator_id, originator_version, topic, state"
    if isinstance(recorder, SQLiteAggregateRecorder):
        statement = (f"SELECT {columns} FROM {recorder.events_table_name} WHERE originator_id IN "
                     f"({','.join('?' * len(ids))}) ORDER BY originator_id, originator_version")
        with recorder.datastore.transaction(commit=False) as cursor:
            cursor.execute(statement, [i.hex for i in ids])
            rows = cursor.fetchall()
    elif isinstance(recorder, PostgresAggregateRecorder):
        from psycopg.sql import SQL, Identifier

        statement = SQL(f"SELECT {columns} FROM {{}}.{{}} WHERE originator_id = ANY(%s) "
                        "ORDER BY originator_id, originator_version").format(
            Identifier(recorder.datastore.schema), Identifier(recorder.events_table_name))
        with recorder.datastore.get_connection() as conn, conn.cursor() as cursor:
            cursor.execute(statement, [list(ids)])
            rows = cursor.fetchall()
    else:
        return [event for i in ids for event in recorder.select_events(i)]
    return [StoredEvent(originator_id=row["originator_id"], originator_version=row["originator_version"],
                        topic=row["topic"], state=bytes(row["state"])) for row in rows]


def on_entitlement_issued(uow: UnitOfWork, e: EntitlementIssued) -> None:
    items = [line.model_dump() for line in e.items]
    entitlement = uow.get(e.source_id)
    if entitlement is None:
        uow.add(Entitlement(entitlement_id=e.source_id, source_version=e.source_version, round_id=e.round_id,
                            household_id=e.household_id, commune_code=e.commune_code, items=items,
                            cash_vnd=e.cash_vnd, earmarked_donation_id=e.earmarked_donation_id))
    elif entitlement.is_new(e.source_version):
        entitlement.reissue(e.source_version, e.commune_code, items, e.cash_vnd)


def on_entitlement_cancelled(uow: UnitOfWork, e: EntitlementCancelled) -> None:
    entitlement = uow.get(e.source_id)
    if entitlement is not None and entitlement.is_new(e.source_version):
        entitlement.cancel(e.source_version, e.reason.value)


RELIEF_HANDLERS = {EntitlementIssued: on_entitlement_issued, EntitlementCancelled: on_entitlement_cancelled}
