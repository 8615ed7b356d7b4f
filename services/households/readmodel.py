"""The lookup read model: a local SQLite projection of this service's own notification log.

- Rebuildable: delete `lookup.sqlite` and it is rebuilt from notification 1. It reads only
  the notification log, so it works the same over a SQLite or a PostgreSQL event store;
  each process keeps its own copy next to its other local files.
- Exactly once: the rows of a batch and the position after it commit in one SQLite
  transaction; a crash in between leaves the old rows with the old position.
- Fast at a million households: FTS5 over folded names, village and address (prefix
  queries, with commune and poverty status as tag tokens so a filtered search stays
  narrow), plain indexes for phone, CCCD (heads and members), place, poverty and
  quarantine periods. Results come in registration order, best head-name matches
  first when the match set is small.
"""

import asyncio
import hashlib
import logging
import re
import sqlite3
import threading
from datetime import date
from pathlib import Path
from typing import Any
from uuid import UUID

import orjson
from eventsourcing.persistence import Notification
from unidecode import unidecode

from services.common.projection import read_model
from services.common.threads import in_thread
from services.households.domain import DuplicateDismissal, Household, check_phone
from services.households.views import summary

log = logging.getLogger(__name__)
COUNT_CAP = 10_000  # totals above this are reported as "more than"
TEXT_COUNT_CAP = 1_000  # the same for text searches, whose counting costs more
OPTIMIZE_AFTER = 20_000  # a catch-up this big (a rebuild, a bulk load) ends by merging the text index
RANK_CAP = 200  # rank by head name only when the match set is this small
SMALL_COMMUNE = 1_500  # households: below this, a text search in one commune reads its rows
PAIRS_PER_KEY = 50  # one phone shared by a whole village should not make n² pairs

SCHEMA_VERSION = 4  # bump when the tables change: an older file is dropped and rebuilt
SCHEMA = """
CREATE TABLE IF NOT EXISTS position (one INTEGER PRIMARY KEY CHECK (one = 1), notification_id INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS household (
    hid INTEGER PRIMARY KEY,
    id BLOB NOT NULL UNIQUE,
    commune_code TEXT NOT NULL,
    village_key TEXT NOT NULL,
    phone TEXT,
    poverty_status TEXT NOT NULL,
    -- folded words, also the external content of the full-text index
    head_key TEXT NOT NULL,
    member_words TEXT NOT NULL,
    place_words TEXT NOT NULL,
    tags TEXT NOT NULL,
    summary BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS household_commune ON household (commune_code);
CREATE INDEX IF NOT EXISTS household_place ON household (commune_code, village_key);
CREATE INDEX IF NOT EXISTS household_village ON household (village_key);
CREATE INDEX IF NOT EXISTS household_phone ON household (phone) WHERE phone IS NOT NULL;
CREATE INDEX IF NOT EXISTS household_poverty ON household (poverty_status);
CREATE VIRTUAL TABLE IF NOT EXISTS search USING fts5 (
    head_key, member_words, place_words, tags,
    content='household', content_rowid='hid', detail=column, prefix='1 2 3 4 5 6');
-- the same for the ~15% of households with a poverty status: a name search among them
-- intersects doclists seven times shorter
CREATE VIRTUAL TABLE IF NOT EXISTS search_assisted USING fts5 (
    head_key, member_words, place_words, tags,
    content='household', content_rowid='hid', detail=column, prefix='1 2 3 4 5 6');
CREATE TABLE IF NOT EXISTS citizen (cccd TEXT NOT NULL, hid INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS citizen_cccd ON citizen (cccd);
CREATE INDEX IF NOT EXISTS citizen_hid ON citizen (hid);
CREATE TABLE IF NOT EXISTS episode (hid INTEGER NOT NULL, starts_on TEXT NOT NULL, last_day TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS episode_period ON episode (last_day, starts_on);
CREATE INDEX IF NOT EXISTS episode_hid ON episode (hid);
CREATE TABLE IF NOT EXISTS dup_key (kind TEXT NOT NULL, key INTEGER NOT NULL, hid INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS dup_key_key ON dup_key (kind, key);
CREATE INDEX IF NOT EXISTS dup_key_hid ON dup_key (hid);
CREATE TABLE IF NOT EXISTS dup_pair (
    a INTEGER NOT NULL, b INTEGER NOT NULL, reason TEXT NOT NULL, commune_a TEXT NOT NULL, commune_b TEXT NOT NULL,
    PRIMARY KEY (a, b, reason)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS dup_pair_b ON dup_pair (b);
CREATE INDEX IF NOT EXISTS dup_pair_commune_a ON dup_pair (commune_a);
CREATE INDEX IF NOT EXISTS dup_pair_commune_b ON dup_pair (commune_b);
CREATE TABLE IF NOT EXISTS dismissed (a BLOB NOT NULL, b BLOB NOT NULL, PRIMARY KEY (a, b)) WITHOUT ROWID;
"""
_SEARCH_COLUMNS = "head_key, member_words, place_words, tags"

