"""The event store every service builds on, and the unit of work consumers write through."""

from datetime import date
from typing import Any
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError, Application, ProcessingEvent
from eventsourcing.domain import Aggregate
from eventsourcing.persistence import JSONTranscoder, ProcessRecorder, Tracking, Transcoding

from services.common.encoding import FastEncoding
from services.common.settings import Settings


class DateAsISO(Transcoding):
    type = date
    name = "date_iso"

    def encode(self, obj: date) -> str:
        return obj.isoformat()

    def decode(self, data: str) -> date:
        return date.fromisoformat(data)


class PersonalDataKeyError(RuntimeError):
    """The personal-data key does not open this event store."""


class ServiceApplication(Application):
    """An Application whose recorder also keeps tracking records (positions of
    upstream streams and of the outbox relay), in the same database as its events."""

    recorder: ProcessRecorder
    # events stored and read back through orjson (services/common/encoding.py), and more read back so
    fast_events: tuple[type, ...] = ()
    fast_reads: tuple[type, ...] = ()

    def __init__(self, settings: Settings, env: dict[str, Any] | None = None):
        self.settings = settings
        env = {**settings.eventsourcing_env(), **(env or {})}
        if settings.uses_postgres:
            create_schema(env)
        super().__init__(env=env)
        self.encoding = FastEncoding(self.mapper, self.fast_events, self.fast_reads)
        if env.get("CIPHER_KEY"):
            self._check_cipher_key()

    def register_transcodings(self, transcoder: JSONTranscoder) -> None:
        super().register_transcodings(transcoder)
        transcoder.register(DateAsISO())

    def _check_cipher_key(self) -> None:
        """A wrong key (or a store written without one) must stop the service, not serve garbage."""
        first = self.recorder.select_notifications(1, 1)
        if not first:
            return
        try:
            self.mapper.to_domain_event(first[0])
        except ValueError as error:
            self.close()
            raise PersonalDataKeyError(
                f"The {self.settings.service} event store cannot be decrypted with the configured key "
                "(PERSONAL_DATA_KEY / PERSONAL_DATA_KEY_FILE): wrong key, or a store written without "
                f"encryption ({error})") from None

    def construct_recorder(self) -> ProcessRecorder:
        return self.factory.process_recorder()

    def get_or_none(self, aggregate_id: UUID) -> Aggregate | None:
        try:
            return self.repository.get(aggregate_id)
        except AggregateNotFoundError:
            return None

    def position(self, tracking_name: str) -> int:
        return self.recorder.max_tracking_id(tracking_name) or 0

    def close(self) -> None:
        for model in self.__dict__.pop("_read_models", {}).values():  # projection.read_model()
            model.close()
        super().close()

    def ping(self) -> bool:
        self.recorder.max_notification_id()
        return True


def create_schema(env: dict[str, Any]) -> None:
    """eventsourcing creates tables but not the per-service schema they live in."""
    import psycopg
    from psycopg import sql

    with psycopg.connect(
        dbname=env["POSTGRES_DBNAME"], host=env["POSTGRES_HOST"], port=env.get("POSTGRES_PORT", "5432"),
        user=env["POSTGRES_USER"], password=env.get("POSTGRES_PASSWORD", ""), autocommit=True,
    ) as conn:
        conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(env["POSTGRES_SCHEMA"])))


class UnitOfWork:
    """Aggregates touched while handling a batch of messages, committed together
    with the batch's tracking record in one transaction."""

    def __init__(self, app: ServiceApplication):
        self.app = app
        self._aggregates: dict[UUID, Aggregate] = {}

    def get(self, aggregate_id: UUID) -> Aggregate | None:
        if aggregate_id not in self._aggregates:
            found = self.app.get_or_none(aggregate_id)
            if found is None:
                return None
            self._aggregates[aggregate_id] = found
        return self._aggregates[aggregate_id]

    def add(self, aggregate: Aggregate) -> None:
        self._aggregates[aggregate.id] = aggregate

    def commit(self, tracking: Tracking) -> None:
        processing = ProcessingEvent(tracking)
        processing.collect_events(*self._aggregates.values())
        self.app._record(processing)  # noqa: SLF001 - the public save() takes no tracking
        self._aggregates.clear()
