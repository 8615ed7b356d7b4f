"""Events published by services/ledger: each delivery recorded once, corrections as reversals.

`entry_seq` is the entry's position in the ledger's Merkle log (RFC 6962 leaf index + 1);
`leaf_hash` lets anyone check the entry against a signed checkpoint.
"""

from datetime import datetime
from enum import StrEnum
from typing import ClassVar
from uuid import UUID

from pydantic import Field

from contracts.base import ContractEvent, register
from contracts.relief import PackageLine


@register
class DistributionRecorded(ContractEvent):
    """`source_id` is the entitlement id."""

    subject: ClassVar[str] = "ledger.distribution.recorded.v1"
    entry_seq: int = Field(ge=1)
    leaf_hash: str = Field(pattern=r"^[0-9a-f]{64}$")
    round_id: UUID
    household_id: UUID
    commune_code: str = Field(pattern=r"^\d{5}$")
    items: list[PackageLine] = Field(default_factory=list)
    cash_vnd: int = Field(0, ge=0)
    volunteer_id: str
    device_id: str
    delivered_at: datetime


class ReversalReason(StrEnum):
    recorded_in_error = "recorded_in_error"
    wrong_household = "wrong_household"
    goods_returned = "goods_returned"
    other = "other"


@register
class DistributionReversed(ContractEvent):
    """Re-opens the entitlement (`source_id`); the reversed entry stays in the log."""

    subject: ClassVar[str] = "ledger.distribution.reversed.v1"
    entry_seq: int = Field(ge=1)
    leaf_hash: str = Field(pattern=r"^[0-9a-f]{64}$")
    reverses_seq: int = Field(ge=1)
    round_id: UUID
    household_id: UUID
    commune_code: str = Field(pattern=r"^\d{5}$")
    items: list[PackageLine] = Field(default_factory=list)
    cash_vnd: int = Field(0, ge=0)
    reason: ReversalReason
    reversed_by: str
