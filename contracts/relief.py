"""Events published by services/relief: what came in, and who is owed what.

Quantities are integers in the catalogue unit of the item (kg, gói, chai, hộp...), money is
integer VND. Donor identities stay in relief (the public disclosure names organisations and
consenting donors itself); the bus carries ids, codes and amounts.
"""

from datetime import date
from enum import StrEnum
from typing import ClassVar
from uuid import UUID, uuid5

from pydantic import BaseModel, Field

from contracts.base import ContractEvent, register


def entitlement_id(round_id: UUID, household_id: UUID, donation_id: UUID | None = None) -> UUID:
    """The one id of a household's package in a round (or of one earmarked gift to it), so
    relief can issue it once and the ledger can find it from a QR code's round + household."""
    name = str(household_id) if donation_id is None else f"{household_id}/gift/{donation_id}"
    return uuid5(round_id, name)


class PackageLine(BaseModel):
    item_code: str = Field(min_length=1, max_length=40)
    unit: str = Field(min_length=1, max_length=20)
    quantity: int = Field(ge=0)


class Earmark(BaseModel):
    """A gift 'có địa chỉ': for one commune, or for one named household (by id)."""

    commune_code: str | None = Field(None, pattern=r"^\d{5}$")
    household_id: UUID | None = None


class LegalBasis(StrEnum):
    decree_64_2008 = "decree_64_2008"
    decree_93_2021 = "decree_93_2021"
    state_budget = "state_budget"  # outside the decrees: never in a campaign's donation totals


@register
class DonationReceived(ContractEvent):
    """A donation entered a campaign's books with its receipt number (gapless per campaign)."""

    subject: ClassVar[str] = "relief.donation.received.v1"
    campaign_id: UUID
    receipt_number: int = Field(ge=1)
    legal_basis: LegalBasis
    received_on: date
    cash_vnd: int = Field(0, ge=0)
    goods: list[PackageLine] = Field(default_factory=list)
    earmark: Earmark | None = None


@register
class EntitlementIssued(ContractEvent):
    """One household's package (suất) in a round. `source_id` is the entitlement id, derived
    from (round, household), so it can be issued once only."""

    subject: ClassVar[str] = "relief.entitlement.issued.v1"
    round_id: UUID
    campaign_id: UUID
    household_id: UUID
    commune_code: str = Field(pattern=r"^\d{5}$")
    village: str
    items: list[PackageLine] = Field(default_factory=list)
    cash_vnd: int = Field(0, ge=0)
    earmarked_donation_id: UUID | None = None
    eligible_since: date
    issued_on: date


class CancellationReason(StrEnum):
    household_merged = "household_merged"
    issued_in_error = "issued_in_error"
    no_longer_eligible = "no_longer_eligible"
    other = "other"


@register
class EntitlementCancelled(ContractEvent):
    subject: ClassVar[str] = "relief.entitlement.cancelled.v1"
    round_id: UUID
    household_id: UUID
    reason: CancellationReason
