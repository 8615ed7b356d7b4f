"""The shared store on both backends: big atomic saves, once-only ids, tracking."""

import uuid

import pytest
from eventsourcing.domain import Aggregate, event
from eventsourcing.persistence import IntegrityError, Tracking

from services.common.store import ServiceApplication, UnitOfWork


class Parcel(Aggregate):
    """A parcel's id is derived from its label, as once-only rules derive theirs (uuid5)."""

    @staticmethod
    def create_id(label: str) -> uuid.UUID:
        return uuid.uuid5(uuid.NAMESPACE_URL, label) if label.startswith("once:") else uuid.uuid4()

    @event("Packed")
    def __init__(self, label: str):
        self.label = label


@pytest.fixture
def app(settings_for):
    application = ServiceApplication(settings_for("store"))
    yield application
    application.close()


def test_one_save_of_thousands_of_large_events_commits(app):
    # eventsourcing's pipelined insert never returned from this on PostgreSQL (see pgrecorder)
    parcels = [Parcel(label="x" * 1000) for _ in range(3000)]
    app.save(*parcels)
    assert app.recorder.max_notification_id() >= 3000
    assert app.repository.get(parcels[-1].id).label == "x" * 1000


def test_a_second_creation_of_the_same_id_is_refused_and_writes_nothing(app):
    first = Parcel(label="once:a")
    app.save(first)
    twin = Parcel(label="once:a")
    other = Parcel(label="c")
    assert twin.id == first.id
    with pytest.raises(IntegrityError):
        app.save(other, twin)
    assert app.get_or_none(other.id) is None  # the whole save was refused


def test_effects_and_tracking_commit_together(app):
    uow = UnitOfWork(app)
    parcel = Parcel(label="tracked")
    uow.add(parcel)
    uow.commit(Tracking("UPSTREAM/consumer", 7))
    assert app.position("UPSTREAM/consumer") == 7
    assert app.repository.get(parcel.id).label == "tracked"
    UnitOfWork(app).commit(Tracking("UPSTREAM/consumer", 8))  # a message with no effect still moves on
    assert app.position("UPSTREAM/consumer") == 8
