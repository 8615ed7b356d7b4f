"""What clients send to the ledger, checked before anything reaches the writer."""

import hashlib
from typing import Annotated
from uuid import UUID

import orjson
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator, model_validator

from contracts.ledger import ReversalReason
from contracts.relief import PackageLine
from services.common.auth import Forbidden, Principal, Role
from services.ledger.deliveries import RecordDelivery, ReverseDelivery
from services.ledger.domain import entitlement_id
from services.ledger.export_format import iso_utc

Key = Annotated[str, Field(min_length=1, max_length=200)]
Who = Annotated[str, Field(min_length=1, max_length=100)]
MAX_QUANTITY = 10**9  # far beyond any package; keeps every number inside 64 bits
MAX_CASH_VND = 10**15


class DeliveredLine(PackageLine):
    quantity: int = Field(ge=0, le=MAX_QUANTITY)


class DeliveryIn(BaseModel):
    """Either `entitlement_id`, or `round_id` + `household_id` (from the QR code on the slip)."""

    model_config = ConfigDict(extra="forbid")

    entitlement_id: UUID | None = None
    round_id: UUID | None = None
    household_id: UUID | None = None
    earmarked_donation_id: UUID | None = Field(None, description="With round_id + household_id, for a gift")
    items: list[DeliveredLine] = Field(default_factory=list, max_length=100)
    cash_vnd: int = Field(0, ge=0, le=MAX_CASH_VND)
    volunteer_id: Who | None = Field(None, description="Left out: the signed-in user's id. Given: must be that "
                                                       "id (an admin may record for a named volunteer)")
    device_id: Who
    delivered_at: AwareDatetime = Field(description="Time at the door (from the device)")
    evidence_hash: str | None = Field(None, pattern=r"^[0-9a-fA-F]{16,128}$",
                                      description="Hex hash of a signature or photo kept on the device; never the image")

    @field_validator("evidence_hash")
    @classmethod
    def _lower(cls, value: str | None) -> str | None:
        return value.lower() if value else value

    @model_validator(mode="after")
    def _names_an_entitlement(self) -> "DeliveryIn":
        if self.round_id is not None and self.household_id is not None:
            derived = entitlement_id(self.round_id, self.household_id, self.earmarked_donation_id)
            if self.entitlement_id not in (None, derived):
                raise ValueError("entitlement_id does not belong to round_id + household_id")
            self.entitlement_id = derived
        elif self.entitlement_id is None:
            raise ValueError("give entitlement_id, or round_id and household_id")
        return self

    def recorded_by(self, who: Principal) -> "DeliveryIn":
        """This delivery with the volunteer who records it: the signed-in user."""
        volunteer_id = acting_as(self.volunteer_id, who, "volunteer_id")
        return self if volunteer_id == self.volunteer_id else self.model_copy(update={"volunteer_id": volunteer_id})

    def command(self, idempotency_key: str, by: Principal | None = None) -> RecordDelivery:
        return RecordDelivery(
            by=by, idempotency_key=idempotency_key, body_hash=body_hash(self, exclude={"idempotency_key"}),
            entitlement_id=self.entitlement_id, items=[line.model_dump() for line in self.items],
            cash_vnd=self.cash_vnd, volunteer_id=self.volunteer_id, device_id=self.device_id,
            delivered_at=iso_utc(self.delivered_at), evidence_hash=self.evidence_hash)


class BatchDeliveryIn(DeliveryIn):
    idempotency_key: Key


class BatchIn(BaseModel):
    deliveries: list[BatchDeliveryIn] = Field(min_length=1, max_length=1000)


class ReversalIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: ReversalReason
    reversed_by: Who | None = Field(None, description="Left out: the signed-in user's id. Given: must be that id "
                                                      "(an admin may name another)")

    def recorded_by(self, who: Principal) -> "ReversalIn":
        return self.model_copy(update={"reversed_by": acting_as(self.reversed_by, who, "reversed_by")})

    def command(self, seq: int, idempotency_key: str | None, by: Principal | None = None) -> ReverseDelivery:
        return ReverseDelivery(by=by, reverses_seq=seq, reason=self.reason.value, reversed_by=self.reversed_by,
                               body_hash=body_hash(self, extra={"seq": seq}), idempotency_key=idempotency_key)


def acting_as(claimed: str | None, who: Principal, field: str) -> str:
    """The id recorded for who acted: the token's user id. The ledger keeps ids, not names, as its
    export is public. A different id in the body is refused, except from an admin entering paper slips."""
    if claimed in (None, who.user_id) or who.role == Role.admin:
        return claimed or who.user_id
    raise Forbidden(f"Chỉ ghi nhận được dưới tên chính mình: {field} phải là mã người dùng của bạn "
                    f"({who.user_id}) hoặc để trống.",
                    f"{field} must be your own user id ({who.user_id}) or left out.",
                    field=field, given=claimed, user_id=who.user_id)


def body_hash(model: BaseModel, exclude: set[str] | None = None, extra: dict | None = None) -> str:
    data = {**model.model_dump(mode="json", exclude=exclude), **(extra or {})}
    return hashlib.sha256(orjson.dumps(data, option=orjson.OPT_SORT_KEYS)).hexdigest()
