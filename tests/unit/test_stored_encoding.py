"""The writer's fast encoding stores exactly what eventsourcing's own mapper would: same bytes,
same topic, so any reader (the relay, the audit export, a later version) decodes it unchanged."""

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
from tests.unit.test_ledger_helpers import NOW, RICE, config, issued, learn


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
