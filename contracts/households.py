"""Events published by services/households.

Personal data (names, CCCD, phones, health status such as F0/F1) never appears here:
relief needs to know who is eligible, not who they are.
"""

from datetime import date
from enum import StrEnum
from typing import ClassVar
from uuid import UUID

from pydantic import BaseModel, Field

from contracts.base import ContractEvent, register


class PovertyStatus(StrEnum):
    none = "none"
    near_poor = "near_poor"
    poor = "poor"
    social_protection = "social_protection"


class Vulnerability(BaseModel):
    """How many members carry each flag (counts only, never who)."""

    elderly: int = Field(0, ge=0)
    child_under_6: int = Field(0, ge=0)
    pregnant: int = Field(0, ge=0)
    disabled: int = Field(0, ge=0)
    chronic_illness: int = Field(0, ge=0)


@register
class HouseholdRegistered(ContractEvent):
    subject: ClassVar[str] = "households.household.registered.v1"
    commune_code: str = Field(pattern=r"^\d{5}$")
    village: str
    member_count: int = Field(ge=1)
    poverty_status: PovertyStatus
    vulnerability: Vulnerability


@register
class HouseholdCorrected(ContractEvent):
    subject: ClassVar[str] = "households.household.corrected.v1"
    commune_code: str = Field(pattern=r"^\d{5}$")
    village: str
    poverty_status: PovertyStatus


@register
class MembersChanged(ContractEvent):
    subject: ClassVar[str] = "households.household.members-changed.v1"
    member_count: int = Field(ge=1)
    vulnerability: Vulnerability


@register
class QuarantineStarted(ContractEvent):
    """A quarantine episode began. Its kind (F0/F1) is health data and stays home."""

    subject: ClassVar[str] = "households.household.quarantine-started.v1"
    episode_id: UUID
    starts_on: date
    expected_end_on: date


@register
class QuarantineEnded(ContractEvent):
    subject: ClassVar[str] = "households.household.quarantine-ended.v1"
    episode_id: UUID
    ended_on: date


@register
class HouseholdsMerged(ContractEvent):
    """`merged_id` was a duplicate of `source_id` (the survivor) and now resolves to it."""

    subject: ClassVar[str] = "households.household.merged.v1"
    merged_id: UUID
