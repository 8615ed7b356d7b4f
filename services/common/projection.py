"""Local read models: rebuildable SQLite projections of a service's own notification log.

A projection reads only the notification log, so it works the same over a SQLite or a
PostgreSQL event store; each process keeps its own file next to its other local data.
The rows of a batch and the position after it commit in one SQLite transaction (exactly
once). Bump `schema_version` when the tables change: an older file is dropped and rebuilt.

Subclasses set `schema` and `schema_version` and implement `apply(db, notifications)`.
"""

import asyncio
import logging
import sqlite3
import threading
from pathlib import Path

from eventsourcing.persistence import Notification

from services.common.store import ServiceApplication
from services.common.threads import in_thread

log = logging.getLogger(__name__)

_opening = threading.Lock()


def read_model(app: ServiceApplication, cls: type, filename: str):
    """The application's `cls` read model, a file in its service folder: opened on first use,
    one per application object, closed by the application's close()."""
    with _opening:
        models = app.__dict__.setdefault("_read_models", {})
        model = models.get(cls)
        if model is None:
            model = models[cls] = cls(app, app.settings.service_dir / filename)
        return model


BOOKKEEPING = """
CREATE TABLE IF NOT EXISTS projection_position (
    one INTEGER PRIMARY KEY CHECK (one = 1), notification_id INTEGER NOT NULL, schema_version INTEGER NOT NULL);
"""


class LocalProjection:
    schema: str = ""
    schema_version: int = 1

    def __init__(self, app: ServiceApplication, path: Path, batch: int = 2000):
        self.app = app
        self.path = Path(path)
        self.batch = batch
        self._lock = threading.Lock()
        self._local = threading.local()
        self._writer = self.connect(check_same_thread=False)
        self._position = self._open()

    def connect(self, check_same_thread: bool = True) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=check_same_thread)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        return db

    def _open(self) -> int:
        db = self._writer
        db.executescript(BOOKKEEPING)
        row = db.execute("SELECT notification_id, schema_version FROM projection_position").fetchone()
        stale = row is not None and (row[1] != self.schema_version
                                     or row[0] > (self.app.recorder.max_notification_id() or 0))
        if stale:
            log.warning("%s is stale or ahead of the event store: rebuilding it", self.path)
            self._drop_tables()
            row = None
        db.executescript(self.schema)
        return row[0] if row else 0

    def _drop_tables(self) -> None:
        tables = [r[0] for r in self._writer.execute(
            "SELECT name FROM sqlite_master WHERE type IN ('table', 'view') AND name NOT LIKE 'sqlite_%'")]
        for table in tables:
            self._writer.execute(f'DROP TABLE IF EXISTS "{table}"')
        self._writer.executescript(BOOKKEEPING)

    @property
    def position(self) -> int:
        return self._position

    def reader(self) -> sqlite3.Connection:
        """A connection for the calling thread (readers never block the writer in WAL mode)."""
        db = getattr(self._local, "db", None)
        if db is None:
            db = self._local.db = self.connect()
        return db

    def apply(self, db: sqlite3.Connection, notifications: list[Notification]) -> None:
        raise NotImplementedError

    def catch_up(self) -> int:
        """Apply everything stored before this call; returns how many notifications.
        Query methods call it first so a client reads its own writes."""
        target = self.app.recorder.max_notification_id() or 0
        applied = 0
        with self._lock:
            while self._position < target:
                count = self._step()
                if count == 0:
                    break
                applied += count
        return applied

    def _step(self) -> int:
        db = self._writer
        notifications = self.app.recorder.select_notifications(self._position + 1, self.batch)
        if not notifications:
            return 0
        db.execute("BEGIN IMMEDIATE")
        try:
            self.apply(db, list(notifications))
            db.execute(
                "INSERT INTO projection_position VALUES (1, ?, ?) ON CONFLICT (one) DO UPDATE "
                "SET notification_id = excluded.notification_id, schema_version = excluded.schema_version",
                (notifications[-1].id, self.schema_version))
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        self._position = notifications[-1].id
        return len(notifications)

    async def follow(self, poll_seconds: float = 0.05) -> None:
        """Background loop (ServiceSpec.background): keep the projection current."""
        while True:
            try:
                applied = await in_thread(self.catch_up)
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - store unreachable for a moment: try again
                log.exception("projection %s failed; retrying", self.path.name)
                await asyncio.sleep(1)
                continue
            if not applied:
                await asyncio.sleep(poll_seconds)

    def close(self) -> None:
        self._writer.close()
