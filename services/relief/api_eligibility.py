"""HTTP: what relief knows about a household's eligibility."""

from datetime import date
from uuid import UUID

from fastapi import APIRouter, Depends
from pydantic import BaseModel

from services.common.web import application
from services.relief.access import SIGNED_IN, Reader
from services.relief.application import Relief
from services.relief.domain import HouseholdEligibility

router = APIRouter(prefix="/eligibility", tags=["eligibility"], dependencies=SIGNED_IN)


class EpisodeView(BaseModel):
    episode_id: UUID
    starts_on: date
    expected_end_on: date
    ended_on: date | None


class HouseholdEligibilityView(BaseModel):
    household_id: UUID
    commune_code: str
    village: str
    member_count: int
    poverty_status: str
    vulnerability: dict[str, int]
    in_quarantine: bool
    quarantine_episodes: list[EpisodeView]
    merged_into: UUID | None
    merged_ids: list[UUID]
    source_version: int

    @classmethod
    def of(cls, household: HouseholdEligibility) -> "HouseholdEligibilityView":
        return cls(
            household_id=household.id, commune_code=household.commune_code, village=household.village,
            member_count=household.member_count, poverty_status=household.poverty_status,
            vulnerability=household.vulnerability, in_quarantine=household.in_quarantine,
            quarantine_episodes=[EpisodeView(**vars(e)) for e in household.episodes.values()],
            merged_into=household.merged_into, merged_ids=household.merged_ids,
            source_version=household.source_version,
        )


@router.get("/households/{household_id}", summary="Eligibility facts relief holds for a household")
def household_eligibility(household_id: UUID, _: Reader,
                          app: Relief = Depends(application)) -> HouseholdEligibilityView:
    """Built from households' events only: commune, village, member count, poverty status,
    vulnerability counts and quarantine episodes. A merged duplicate names its survivor."""
    return HouseholdEligibilityView.of(app.household(household_id))
