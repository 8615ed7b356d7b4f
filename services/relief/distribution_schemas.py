"""HTTP models of rounds and entitlements. A bad value is a 422 naming its field."""

from datetime import date
from enum import StrEnum
from typing import Annotated, Any
from uuid import UUID

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from contracts.households import PovertyStatus
from contracts.relief import CancellationReason
from services.relief.catalogue import ITEMS
from services.relief.rounds import CASH


def in_catalogue(code: str) -> str:
    if code not in ITEMS:
        raise ValueError(f"Mặt hàng '{code}' không có trong danh mục / Item '{code}' is not in the catalogue")
    return code


ItemCode = Annotated[str, Field(min_length=1, max_length=40), AfterValidator(in_catalogue)]
Quantity = Annotated[int, Field(ge=1, le=10**12)]
CommuneCode = Annotated[str, Field(pattern=r"^\d{5}$")]
Village = Annotated[str, Field(min_length=1, max_length=100)]
Lines = dict[ItemCode, Quantity]


class Flag(StrEnum):
    elderly = "elderly"
    child_under_6 = "child_under_6"
    pregnant = "pregnant"
    disabled = "disabled"
    chronic_illness = "chronic_illness"


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class PackageIn(Strict):
    """Per household: `items` and `cash_vnd`; plus `per_member` (up to `member_cap` members) and
    `per_flag` (per member with that flag, e.g. milk per child under 6). Money is item "cash" (VND)."""

    items: Lines = Field(default_factory=dict)
    cash_vnd: Annotated[int, Field(ge=0, le=10**12)] = 0
    per_member: Lines = Field(default_factory=dict)
    member_cap: Annotated[int, Field(ge=1, le=50)] | None = None
    per_flag: dict[Flag, Lines] = Field(default_factory=dict)

    @model_validator(mode="after")
    def has_lines(self) -> "PackageIn":
        if not (self.items or self.cash_vnd or self.per_member or any(self.per_flag.values())):
            raise ValueError("Suất phải có ít nhất một mặt hàng hoặc tiền / A package needs at least one item or cash")
        return self

    def to_domain(self) -> dict[str, Any]:
        items = dict(self.items)
        if self.cash_vnd:
            items[CASH] = items.get(CASH, 0) + self.cash_vnd
        return {"items": items, "per_member": dict(self.per_member), "member_cap": self.member_cap,
                "per_flag": {flag.value: dict(lines) for flag, lines in self.per_flag.items() if lines}}


class Reasoned(Strict):
    household_id: UUID
    reason: Annotated[str, Field(min_length=1, max_length=500)]


class EligibilityIn(Strict):
    """Who: in quarantine on a day or during a period; in these communes/villages; with these
    poverty statuses; with any of these flags. Then explicit includes and excludes, each with a reason."""

    quarantine_on: date | None = None
    quarantine_from: date | None = None
    quarantine_to: date | None = None
    commune_codes: list[CommuneCode] = Field(default_factory=list, max_length=500)
    villages: list[Village] = Field(default_factory=list, max_length=500)
    poverty_statuses: list[PovertyStatus] = Field(default_factory=list)
    vulnerable: list[Flag] = Field(default_factory=list)
    includes: list[Reasoned] = Field(default_factory=list, max_length=20_000)
    excludes: list[Reasoned] = Field(default_factory=list, max_length=20_000)

    @field_validator("quarantine_from")
    @classmethod
    def one_kind_of_period(cls, value: date | None, info: ValidationInfo) -> date | None:
        if value is not None and info.data.get("quarantine_on") is not None:
            raise ValueError("Chọn một ngày hoặc một khoảng, không cả hai / Give a day or a period, not both")
        return value

    @field_validator("quarantine_to")
    @classmethod
    def period_in_order(cls, value: date | None, info: ValidationInfo) -> date | None:
        start = info.data.get("quarantine_from")
        if value is not None and start is None:
            raise ValueError("Thiếu ngày bắt đầu (quarantine_from) / quarantine_from is missing")
        if value is not None and value < start:
            raise ValueError("Ngày kết thúc trước ngày bắt đầu / The period ends before it starts")
        return value

    @field_validator("excludes")
    @classmethod
    def not_both(cls, value: list[Reasoned], info: ValidationInfo) -> list[Reasoned]:
        both = {r.household_id for r in value} & {r.household_id for r in info.data.get("includes", [])}
        if both:
            raise ValueError(f"Hộ vừa được thêm vừa bị loại / Both included and excluded: {sorted(map(str, both))}")
        return value

    @model_validator(mode="after")
    def says_who(self) -> "EligibilityIn":
        if not (self.quarantine_on or self.quarantine_from or self.commune_codes or self.poverty_statuses
                or self.vulnerable or self.includes):
            raise ValueError("Hãy nêu ai đủ điều kiện (cách ly, xã, hộ nghèo, đối tượng hoặc danh sách) / "
                             "Say who is eligible (quarantine, communes, poverty, flags or a list)")
        return self

    def to_domain(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


class RoundIn(Strict):
    campaign_id: UUID
    name: Annotated[str, Field(min_length=1, max_length=200)]
    planned_on: date
    package: PackageIn
    eligibility: EligibilityIn


class RoundPatch(Strict):
    name: Annotated[str, Field(min_length=1, max_length=200)] | None = None
    planned_on: date | None = None
    package: PackageIn | None = None
    eligibility: EligibilityIn | None = None

    @model_validator(mode="after")
    def changes_something(self) -> "RoundPatch":
        if not self.model_fields_set:
            raise ValueError("Không có gì để sửa / Nothing to change")
        return self

    def changes(self) -> dict[str, Any]:
        changes: dict[str, Any] = {}
        for name in self.model_fields_set:
            value = getattr(self, name)
            if value is not None:
                changes[name] = value.to_domain() if hasattr(value, "to_domain") else value
        return changes


class CancelIn(Strict):
    reason: CancellationReason
    note: Annotated[str, Field(max_length=500)] | None = None