_NOT_WORD = re.compile(r"[^a-z0-9]+")
# Latin letters with diacritics (Vietnamese among them) straight to ASCII, combining marks
# dropped: much faster than unidecode per character, which remains the fallback.
_LATIN = {code: unidecode(chr(code)) for code in [*range(0xC0, 0x250), *range(0x1E00, 0x1F00)]}
_LATIN.update({code: "" for code in range(0x300, 0x370)})
_TO_ASCII = str.maketrans(_LATIN)


def fold(text: str | None) -> str:
    """Lowercase ASCII words: 'Nguyễn Văn Đức, Thôn 3' -> 'nguyen van duc thon 3' (đ -> d)."""
    if not text:
        return ""
    if not text.isascii():
        text = text.translate(_TO_ASCII)
        if not text.isascii():
            text = unidecode(text)
    return " ".join(_NOT_WORD.sub(" ", text.lower()).split())


def _tag(kind: str, value: str) -> str:
    """A token no Vietnamese word starts with ('z'), so a typed word never matches a tag."""
    return "z" + kind + value.replace("_", "")


def _key(text: str) -> int:
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "big", signed=True)


class Lookup:
    def __init__(self, app: Any, path: Path, batch: int = 2000):
        self.app = app
        self.path = path
        self.batch = batch
        self._lock = threading.Lock()
        self._local = threading.local()
        self._writer = self._open()
        self._position = self._stored_position(self._writer)
        if self._position > (app.recorder.max_notification_id() or 0):
            log.warning("lookup at %s is ahead of its event store (a new store?): rebuilding it", path)
            self._writer = self._open(drop=True)
            self._position = 0

    def _open(self, drop: bool = False) -> sqlite3.Connection:
        """The writer connection, on a file of the current schema (an older one is dropped)."""
        if not drop and self.path.exists():
            probe = sqlite3.connect(self.path)
            drop = probe.execute("PRAGMA user_version").fetchone()[0] != SCHEMA_VERSION
            probe.close()
        if drop:
            if hasattr(self, "_writer"):
                self._writer.close()
            for suffix in ("", "-wal", "-shm"):
                Path(f"{self.path}{suffix}").unlink(missing_ok=True)
        db = self._connect(check_same_thread=False)
        db.executescript(f"PRAGMA journal_mode=WAL; BEGIN; {SCHEMA} PRAGMA user_version={SCHEMA_VERSION}; COMMIT;")
        return db

    def _connect(self, check_same_thread: bool = True) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=check_same_thread)
        db.execute("PRAGMA synchronous=NORMAL")
        db.execute("PRAGMA cache_size=-65536")
        db.execute("PRAGMA mmap_size=1073741824")
        return db

    def _reader(self) -> sqlite3.Connection:
        db = getattr(self._local, "db", None)
        if db is None:
            db = self._local.db = self._connect()
        return db

    @staticmethod
    def _stored_position(db: sqlite3.Connection) -> int:
        row = db.execute("SELECT notification_id FROM position").fetchone()
        return row[0] if row else 0

    @property
    def position(self) -> int:
        return self._position

    # -- projecting

    def catch_up(self, limit: int | None = None) -> int:
        """Apply the notifications stored before this call (at most `limit`); returns how many.

        GET endpoints call this first, so a client reads its own writes without waiting for
        the background loop. The lock is taken per batch, so readers are never stuck behind a
        whole rebuild: during one they get a bounded catch-up and a partial answer.
        """
        target = self.app.recorder.max_notification_id() or 0
        applied = 0
        while self._position < target and (limit is None or applied < limit):
            with self._lock:
                count = self._step()
            if count == 0:
                break
            applied += count
        if applied >= OPTIMIZE_AFTER:
            self.optimize()
        return applied

    def optimize(self) -> None:
        """Merge the text index into one segment. Bulk inserts leave it in many, and one
        halves the cost of an AND over common words (a few seconds at 1M households)."""
        with self._lock:
            for table in ("search", "search_assisted"):
                self._writer.execute(f"INSERT INTO {table} ({table}) VALUES ('optimize')")

    def _step(self) -> int:
        db = self._writer
        db.execute("BEGIN IMMEDIATE")
        try:
            position = self._stored_position(db)
            notifications = self.app.recorder.select_notifications(position + 1, self.batch)
            if notifications:
                self._apply(db, notifications)
                position = notifications[-1].id
                db.execute("INSERT INTO position VALUES (1, ?) ON CONFLICT (one) DO UPDATE "
                           "SET notification_id = excluded.notification_id", (position,))
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        self._position = position
        return len(notifications)

    def _apply(self, db: sqlite3.Connection, notifications: list[Notification]) -> None:
        changed: dict[UUID, list] = {}
        dismissals = []
        for notification in notifications:
            event = self.app.mapper.to_domain_event(notification)
            if isinstance(event, Household.Event):
                changed.setdefault(event.originator_id, []).append(event)
            elif isinstance(event, DuplicateDismissal.Dismissed):
                dismissals.append(event)
        for household_id, events in changed.items():
            if events[0].originator_version == Household.INITIAL_VERSION:
                household = None
                for event in events:
                    household = event.mutate(household)
            else:  # state as of the last event in this batch, not later
                household = self.app.repository.get(household_id, version=events[-1].originator_version)
            self._write(db, household)
        for event in dismissals:
            self._dismiss(db, *event.household_ids)

    def _write(self, db: sqlite3.Connection, household: Household) -> None:
        row = db.execute("SELECT hid FROM household WHERE id = ?", (household.id.bytes,)).fetchone()
        if row is not None:
            self._forget(db, row[0], keep_household=household.merged_into is None)
        if household.merged_into is not None:
            return  # found through its survivor from now on
        members = household.member_list
        head_key, village_key = fold(household.head.name), fold(household.village)
        words = (head_key, " ".join(fold(m.name) for m in members if m.member_id != household.head_id),
                 f"{village_key} {fold(household.address)}".strip(),
                 f"{_tag('c', household.commune_code)} {_tag('p', household.poverty_status)}")
        values = (household.commune_code, village_key, household.phone, household.poverty_status, *words,
                  orjson.dumps(summary(household)))
        if row is None:
            hid = db.execute("INSERT INTO household (id, commune_code, village_key, phone, poverty_status, "
                             f"{_SEARCH_COLUMNS}, summary) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                             (household.id.bytes, *values)).lastrowid
        else:
            hid = row[0]
            db.execute("UPDATE household SET commune_code = ?, village_key = ?, phone = ?, poverty_status = ?, "
                       "head_key = ?, member_words = ?, place_words = ?, tags = ?, summary = ? WHERE hid = ?",
                       (*values, hid))
        db.execute(f"INSERT INTO search (rowid, {_SEARCH_COLUMNS}) VALUES (?, ?, ?, ?, ?)", (hid, *words))
        if household.poverty_status != "none":
            db.execute(f"INSERT INTO search_assisted (rowid, {_SEARCH_COLUMNS}) VALUES (?, ?, ?, ?, ?)", (hid, *words))
        db.executemany("INSERT INTO citizen VALUES (?, ?)", [(m.cccd, hid) for m in members if m.cccd])
        db.executemany("INSERT INTO episode VALUES (?, ?, ?)", [
            (hid, e.starts_on.isoformat(), e.last_day.isoformat()) for e in household.episodes.values()])
        keys = [("same_head_name_village", _key(f"{household.commune_code}|{village_key}|{head_key}"))]
        if household.phone:
            keys.append(("same_phone", _key(household.phone)))
        for reason, key in keys:
            for other, other_id, other_commune in db.execute(
                    "SELECT d.hid, h.id, h.commune_code FROM dup_key d JOIN household h ON h.hid = d.hid "
                    "WHERE d.kind = ? AND d.key = ? LIMIT ?", (reason, key, PAIRS_PER_KEY)).fetchall():
                first, second = sorted((household.id.bytes, other_id))
                if db.execute("SELECT 1 FROM dismissed WHERE a = ? AND b = ?", (first, second)).fetchone():
                    continue
                (a, ca), (b, cb) = sorted([(hid, household.commune_code), (other, other_commune)])
                db.execute("INSERT OR IGNORE INTO dup_pair VALUES (?, ?, ?, ?, ?)", (a, b, reason, ca, cb))
            db.execute("INSERT INTO dup_key VALUES (?, ?, ?)", (reason, key, hid))

    @staticmethod
    def _forget(db: sqlite3.Connection, hid: int, keep_household: bool) -> None:
        # an external-content index forgets a row when told the words it indexed
        db.execute(f"INSERT INTO search (search, rowid, {_SEARCH_COLUMNS}) "
                   f"SELECT 'delete', hid, {_SEARCH_COLUMNS} FROM household WHERE hid = ?", (hid,))
        db.execute(f"INSERT INTO search_assisted (search_assisted, rowid, {_SEARCH_COLUMNS}) "
                   f"SELECT 'delete', hid, {_SEARCH_COLUMNS} FROM household WHERE hid = ? AND poverty_status != 'none'",
                   (hid,))
        for statement in ("DELETE FROM citizen WHERE hid = ?", "DELETE FROM episode WHERE hid = ?",
                          "DELETE FROM dup_key WHERE hid = ?",
                          "DELETE FROM dup_pair WHERE a = ?", "DELETE FROM dup_pair WHERE b = ?"):
            db.execute(statement, (hid,))
        if not keep_household:
            db.execute("DELETE FROM household WHERE hid = ?", (hid,))

    @staticmethod
    def _dismiss(db: sqlite3.Connection, first: UUID, second: UUID) -> None:
        a, b = sorted((first.bytes, second.bytes))
        db.execute("INSERT OR IGNORE INTO dismissed VALUES (?, ?)", (a, b))
        hids = [r[0] for r in db.execute("SELECT hid FROM household WHERE id IN (?, ?)", (a, b))]
        if len(hids) == 2:
            db.execute("DELETE FROM dup_pair WHERE a = ? AND b = ?", tuple(sorted(hids)))

    # -- queries

    def search(self, q: str | None = None, phone: str | None = None, cccd: str | None = None,
               commune_code: str | None = None, village: str | None = None,
               in_quarantine_on: date | None = None, poverty_status: str | None = None,
               page: int = 1, page_size: int = 20, communes: list[str] | None = None) -> dict[str, Any]:
        """Households matching every filter given; `q` is words (each a prefix of a word in a
        name, the village or the address) or a phone number / CCCD. `communes`, if given,
        confines the answer to those communes (the reader's own)."""
        db = self._reader()
        db.execute("BEGIN")
        try:
            source, where, params, ranked = self._plan(db, q, phone, cccd, commune_code, village,
                                                       in_quarantine_on, poverty_status)
            if communes is not None:
                where.append(f"h.commune_code IN ({','.join('?' * len(communes)) or 'NULL'})")
                params += list(communes)
            cap = TEXT_COUNT_CAP if ranked is not None else COUNT_CAP
            sql_where = f"WHERE {' AND '.join(where)}" if where else ""
            # FTS yields rowids in order; ORDER BY h.hid there would make SQLite sort every match.
            text = source.startswith("search")
            order = "s.rowid" if text else "h.hid"
            if text and len(where) == 1:  # nothing to check in household: skip the join
                source = source.split(" CROSS JOIN ")[0]
            # One pass gives the total (up to the cap) and, mostly, the page too.
            hids = [r[0] for r in db.execute(f"SELECT {order} FROM {source} {sql_where} ORDER BY {order} LIMIT ?",
                                             (*params, cap + 1))]
            total, offset = len(hids), (page - 1) * page_size
            if ranked is not None and total <= RANK_CAP:
                hids = self._best_first(db, hids, ranked)
            if offset + page_size <= len(hids):
                page_hids = hids[offset:offset + page_size]
            else:
                page_hids = [r[0] for r in db.execute(
                    f"SELECT {order} FROM {source} {sql_where} ORDER BY {order} LIMIT ? OFFSET ?",
                    (*params, page_size, offset))] if total > cap else hids[offset:]
            items = self._summaries(db, page_hids)
        finally:
            db.execute("COMMIT")
        return {"items": items, "total": min(total, cap), "total_is_exact": total <= cap,
                "page": page, "page_size": page_size}

    def _plan(self, db: sqlite3.Connection, q: str | None, phone: str | None, cccd: str | None,
              commune_code: str | None, village: str | None, in_quarantine_on: date | None,
              poverty_status: str | None) -> tuple[str, list[str], list[Any], str | None]:
        """FROM, WHERE and parameters, and the words to rank by (None: not a text search).

        Text goes through the FTS index, except inside a small commune, where reading its
        few hundred rows is faster than intersecting the doclists of common words.
        """
        source, where, params = "household h", [], []
        words, number, ranked = fold(q).split(), _as_number(q), None
        if number:
            where.append("(h.phone = ? OR h.hid IN (SELECT hid FROM citizen WHERE cccd = ?))")
            params += list(number)
        elif words:
            ranked = " ".join(words)
            if commune_code and self._small_commune(db, commune_code):
                text = "(' ' || h.head_key || ' ' || h.member_words || ' ' || h.place_words)"
                where += [f"instr({text}, ?) > 0"] * len(words)
                params += [f" {w}" for w in words]
            else:
                # Each word a prefix (the 1-6 letter prefix indexes make each a single doclist);
                # commune and poverty status ride along as tag tokens. CROSS JOIN keeps the
                # text index in the driving seat.
                terms = [f'"{w}"*' for w in words]
                terms += [f'"{_tag("c", commune_code)}"'] if commune_code else []
                terms += [f'"{_tag("p", poverty_status)}"'] if poverty_status else []
                table = "search_assisted" if poverty_status and poverty_status != "none" else "search"
                source = f"{table} s CROSS JOIN household h ON h.hid = s.rowid"
                where.append(f"{table} MATCH ?")
                params.append(" AND ".join(terms))
        selective = bool(where) or bool(phone or cccd or commune_code or village)
        for column, value in (("h.phone", phone), ("h.commune_code", commune_code),
                              ("h.village_key", fold(village) if village else None),
                              # unary + keeps the planner off this unselective index when another helps
                              ("+h.poverty_status" if selective else "h.poverty_status", poverty_status)):
            if value:
                where.append(f"{column} = ?")
                params.append(value)
        if cccd:
            where.append("h.hid IN (SELECT hid FROM citizen WHERE cccd = ?)")
            params.append(cccd)
        if in_quarantine_on:
            where.append("h.hid IN (SELECT hid FROM episode WHERE last_day >= ? AND starts_on <= ?)")
            params += [in_quarantine_on.isoformat()] * 2
        return source, where, params, ranked

    @staticmethod
    def _small_commune(db: sqlite3.Connection, commune_code: str) -> bool:
        row = db.execute("SELECT count(*) FROM (SELECT 1 FROM household WHERE commune_code = ? LIMIT ?)",
                         (commune_code, SMALL_COMMUNE + 1)).fetchone()
        return row[0] <= SMALL_COMMUNE

    @staticmethod
    def _best_first(db: sqlite3.Connection, hids: list[int], words: str) -> list[int]:
        """Heads named exactly so first, then heads whose name starts so, then the rest."""
        marks = ",".join("?" * len(hids))
        heads = dict(db.execute(f"SELECT hid, head_key FROM household WHERE hid IN ({marks})", hids))
        return sorted(hids, key=lambda hid: (heads[hid] != words, not heads[hid].startswith(words), hid))

    @staticmethod
    def _summaries(db: sqlite3.Connection, hids: list[int]) -> list[dict[str, Any]]:
        marks = ",".join("?" * len(hids))
        found = dict(db.execute(f"SELECT hid, summary FROM household WHERE hid IN ({marks})", hids))
        return [orjson.loads(found[hid]) for hid in hids]

    def duplicates(self, commune_code: str | None = None, page: int = 1, page_size: int = 20,
                   communes: list[str] | None = None) -> dict[str, Any]:
        """Suspected duplicate pairs, until merged or dismissed; with `communes`, only pairs
        whose both households are in those communes."""
        clauses, params = (["(commune_a = ? OR commune_b = ?)"], [commune_code] * 2) if commune_code else ([], [])
        if communes is not None:
            marks = ",".join("?" * len(communes)) or "NULL"
            clauses.append(f"commune_a IN ({marks}) AND commune_b IN ({marks})")
            params += [*communes, *communes]
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        db = self._reader()
        db.execute("BEGIN")
        try:
            total = db.execute(f"SELECT count(*) FROM (SELECT 1 FROM dup_pair {where} GROUP BY a, b)",
                               params).fetchone()[0]
            pairs = db.execute(f"SELECT a, b, group_concat(reason) FROM dup_pair {where} GROUP BY a, b "
                               "ORDER BY a, b LIMIT ? OFFSET ?", (*params, page_size, (page - 1) * page_size)
                               ).fetchall()
            hids = {hid for a, b, _ in pairs for hid in (a, b)}
            marks = ",".join("?" * len(hids))
            summaries = {hid: orjson.loads(s) for hid, s in db.execute(
                f"SELECT hid, summary FROM household WHERE hid IN ({marks})", list(hids))}
        finally:
            db.execute("COMMIT")
        items = [{"households": [summaries[a], summaries[b]], "reasons": sorted(reasons.split(","))}
                 for a, b, reasons in pairs]
        return {"items": items, "total": total, "page": page, "page_size": page_size}

    def close(self) -> None:
        self._writer.close()


def _as_number(q: str | None) -> tuple[str, str] | None:
    """A query that is a phone number or a CCCD: (normalised phone, digits)."""
    digits = re.sub(r"[\s.\-+()]", "", q or "")
    if len(digits) < 9 or not digits.isascii() or not digits.isdigit():
        return None
    try:
        phone = check_phone(q or "")
    except Exception:  # noqa: BLE001 - not a phone: maybe a CCCD
        phone = digits
    return phone, digits


def lookup_of(app: Any) -> Lookup:
    """The application's lookup model (one per application object, created on first use)."""
    return read_model(app, Lookup, "lookup.sqlite")


async def project(app: Any) -> None:
    """Background loop for ServiceSpec.background: keep the lookup model current.

    One batch per thread hop, and a cancelled loop waits for its batch to finish, so the
    runtime never closes the application under a running batch.
    """
    lookup = await in_thread(lookup_of, app)
    since_optimize = 0
    while True:
        try:
            applied = await in_thread(lookup.catch_up, lookup.batch)
            since_optimize += applied
            if not applied and since_optimize >= OPTIMIZE_AFTER:
                await in_thread(lookup.optimize)
                since_optimize = 0
        except asyncio.CancelledError:
            raise
        except Exception:  # noqa: BLE001 - store unreachable for a moment: try again
            log.exception("lookup projection failed; retrying")
            await asyncio.sleep(1)
            continue
        if not applied:
            await asyncio.sleep(0.05)
