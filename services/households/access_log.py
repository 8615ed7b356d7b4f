"""Who read a household's record, when, and why (Decree 13/2023: processing of personal data is logged).

One stream per household, one small event per read, never published on the bus. Reads are
group-committed: one writer thread saves whatever reads queued up while it was saving, in one
transaction, and each request waits for its own to be stored before the record is shown. A
read appends without loading the stream: the next version comes from the stream's last stored
event (one indexed lookup per household in the batch); a collision with another process retries.
"""

import logging
import queue
import threading
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any
from uuid import UUID, uuid5

from eventsourcing.domain import DomainEvent
from eventsourcing.persistence import IntegrityError

from services.common.auth import Principal
from services.common.store import ServiceApplication
from services.households.domain import NAMESPACE

log = logging.getLogger(__name__)
ATTEMPTS = 5
MAX_REASON = 500
MAX_BATCH = 500
WAIT_SECONDS = 30
_STOP = object()


def log_id(household_id: UUID) -> UUID:
    return uuid5(NAMESPACE, f"access-log:{household_id}")


@dataclass(frozen=True)
class RecordRead(DomainEvent):
    household_id: UUID
    user_id: str
    username: str
    role: str
    what: str  # "detail" or "history"
    reason: str | None


class ReadLog:
    """The writer of one application's access log."""

    def __init__(self, app: ServiceApplication):
        self.app = app
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="households-access-log", daemon=True)
        self._thread.start()

    def record(self, household_id: UUID, who: Principal, what: str, reason: str | None = None) -> None:
        """Store one read (with whatever else is queued); returns once it is stored."""
        read = {"household_id": household_id, "user_id": who.user_id, "username": who.username,
                "role": str(who.role), "what": what, "reason": (reason or "").strip()[:MAX_REASON] or None}
        future: Future = Future()
        self._queue.put((read, future))
        future.result(timeout=WAIT_SECONDS)

    def stop(self) -> None:
        self._queue.put(_STOP)
        self._thread.join(timeout=WAIT_SECONDS)

    def _run(self) -> None:
        while True:
            job = self._queue.get()
            if job is _STOP:
                return
            jobs = [job]
            while len(jobs) < MAX_BATCH:
                try:
                    job = self._queue.get_nowait()
                except queue.Empty:
                    break
                if job is _STOP:
                    self._queue.put(_STOP)  # after this batch
                    break
                jobs.append(job)
            self._commit(jobs)

    def _commit(self, jobs: list[tuple[dict[str, Any], Future]]) -> None:
        try:
            self._save([read for read, _ in jobs])
        except BaseException as error:  # noqa: BLE001 - every waiting reader learns of it
            log.exception("access log batch of %d failed", len(jobs))
            for _, future in jobs:
                future.set_exception(error)
            return
        for _, future in jobs:
            future.set_result(None)

    def _save(self, reads: list[dict[str, Any]]) -> None:
        for _ in range(ATTEMPTS):
            versions: dict[UUID, int] = {}
            events = []
            for read in reads:
                stream = log_id(read["household_id"])
                if stream not in versions:
                    versions[stream] = self._last_version(stream)
                versions[stream] += 1
                events.append(RecordRead(originator_id=stream, originator_version=versions[stream],
                                         timestamp=RecordRead.create_timestamp(), **read))
            try:
                self.app.save(*events)
                return
            except IntegrityError:
                continue  # another process appended to one of these streams: number again
        raise IntegrityError("access log kept colliding")

    def _last_version(self, stream: UUID) -> int:
        last = self.app.recorder.select_events(stream, desc=True, limit=1)
        return last[0].originator_version if last else 0


_lock = threading.Lock()


def read_log_of(app: Any) -> ReadLog:
    """The application's access-log writer (one per application object, made on first use)."""
    with _lock:
        writer = getattr(app, "_read_log", None)
        if writer is None:
            writer = app._read_log = ReadLog(app)
        return writer


def stop_read_log(app: Any) -> None:
    with _lock:
        writer = getattr(app, "_read_log", None)
        app._read_log = None
    if writer is not None:
        writer.stop()


def record_read(app: ServiceApplication, household_id: UUID, who: Principal, what: str,
                reason: str | None = None) -> None:
    read_log_of(app).record(household_id, who, what, reason)


def reads(app: ServiceApplication, household_id: UUID) -> list[dict[str, Any]]:
    return [{"at": e.timestamp.isoformat(), "user_id": e.user_id, "username": e.username, "role": e.role,
             "what": e.what, "reason": e.reason} for e in app.events.get(log_id(household_id))]
