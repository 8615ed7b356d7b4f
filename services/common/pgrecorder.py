"""PostgreSQL recorder without psycopg pipeline mode.

eventsourcing 9.5 inserts events in pipeline mode. With a large batch (a few hundred
kilobytes of events in one save, e.g. a round's entitlements or a group commit of
deliveries) the client blocks sending while the server blocks sending results back, and
the save never returns (reproduced here with 5,000 small or 300 large events). The same
statements in one ordinary transaction cost one more round trip and cannot stall.
"""

from collections.abc import Sequence
from typing import Any

from eventsourcing.persistence import InterfaceError, OperationalError, StoredEvent
from eventsourcing.postgres import PostgresProcessRecorder
from eventsourcing.utils import retry

TOPIC = f"{__name__}:ProcessRecorder"


class ProcessRecorder(PostgresProcessRecorder):
    @retry((InterfaceError, OperationalError), max_attempts=10, wait=0.2)
    def insert_events(self, stored_events: Sequence[StoredEvent], **kwargs: Any) -> Sequence[int] | None:
        with self.datastore.get_connection() as conn, conn.transaction(), conn.cursor() as curs:
            self._insert_events(curs, stored_events, **kwargs)  # the tracking record, if any
            if not stored_events:
                return None
            self._insert_stored_events(curs, stored_events, **kwargs)
            return self._fetch_ids_after_insert_events(curs, stored_events, **kwargs)
