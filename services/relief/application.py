"""The relief application and how it follows households' contract events."""

from uuid import UUID

from contracts import (
    HouseholdCorrected,
    HouseholdRegistered,
    HouseholdsMerged,
    MembersChanged,
    QuarantineEnded,
    QuarantineStarted,
)
from services.common.errors import NotFound
from services.common.store import ServiceApplication, UnitOfWork
from services.relief.distribution import DistributionCommands
from services.relief.domain import HouseholdEligibility, OutOfStep
from services.relief.funds import FundsCommands
from services.relief.transfers import TransferList


class Relief(TransferList, FundsCommands, DistributionCommands, ServiceApplication):
    def household(self, household_id: UUID) -> HouseholdEligibility:
        found = self.get_or_none(household_id)
        if not isinstance(found, HouseholdEligibility):
            raise NotFound("Dữ liệu cứu trợ chưa có hộ này", "Relief has not heard of this household",
                           household_id=str(household_id))
        return found


def _known(uow: UnitOfWork, household_id: UUID) -> HouseholdEligibility:
    household = uow.get(household_id)
    if household is None:
        raise OutOfStep(f"no household {household_id} registered before this event")
    return household


def on_registered(uow: UnitOfWork, e: HouseholdRegistered) -> None:
    if uow.get(e.source_id) is not None:
        return  # a copy of the registration
    uow.add(HouseholdEligibility(
        household_id=e.source_id, source_version=e.source_version, commune_code=e.commune_code,
        village=e.village, member_count=e.member_count, poverty_status=e.poverty_status.value,
        vulnerability=e.vulnerability.model_dump(),
    ))


def on_corrected(uow: UnitOfWork, e: HouseholdCorrected) -> None:
    household = _known(uow, e.source_id)
    if household.is_new(e.source_version):
        household.correct(e.source_version, e.commune_code, e.village, e.poverty_status.value)


def on_members_changed(uow: UnitOfWork, e: MembersChanged) -> None:
    household = _known(uow, e.source_id)
    if household.is_new(e.source_version):
        household.change_members(e.source_version, e.member_count, e.vulnerability.model_dump())


def on_quarantine_started(uow: UnitOfWork, e: QuarantineStarted) -> None:
    household = _known(uow, e.source_id)
    if household.is_new(e.source_version):
        household.start_quarantine(e.source_version, e.episode_id, e.starts_on, e.expected_end_on)


def on_quarantine_ended(uow: UnitOfWork, e: QuarantineEnded) -> None:
    household = _known(uow, e.source_id)
    if household.is_new(e.source_version):
        household.end_quarantine(e.source_version, e.episode_id, e.ended_on)


def on_merged(uow: UnitOfWork, e: HouseholdsMerged) -> None:
    survivor = _known(uow, e.source_id)
    if survivor.is_new(e.source_version):
        duplicate = _known(uow, e.merged_id)
        survivor.absorb(e.source_version, e.merged_id)
        duplicate.merge_into(e.source_id)


HOUSEHOLD_HANDLERS = {
    HouseholdRegistered: on_registered,
    HouseholdCorrected: on_corrected,
    MembersChanged: on_members_changed,
    QuarantineStarted: on_quarantine_started,
    QuarantineEnded: on_quarantine_ended,
    HouseholdsMerged: on_merged,
}
