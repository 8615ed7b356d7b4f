"""The Merkle log: a rebuildable local projection of the ledger's entries and checkpoints.

It reads EntryAppended and CheckpointSigned events from the notification log, keeps each
entry's canonical bytes and leaf hash in SQLite, and every complete subtree in memory
(merkle.MerkleTree, about 150 MB per million entries), so roots and proofs for any tree
size cost O(log n) hashes. On start the tree is refilled from the stored leaf hashes.
"""

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import orjson
from eventsourcing.utils import get_topic

from services.common.projection import LocalProjection
from services.common.store import ServiceApplication
from services.ledger.domain import CheckpointSigned, DuplicateRefused, EntryAppended
from services.ledger.export_format import FORMAT, RECEIPT_FORMAT, canonical
from services.ledger.merkle import EMPTY_ROOT, MerkleTree, leaf_hash, node_hash

ENTRY_TOPIC = get_topic(EntryAppended)
CHECKPOINT_TOPIC = get_topic(CheckpointSigned)
REFUSAL_TOPIC = get_topic(DuplicateRefused.Recorded)
EXPORT_CHUNK = 2000


class LogCorrupt(RuntimeError):
    """The event store's log stream skips or repeats a seq: never expected, never papered over."""


class MerkleLog(LocalProjection):
    schema_version = 2
    schema = """
    CREATE TABLE IF NOT EXISTS entry (
        seq INTEGER PRIMARY KEY, entitlement_id TEXT NOT NULL, kind TEXT NOT NULL,
        body BLOB NOT NULL, leaf BLOB NOT NULL);
    CREATE TABLE IF NOT EXISTS checkpoint (tree_size INTEGER PRIMARY KEY, body BLOB NOT NULL);
    CREATE TABLE IF NOT EXISTS refusal (notification_id INTEGER PRIMARY KEY, body BLOB NOT NULL);
    """

    def __init__(self, app: ServiceApplication, path: Path, batch: int = 5000):
        super().__init__(app, path, batch)
        self._load_tree()

    def _load_tree(self) -> None:
        tree = MerkleTree()
        for (leaf,) in self._writer.execute("SELECT leaf FROM entry ORDER BY seq"):
            tree.append(leaf)
        self.tree = tree

    def _step(self) -> int:
        try:
            return super()._step()
        except BaseException:
            self._load_tree()  # the batch rolled back: so do the leaves it appended in memory
            raise

    def apply(self, db: sqlite3.Connection, notifications) -> None:
        for notification in notifications:
            if notification.topic in (ENTRY_TOPIC, CHECKPOINT_TOPIC, REFUSAL_TOPIC):
                self._apply_event(db, notification.id, notification.topic,
                                  self.app.mapper.to_domain_event(notification))

    def _apply_event(self, db: sqlite3.Connection, notification_id: int, topic: str, event) -> None:
        if topic == ENTRY_TOPIC:
            seq = event.originator_version
            if seq != len(self.tree) + 1:
                raise LogCorrupt(f"log entry {seq} follows {len(self.tree)}")
            body = canonical(event.entry)
            leaf = leaf_hash(body)
            db.execute("INSERT INTO entry VALUES (?, ?, ?, ?, ?)",
                       (seq, event.entry["entitlement_id"], event.entry["kind"], body, leaf))
            self.tree.append(leaf)
        elif topic == CHECKPOINT_TOPIC:
            checkpoint = event.checkpoint
            db.execute("INSERT OR REPLACE INTO checkpoint VALUES (?, ?)",
                       (checkpoint["tree_size"], orjson.dumps(checkpoint)))
        elif topic == REFUSAL_TOPIC:
            db.execute("INSERT OR REPLACE INTO refusal VALUES (?, ?)",
                       (notification_id, orjson.dumps(refusal_line(event))))

    def append_own(self, events: list, stored: list, notification_ids) -> bool:
        """The writer's own events, just saved (the domain events, their stored form and the
        notification ids the store gave them): applied from memory instead of read back and
        decoded from the store. Only when they are exactly the next notifications (none skipped,
        none between them); otherwise False, and catch_up() reads them from the store as any
        other. Rows, leaves and position commit together, so a crash before this commit leaves
        catch_up() to do it."""
        if not events or not notification_ids or len(notification_ids) != len(events):
            return False
        first, last = notification_ids[0], notification_ids[-1]
        if last - first != len(events) - 1:
            return False
        with self._lock:
            if self._position != first - 1:
                return False
            db = self._writer
            db.execute("BEGIN IMMEDIATE")
            try:
                for event, record, notification_id in zip(events, stored, notification_ids):
                    if record.topic in (ENTRY_TOPIC, CHECKPOINT_TOPIC, REFUSAL_TOPIC):
                        self._apply_event(db, notification_id, record.topic, event)
                db.execute(
                    "INSERT INTO projection_position VALUES (1, ?, ?) ON CONFLICT (one) DO UPDATE "
                    "SET notification_id = excluded.notification_id, schema_version = excluded.schema_version",
                    (last, self.schema_version))
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                self._load_tree()  # the leaves appended in memory go with the rows
                raise
            self._position = last
        return True

    # -- reading (call catch_up() first to read your own writes)

    @property
    def size(self) -> int:
        return len(self.tree)

    def entry(self, seq: int) -> tuple[dict, bytes] | None:
        row = self.reader().execute("SELECT body, leaf FROM entry WHERE seq = ?", (seq,)).fetchone()
        return (orjson.loads(row[0]), row[1]) if row else None

    def latest_checkpoint(self) -> dict | None:
        row = self.reader().execute("SELECT body FROM checkpoint ORDER BY tree_size DESC LIMIT 1").fetchone()
        return orjson.loads(row[0]) if row else None

    def checkpoint_covering(self, seq: int) -> dict | None:
        """The first checkpoint that includes entry `seq`: a receipt is always proven against it,
        so asking again gives the same receipt."""
        row = self.reader().execute("SELECT body FROM checkpoint WHERE tree_size >= ? ORDER BY tree_size LIMIT 1",
                                    (seq,)).fetchone()
        return orjson.loads(row[0]) if row else None

    def checkpoint_at(self, tree_size: int) -> dict | None:
        row = self.reader().execute("SELECT body FROM checkpoint WHERE tree_size = ?", (tree_size,)).fetchone()
        return orjson.loads(row[0]) if row else None

    def checkpoints(self, after: int = 0, limit: int = 100) -> list[dict]:
        rows = self.reader().execute(
            "SELECT body FROM checkpoint WHERE tree_size > ? ORDER BY tree_size LIMIT ?", (after, limit))
        return [orjson.loads(body) for (body,) in rows]

    def root(self, tree_size: int) -> str:
        return self.tree.root(tree_size).hex()

    def root_after(self, leaves: list[bytes]) -> str:
        """The root once `leaves` follow the entries applied so far (for signing a checkpoint in
        the same transaction as the entries it covers)."""
        size, peaks = len(self.tree), []
        for k in range(size.bit_length() - 1, -1, -1):
            if size >> k & 1:
                peaks.append(self.tree.levels[k][(size >> k) - 1])
        for leaf in leaves:
            n, h = size, leaf
            while n & 1:
                h = node_hash(peaks.pop(), h)
                n >>= 1
            peaks.append(h)
            size += 1
        if not peaks:
            return EMPTY_ROOT.hex()
        h = peaks[-1]
        for peak in reversed(peaks[:-1]):
            h = node_hash(peak, h)
        return h.hex()

    def receipt(self, seq: int, checkpoint: dict, public_key: str) -> dict | None:
        found = self.entry(seq)
        if found is None or checkpoint["tree_size"] < seq:
            return None
        return self._receipt(seq, *found, checkpoint, public_key)

    def _receipt(self, seq: int, entry: dict, leaf: bytes, checkpoint: dict, public_key: str,
                 memo: dict | None = None) -> dict:
        proof = self.tree.inclusion_proof(seq - 1, checkpoint["tree_size"], memo)
        return {"format": RECEIPT_FORMAT, "entry": entry, "leaf_hash": leaf.hex(), "leaf_index": seq - 1,
                "inclusion_proof": [p.hex() for p in proof], "checkpoint": checkpoint, "public_key": public_key}

    def receipts(self, seqs: list[int], public_key: str) -> dict[int, dict]:
        """Receipts for many entries at once, each against the first checkpoint that covers it."""
        wanted = sorted(set(seqs))
        rows = self.reader().execute(
            f"SELECT seq, body, leaf FROM entry WHERE seq IN ({','.join('?' * len(wanted))})", wanted)
        entries = {seq: (orjson.loads(body), leaf) for seq, body, leaf in rows}
        out, checkpoint, memo = {}, None, {}
        for seq in wanted:
            if checkpoint is None or checkpoint["tree_size"] < seq:
                checkpoint = self.checkpoint_covering(seq)
                memo = {}  # subtrees of one tree size
            if checkpoint is not None and seq in entries:
                out[seq] = self._receipt(seq, *entries[seq], checkpoint, public_key, memo)
        return out

    def consistency(self, first: int, second: int) -> list[str]:
        return [p.hex() for p in self.tree.consistency_proof(first, second)]

    def export(self, public_key: str, key_id: str) -> Iterator[bytes]:
        """JSON lines, in chunks: header, then entries with each checkpoint after the entry that
        completes it, then the duplicates refused (outside the tree: context for the report). A snapshot of the size at the start; its own connection (any thread)."""
        db = self.connect(check_same_thread=False)
        try:
            db.execute("BEGIN")  # one read snapshot for the whole export
            yield orjson.dumps({"kind": "header", "format": FORMAT, "public_key": public_key,
                                "key_id": key_id}) + b"\n"
            checkpoints = iter(db.execute("SELECT tree_size, body FROM checkpoint ORDER BY tree_size").fetchall())
            next_cp = next(checkpoints, None)
            rows = db.execute("SELECT seq, body, leaf FROM entry ORDER BY seq")
            while chunk := rows.fetchmany(EXPORT_CHUNK):
                lines = []
                for seq, body, leaf in chunk:
                    lines.append(b'{"kind":"entry","seq":%d,"entry":%s,"leaf_hash":"%s"}\n'
                                 % (seq, body, leaf.hex().encode()))
                    while next_cp is not None and next_cp[0] == seq:
                        lines.append(b'{"kind":"checkpoint",' + next_cp[1][1:] + b"\n")
                        next_cp = next(checkpoints, None)
                yield b"".join(lines)
            for (body,) in db.execute("SELECT body FROM refusal ORDER BY notification_id"):
                yield body + b"\n"
            db.execute("COMMIT")
        finally:
            db.close()


def refusal_line(event) -> dict:
    """A refused duplicate as the export shows it: ids and times only."""
    result = event.result
    return {"kind": "refusal", "entitlement_id": result["entitlement_id"], "volunteer_id": result["volunteer_id"],
            "at": result["at"], "served_seq": result["answer"].get("seq")}
