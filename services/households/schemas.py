"""HTTP request models. The domain's own checks run as validators, so a bad value is a 422
that names its field, with the domain's message (Vietnamese / English)."""

from collections.abc import Callable
from datetime import date
from typing import Annotated, Any
from uuid import UUID

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from contracts.households import PovertyStatus
from services.common.errors import Invalid
from services.households.domain import (QuarantineKind, Relation, LegalGround, check_birth_year, check_cccd,
                                        check_commune, check_phone)


def domain_rule(check: Callable[[Any], Any]) -> AfterValidator:
    def validate(value: Any) -> Any:
        if value is None:
            return None
        try:
            return check(value)
        except Invalid as error:
            raise ValueError(f"{error.message_vi} / {error.message_en}") from None
    return AfterValidator(validate)


Cccd = Annotated[str, domain_rule(check_cccd)]
Phone = Annotated[str, domain_rule(check_phone)]
CommuneCode = Annotated[str, domain_rule(check_commune)]
BirthYear = Annotated[int, domain_rule(check_birth_year)]
Name = Annotated[str, Field(min_length=1, max_length=100)]
Reason = Annotated[str | None, Field(None, max_length=500)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class Flags(Strict):
    elderly: bool = False
    child_under_6: bool = False
    pregnant: bool = False
    disabled: bool = False
    chronic_illness: bool = False


class HeadIn(Flags):
    name: Name
    cccd: Cccd
    birth_year: BirthYear | None = None


class MemberIn(Flags):
    name: Name
    relation: Relation
    birth_year: BirthYear | None = None
    cccd: Cccd | None = None

    @field_validator("relation")
    @classmethod
    def not_head(cls, relation: Relation) -> Relation:
        if relation == Relation.head:
            raise ValueError("Mỗi hộ chỉ có một chủ hộ / A household has exactly one head")
        return relation


class LegalBasisIn(Strict):
    ground: LegalGround
    reference: Annotated[str, Field(min_length=1, max_length=300)]


class RegistrationIn(Strict):
    head: HeadIn
    members: list[MemberIn] = Field(default_factory=list, max_length=50)
    commune_code: CommuneCode
    village: Annotated[str, Field(min_length=1, max_length=100)]
    address: Annotated[str, Field(max_length=300)] = ""
    phone: Phone | None = None
    poverty_status: PovertyStatus = PovertyStatus.none
    legal_basis: LegalBasisIn


class CorrectionIn(Strict):
    """Only the fields sent are corrected; `phone: null` clears the phone."""

    phone: Phone | None = None
    commune_code: CommuneCode | None = None
    village: Annotated[str, Field(min_length=1, max_length=100)] | None = None
    address: Annotated[str, Field(max_length=300)] | None = None
    poverty_status: PovertyStatus | None = None
    legal_basis: LegalBasisIn | None = None
    head_name: Name | None = None
    head_cccd: Cccd | None = None
    head_birth_year: BirthYear | None = None
    reason: Reason = None

    def changes(self) -> dict[str, Any]:
        sent = self.model_fields_set - {"reason"}
        values = {name: getattr(self, name) for name in sent}
        for name, value in values.items():
            if value is None and name != "phone":
                raise Invalid(name, "Trường này không được để trống", "This field cannot be cleared")
        return values


class MemberCorrectionIn(Strict):
    name: Name | None = None
    relation: Relation | None = None
    birth_year: BirthYear | None = None
    cccd: Cccd | None = None
    elderly: bool | None = None
    child_under_6: bool | None = None
    pregnant: bool | None = None
    disabled: bool | None = None
    chronic_illness: bool | None = None

    def changes(self) -> dict[str, Any]:
        values = {name: getattr(self, name) for name in self.model_fields_set}
        for name in ("name", "relation", *Flags.model_fields):
            if name in values and values[name] is None:
                raise Invalid(name, "Trường này không được để trống", "This field cannot be cleared")
        return values


class QuarantineIn(Strict):
    kind: QuarantineKind
    decision_number: Annotated[str, Field(min_length=1, max_length=100)]
    starts_on: date
    expected_end_on: date

    @field_validator("expected_end_on")
    @classmethod
    def after_start(cls, end: date, info: ValidationInfo) -> date:
        start = info.data.get("starts_on")
        if start is not None and end < start:
            raise ValueError("Ngày dự kiến kết thúc phải từ ngày bắt đầu trở đi / "
                             "Expected end must be on or after the start")
        return end


class EndQuarantineIn(Strict):
    ended_on: date


class MergeIn(Strict):
    survivor_id: UUID = Field(description="The household that stays")
    merged_id: UUID = Field(description="The duplicate; from now on it resolves to the survivor")
    reason: Reason = None


class DismissIn(Strict):
    household_ids: list[UUID] = Field(min_length=2, max_length=2)
    reason: Reason = None
