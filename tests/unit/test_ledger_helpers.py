"""Helpers shared by the ledger's tests (no tests here): entitlements as relief issues them,
delivery bodies as a volunteer's phone sends them, and sign-in as that volunteer."""

import uuid
from datetime import date, datetime, timezone

from pathlib import Path

from eventsourcing.persistence import Tracking

from contracts import EntitlementCancelled, EntitlementIssued
from services.common.auth import EVERYWHERE, KeyRing, Principal, Role
from services.common.store import UnitOfWork
from services.ledger.application import Ledger, LedgerConfig, on_entitlement_cancelled, on_entitlement_issued
from services.ledger.domain import entitlement_id

NOW = datetime(2021, 7, 20, 8, 0, tzinfo=timezone.utc)
RICE = {"item_code": "rice", "unit": "kg", "quantity": 10}
NOODLES = {"item_code": "noodles", "unit": "goi", "quantity": 30}
TEST_KEY = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="  # bytes 0..31: tests only
COMMUNE = "26734"  # where issued() puts entitlements


def issued(round_id=None, household_id=None, version=1, items=(RICE, NOODLES), cash_vnd=500_000,
           commune_code=COMMUNE) -> EntitlementIssued:
    round_id, household_id = round_id or uuid.uuid4(), household_id or uuid.uuid4()
    return EntitlementIssued(
        event_id=uuid.uuid4(), occurred_at=NOW, source_id=entitlement_id(round_id, household_id),
        source_version=version, round_id=round_id, campaign_id=uuid.uuid4(), household_id=household_id,
        commune_code=commune_code, village="Thôn 3", items=list(items), cash_vnd=cash_vnd,
        eligible_since=date(2021, 7, 15), issued_on=date(2021, 7, 18))


def cancelled(e: EntitlementIssued, version=2) -> EntitlementCancelled:
    return EntitlementCancelled(event_id=uuid.uuid4(), occurred_at=NOW, source_id=e.source_id,
                                source_version=version, round_id=e.round_id, household_id=e.household_id,
                                reason="issued_in_error")


_position = [0]


def learn(app: Ledger, *events) -> None:
    """Apply relief events as the ledger's consumer does (one transaction with tracking)."""
    uow = UnitOfWork(app)
    for e in events:
        (on_entitlement_cancelled if isinstance(e, EntitlementCancelled) else on_entitlement_issued)(uow, e)
    _position[0] += 1
    uow.commit(Tracking("RELIEF/ledger-relief", _position[0]))


def delivery_body(e: EntitlementIssued, volunteer="tnv-07", device="phone-3", items=(RICE, NOODLES),
                  cash_vnd=500_000, **extra) -> dict:
    return {"entitlement_id": str(e.source_id), "items": list(items), "cash_vnd": cash_vnd,
            "volunteer_id": volunteer, "device_id": device, "delivered_at": NOW.isoformat(), **extra}


def config(**kw) -> LedgerConfig:
    return LedgerConfig(signing_key=TEST_KEY, **kw)


def keys_of(where) -> Path:
    """The key ring folder of a TestClient's app, a Settings, or a folder."""
    app = getattr(where, "app", None)
    if app is not None:
        return app.state.keyring.folder
    return Path(getattr(where, "keys_dir", where))


def signed_as(where, user_id: str, role: Role, communes=(EVERYWHERE,)) -> dict[str, str]:
    """An Authorization header for a user whose id is `user_id` (what the ledger records as who acted)."""
    who = Principal(user_id=user_id, username=user_id, role=role, communes=frozenset(communes))
    return {"Authorization": f"Bearer {KeyRing(keys_of(where)).ensure().issue(who)}"}


def volunteer(where, user_id: str = "tnv-07", communes=(COMMUNE,)) -> dict[str, str]:
    return signed_as(where, user_id, Role.volunteer, communes)


def officer(where, user_id: str = "staff-1", communes=(EVERYWHERE,)) -> dict[str, str]:
    return signed_as(where, user_id, Role.relief_officer, communes)


def as_volunteer_of(where, body: dict) -> dict[str, str]:
    """Signed in as the volunteer a delivery body names (or the default one)."""
    return volunteer(where, body.get("volunteer_id") or "tnv-07")
