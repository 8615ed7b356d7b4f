"""Helpers for the distribution tests: a campaign and donations through the real funds side,
and households' contract events applied as relief's consumer would."""

import uuid
from datetime import date, datetime, timezone
from uuid import UUID

from eventsourcing.persistence import Tracking

from contracts import HouseholdRegistered, HouseholdsMerged, QuarantineEnded, QuarantineStarted
from services.common.store import ServiceApplication, UnitOfWork
from services.relief.application import HOUSEHOLD_HANDLERS

NOW = datetime(2021, 7, 20, 8, 0, tzinfo=timezone.utc)
ACCOUNT = {"kind": "bank", "number": "0011001234567", "bank_name": "Vietcombank"}
COMMUNE, OTHER_COMMUNE = "00070", "00004"


def open_campaign(app) -> UUID:
    return app.open_campaign("ban-van-dong", level="commune", unit_code=COMMUNE, name="Chung tay chống dịch",
                             purpose="Hỗ trợ hộ cách ly", legal_basis="decree_64_2008",
                             call_document="Thư kêu gọi số 01/TKG-MTTQ", opens_on=date(2021, 7, 1),
                             closes_on=date(2021, 9, 30), accounts=[ACCOUNT]).id


def give(app, campaign_id: UUID, lines: dict[str, int], earmark: dict | None = None) -> UUID:
    """A donation of `lines` ("cash" in VND); returns the donation id."""
    cash = lines.get("cash", 0)
    goods = [{"item_code": code, "quantity": q, "expiry_date": date(2030, 1, 1)}
             for code, q in lines.items() if code != "cash"]
    donation, _ = app.record_donation(
        campaign_id, "thu-quy", donor={"kind": "organisation", "name": "Công ty A", "public_consent": True},
        received_on=date(2021, 7, 21), channel="goods" if goods else "cash", cash_vnd=cash, goods=goods,
        earmark=earmark, funding_source=None, note=None)
    return donation.id


def available(app, campaign_id: UUID) -> dict[str, int]:
    """Free stock per item (available, less what is kept for earmarked gifts)."""
    return {code: level.available - level.earmarked for code, level in app.stock_levels(campaign_id).items()}


# -- household events as households' relay would publish them

def envelope(household_id: UUID, version: int) -> dict:
    return {"event_id": uuid.uuid4(), "occurred_at": NOW, "source_id": household_id, "source_version": version}


class Feed:
    """Applies households' contract events to relief like its tracked consumer would."""

    def __init__(self, app: ServiceApplication):
        self.app = app
        self.versions: dict[UUID, int] = {}
        self.position = 0

    def _next(self, household_id: UUID) -> dict:
        self.versions[household_id] = self.versions.get(household_id, 0) + 1
        return envelope(household_id, self.versions[household_id])

    def apply(self, *events) -> None:
        uow = UnitOfWork(self.app)
        for e in events:
            HOUSEHOLD_HANDLERS[type(e)](uow, e)
        self.position += 1
        uow.commit(Tracking("HOUSEHOLDS/test", self.position))

    def register(self, commune=COMMUNE, village="Thôn 1", members=3, poverty="none", **flags) -> UUID:
        household_id = uuid.uuid4()
        self.apply(HouseholdRegistered(**self._next(household_id), commune_code=commune, village=village,
                                       member_count=members, poverty_status=poverty, vulnerability=flags))
        return household_id

    def quarantine(self, household_id: UUID, starts=date(2021, 7, 20), ends=date(2021, 8, 3)) -> UUID:
        episode = uuid.uuid4()
        self.apply(QuarantineStarted(**self._next(household_id), episode_id=episode, starts_on=starts,
                                     expected_end_on=ends))
        return episode

    def end(self, household_id: UUID, episode: UUID, on: date) -> None:
        self.apply(QuarantineEnded(**self._next(household_id), episode_id=episode, ended_on=on))

    def merge(self, survivor: UUID, duplicate: UUID) -> None:
        self.apply(HouseholdsMerged(**self._next(survivor), merged_id=duplicate))
