"""What clients see of a household: a short summary (lookups, conflicts) and the full record."""

import dataclasses
from datetime import date, datetime
from typing import Any
from uuid import UUID

from eventsourcing.domain import DomainEventProtocol

from services.households.domain import FLAGS, Household, Member, commune_name, vulnerability

_ENVELOPE = {"originator_id", "originator_version", "originator_topic", "timestamp", "actor",
             # resulting values carried for the publisher, not what the person changed
             "member_count", "vulnerability"}
_CARRIED = {"Corrected": {"commune_code", "village", "poverty_status"}}


def jsonable(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, UUID):
        return str(value)
    if isinstance(value, date | datetime):
        return value.isoformat()
    return value


def summary(household: Household) -> dict[str, Any]:
    """Enough to recognise a household at the door; no health details beyond quarantine dates."""
    members = household.member_list
    return {
        "id": str(household.id),
        "head_name": household.head.name,
        "head_cccd": household.head.cccd,
        "phone": household.phone,
        "commune_code": household.commune_code,
        "commune_name": commune_name(household.commune_code),
        "village": household.village,
        "address": household.address,
        "poverty_status": household.poverty_status,
        "member_count": len(members),
        "quarantines": [
            {"episode_id": str(e.episode_id), "starts_on": e.starts_on.isoformat(),
             "expected_end_on": e.expected_end_on.isoformat(),
             "ended_on": e.ended_on.isoformat() if e.ended_on else None}
            for e in household.episodes.values()
        ],
    }


def member_view(member: Member) -> dict[str, Any]:
    return jsonable(member)


def household_view(household: Household, resolved_from: UUID | None = None) -> dict[str, Any]:
    members = household.member_list
    return {
        **summary(household),
        "version": household.version,
        "registered_at": household.created_on.isoformat(),
        "updated_at": household.modified_on.isoformat(),
        "head": member_view(household.head),
        "members": [member_view(m) for m in members if m.member_id != household.head_id],
        "vulnerability": vulnerability(members).model_dump(),
        "legal_basis": jsonable(household.legal_basis),
        "quarantines": [jsonable(e) for e in household.episodes.values()],
        "merged_into": str(household.merged_into) if household.merged_into else None,
        "merged_from": [str(i) for i in household.merged_from],
        "resolved_from": str(resolved_from) if resolved_from else None,
    }


def history_entry(event: DomainEventProtocol) -> dict[str, Any]:
    """Who changed what, and when."""
    skip = _ENVELOPE | _CARRIED.get(type(event).__name__, set())
    details = {k: v for k, v in vars(event).items() if k not in skip}
    return {
        "version": event.originator_version,
        "event": type(event).__name__,
        "at": event.timestamp.isoformat(),
        "actor": getattr(event, "actor", None),
        "details": jsonable(details),
    }


# ---- masking: lists always; records unless the reader may see everything ----------

CCCD_KEYS = {"cccd", "head_cccd"}
PHONE_KEYS = {"phone"}
HEALTH_KEYS = {*FLAGS, "vulnerability", "quarantines", "episode", "episode_id", "kind", "decision_number",
               "starts_on", "expected_end_on", "ended_on"}


def mask_digits(value: str | None, first: int = 4, last: int = 2) -> str | None:
    """'079012345612' -> '0790******12'; too short to show anything -> all stars."""
    if not value:
        return value
    hidden = len(value) - first - last
    if hidden < 2:
        return "*" * len(value)
    return value[:first] + "*" * hidden + value[-last:]


def masked(summary_or_record: dict[str, Any]) -> dict[str, Any]:
    """CCCD and phone numbers masked, quarantine and health flags kept."""
    return _walk(summary_or_record, drop_health=False)


def redacted(record: Any) -> Any:
    """For those who may not see personal data: CCCD and phones masked, no health or quarantine detail."""
    return _walk(record, drop_health=True)


def _walk(value: Any, drop_health: bool) -> Any:
    if isinstance(value, list):
        return [_walk(v, drop_health) for v in value]
    if not isinstance(value, dict):
        return value
    out = {}
    for key, item in value.items():
        if key in CCCD_KEYS and isinstance(item, str):
            out[key] = mask_digits(item)
        elif key in PHONE_KEYS and isinstance(item, str):
            out[key] = mask_digits(item)
        elif drop_health and key in HEALTH_KEYS:
            continue
        else:
            out[key] = _walk(item, drop_health)
    return out
