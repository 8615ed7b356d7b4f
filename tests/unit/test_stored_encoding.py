"""The writer's fast encoding stores exactly what eventsourcing's own mapper would: same bytes,
same topic, so any reader (the relay, the audit export, a later version) decodes it unchanged.
Its fast reading gives back exactly the events the mapper would."""

import uuid
from datetime import date

import pytest
from eventsourcing.cryptography import AESCipher
from eventsourcing.persistence import TranscodingNotRegisteredError

from services.common.natsserver import free_port
from services.common.settings import CIPHER_TOPIC, Settings
from services.ledger.application import Ledger
from services.ledger.deliveries import RecordDelivery, ReverseDelivery, SignCheckpoint
from services.ledger.domain import LOG_ID, WRITER_EVENTS, EntryAppended
from tests.unit.test_ledger_helpers import NOW, RICE, cancelled, config, issued, learn


def ledger(tmp_path, env=None) -> Ledger:
    settings = Settings.from_env("ledger", {"DATA_DIR": str(tmp_path), "NATS_URL": f"nats://127.0.0.1:{free_port()}"})
    return Ledger(settings, config(checkpoint_seconds=3600), env=env)


def delivery(entitlement, volunteer="tnv-07", key=None) -> RecordDelivery:
    return RecordDelivery(idempotency_key=key or str(uuid.uuid4()), body_hash="b" * 64,
                          entitlement_id=entitlement.source_id, items=[RICE], cash_vnd=500_000,
                          volunteer_id=volunteer, device_id="phone-3", delivered_at=NOW.isoformat(),
                          evidence_hash=None)


def record_a_day(app: Ledger) -> list:
    """Deliveries, an "already served" refusal, a reversal and a checkpoint: every kind of event
    the writer saves, each paired with what the fast encoding stored for it."""
    seen = []
    encode = app.encoding.to_stored_event

    def spy(event):
        stored = encode(event)
        seen.append((event, stored))
        return stored

    app.encoding.to_stored_event = spy
    first, second = issued(), issued()
    learn(app, first, second)
    outcomes = app.record([delivery(first), delivery(second, volunteer="tnv-Đức"), delivery(first, "tnv-2")])
    assert [o.status for o in outcomes] == [201, 201, 409]
    reversal = ReverseDelivery(reverses_seq=outcomes[0].seq, reason="wrong_household", reversed_by="staff-1",
                               body_hash="c" * 64, idempotency_key=str(uuid.uuid4()))
    assert [o.status for o in app.record([reversal, SignCheckpoint()])] == [201, 204]
    return seen


def test_the_writer_stores_the_same_bytes_as_the_mapper(tmp_path):
    app = ledger(tmp_path)
    try:
        seen = record_a_day(app)
        assert {type(event) for event, _ in seen} == set(WRITER_EVENTS)
        for event, stored in seen:
            assert stored == app.mapper.to_stored_event(event), type(event)
    finally:
        app.close()


def test_compressed_and_encrypted_stores_read_back_the_same_events(tmp_path):
    env = {"CIPHER_TOPIC": CIPHER_TOPIC, "CIPHER_KEY": AESCipher.create_key(16),
           "COMPRESSOR_TOPIC": "eventsourcing.compressor:ZlibCompressor"}
    app = ledger(tmp_path, env)
    try:
        seen = record_a_day(app)
        assert app.mapper.cipher is not None and app.mapper.compressor is not None
        for event, stored in seen:
            assert app.mapper.to_domain_event(stored) == event
            assert same_event(app.encoding.to_domain_event(stored), event)
    finally:
        app.close()


def same_event(read, expected) -> bool:
    """Same class, same values and value types (a UUID left as a str would compare unequal)."""
    return (type(read) is type(expected) and vars(read) == vars(expected)
            and {k: type(v) for k, v in vars(read).items()} == {k: type(v) for k, v in vars(expected).items()})


def test_events_read_back_the_fast_way_are_those_the_mapper_reads(tmp_path):
    app = ledger(tmp_path)
    try:
        record_a_day(app)
        third = issued()
        learn(app, third, issued(third.round_id, third.household_id, version=2, cash_vnd=600_000),
              cancelled(third, version=3))
        stored = app.recorder.select_notifications(1, 1000)
        topics = {n.topic for n in stored}
        assert topics >= app.encoding.read_topics  # every kind read the fast way is checked
        for notification in stored:
            assert same_event(app.encoding.to_domain_event(notification), app.mapper.to_domain_event(notification))
    finally:
        app.close()


def test_values_the_fast_reading_cannot_take_are_left_to_the_mapper(tmp_path):
    app = ledger(tmp_path)
    try:
        tricky = [{"on": date(2021, 7, 20)},  # a wrapped value below the top level
                  {"cash_vnd": 10 ** 30},  # beyond orjson's 64-bit integers
                  {"note": '{"_type_":"datetime_iso","_data_":"2021-07-20"}'},  # looks wrapped, is text
                  {"_type_": "uuid_hex", "_data_": "not a uuid", "more": 1}]
        app.save(*[EntryAppended(originator_id=LOG_ID, originator_version=i, timestamp=NOW, entry=entry,
                                 leaf_hash="a" * 64, entitlement_version=2) for i, entry in enumerate(tricky, 1)])
        for notification in app.recorder.select_notifications(1, 10):
            read = app.encoding.to_domain_event(notification)
            assert same_event(read, app.mapper.to_domain_event(notification))
        assert read.entry == tricky[-1]
    finally:
        app.close()


def test_values_outside_the_fast_path_are_left_to_the_mapper(tmp_path):
    app = ledger(tmp_path)
    try:
        dated = EntryAppended(originator_id=LOG_ID, originator_version=1, timestamp=NOW,
                              entry={"on": date(2021, 7, 20), "ids": [str(uuid.uuid4())]},
                              leaf_hash="a" * 64, entitlement_version=2)
        assert app.encoding.to_stored_event(dated) == app.mapper.to_stored_event(dated)
        huge = EntryAppended(originator_id=LOG_ID, originator_version=1, timestamp=NOW,
                             entry={"cash_vnd": 10 ** 30}, leaf_hash="a" * 64, entitlement_version=2)
        assert app.encoding.to_stored_event(huge) == app.mapper.to_stored_event(huge)
        odd = EntryAppended(originator_id=LOG_ID, originator_version=1, timestamp=NOW,
                            entry={"ids": {uuid.uuid4()}}, leaf_hash="a" * 64, entitlement_version=2)
        with pytest.raises(TranscodingNotRegisteredError):
            app.encoding.to_stored_event(odd)
    finally:
        app.close()
