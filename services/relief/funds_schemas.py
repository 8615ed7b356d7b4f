"""HTTP request models for campaigns, donations and stock. Shapes and types are checked here
(422 naming the field); rules that need the campaign or the catalogue are the domain's, and
come back as the same 422 shape."""

from datetime import date
from typing import Annotated
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from contracts.relief import LegalBasis
from services.relief.campaigns import AccountKind, Channel, CommitteeLevel, DonorKind
from services.relief.stock import WriteOffReason

Text = Annotated[str, Field(min_length=1, max_length=300)]
Quantity = Annotated[int, Field(gt=0, le=10**12)]
Code = Annotated[str, Field(min_length=1, max_length=40)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class AccountIn(Strict):
    kind: AccountKind
    number: Annotated[str, Field(min_length=1, max_length=40)]
    bank_name: Annotated[str, Field(max_length=200)] | None = None


class CampaignIn(Strict):
    level: CommitteeLevel
    unit_code: Annotated[str, Field(pattern=r"^\d{1,5}$")]
    name: Annotated[str, Field(min_length=1, max_length=200)]
    purpose: Annotated[str, Field(min_length=1, max_length=1000)]
    legal_basis: LegalBasis
    call_document: Text
    opens_on: date
    closes_on: date
    accounts: list[AccountIn] = Field(min_length=1, max_length=10)


class ExtensionIn(Strict):
    closes_on: date
    approved_by: Annotated[str, Field(min_length=1, max_length=200)]
    document_ref: Text


class DonorIn(Strict):
    kind: DonorKind
    name: Annotated[str, Field(max_length=200)] | None = None
    contact: Annotated[str, Field(max_length=200)] | None = None
    public_consent: bool = False


class GoodsLineIn(Strict):
    item_code: Code
    quantity: Quantity
    unit_value_vnd: Annotated[int, Field(ge=0, le=10**12)] = 0
    expiry_date: date | None = None


class EarmarkIn(Strict):
    commune_code: Annotated[str, Field(pattern=r"^\d{1,5}$")] | None = None
    household_id: UUID | None = None


class DonationIn(Strict):
    """A donation; with `funding_source` it is state-budget aid (outside the decree, e.g.
    "Nghị quyết 68/NQ-CP"): it gets a receipt number but never counts in donation totals."""

    donor: DonorIn
    received_on: date
    channel: Channel
    cash_vnd: Annotated[int, Field(ge=0, le=10**15)] = 0
    goods: list[GoodsLineIn] = Field(default_factory=list, max_length=100)
    earmark: EarmarkIn | None = None
    funding_source: Annotated[str, Field(min_length=1, max_length=300)] | None = None
    note: Annotated[str, Field(max_length=1000)] | None = None


class WriteOffIn(Strict):
    item_code: Code
    quantity: Quantity
    reason: WriteOffReason
    note: Text
    lot: Annotated[str, Field(max_length=100)] | None = None


class TransferLineIn(Strict):
    item_code: Code
    quantity: Quantity


class TransferIn(Strict):
    to_campaign_id: UUID
    lines: list[TransferLineIn] = Field(min_length=1, max_length=100)
    note: Annotated[str, Field(max_length=1000)] = ""
    document_ref: Text
