"""Distribution rounds (đợt phân phối) and entitlements (suất): the domain.

A Round holds the package and the eligibility rule; it goes draft -> issued, then takes
top-ups. An Entitlement is one household's package in a round. Its id is derived from
(round, household) (and the donation, for an earmarked gift), so the event store's unique
(originator_id, version) key refuses a second one: no check-then-act anywhere.
"""

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any
from uuid import UUID, uuid5

from eventsourcing.domain import Aggregate, event

from contracts.relief import entitlement_id  # noqa: F401 - one definition for relief and ledger
from services.common.errors import Conflict, NotFound

CASH = "cash"  # the item code of money, in VND
FLAGS = ("elderly", "child_under_6", "pregnant", "disabled", "chronic_illness")
POVERTY_RANK = {"poor": 3, "social_protection": 3, "near_poor": 2, "none": 0}


def gift_use_id(donation_id: UUID) -> UUID:
    return uuid5(donation_id, "earmarked-gift-used")


# -- the package and the rule, as plain data (stored in events as dicts)

def package_for(package: dict[str, Any], member_count: int, vulnerability: dict[str, int]) -> dict[str, int]:
    """One household's lines: the base, per member (up to the cap), and per flagged member."""
    lines: dict[str, int] = dict(package.get("items", {}))
    cap = package.get("member_cap")
    members = min(member_count, cap) if cap else member_count
    for code, quantity in package.get("per_member", {}).items():
        lines[code] = lines.get(code, 0) + quantity * members
    for flag, extra in package.get("per_flag", {}).items():
        count = vulnerability.get(flag, 0)
        for code, quantity in extra.items():
            lines[code] = lines.get(code, 0) + quantity * count
    return {code: quantity for code, quantity in sorted(lines.items()) if quantity > 0}


def add_lines(total: dict[str, int], lines: dict[str, int]) -> dict[str, int]:
    for code, quantity in lines.items():
        total[code] = total.get(code, 0) + quantity
    return total


def priority_key(candidate: "Candidate") -> tuple:
    """Poorest first, then most vulnerable members, then longest waiting, then id (stable)."""
    return (-POVERTY_RANK.get(candidate.poverty_status, 0), -sum(candidate.vulnerability.values()),
            candidate.eligible_since, str(candidate.household_id))


@dataclass(frozen=True)
class Candidate:
    """A household the rule selects, with the facts its package and priority need."""

    household_id: UUID
    commune_code: str
    village: str
    member_count: int
    poverty_status: str
    vulnerability: dict[str, int]
    eligible_since: date
    included_because: str | None = None


# -- errors

class RoundNotFound(NotFound):
    def __init__(self, round_id: UUID):
        super().__init__("Không tìm thấy đợt phân phối", "Distribution round not found", round_id=str(round_id))


class EntitlementNotFound(NotFound):
    def __init__(self, entitlement_id: UUID):
        super().__init__("Không tìm thấy suất", "Entitlement not found", entitlement_id=str(entitlement_id))


class RoundNotDraft(Conflict):
    code = "round_not_draft"

    def __init__(self, round_: "Round"):
        super().__init__("Đợt đã phát hành, không sửa hay phát hành lại được",
                         "The round was issued already; it cannot be edited or issued again",
                         round={"id": str(round_.id), "status": round_.status, "issued": round_.issued})


class RoundNotIssued(Conflict):
    code = "round_not_issued"

    def __init__(self, round_: "Round"):
        super().__init__("Đợt chưa phát hành: hãy phát hành trước khi bổ sung",
                         "The round is not issued yet: issue it before a top-up",
                         round={"id": str(round_.id), "status": round_.status})


class Shortfall(Conflict):
    """Stock cannot cover every eligible household: nothing was issued."""

    code = "shortfall"

    def __init__(self, shortfall: dict[str, int], needs: dict[str, int], eligible: int):
        super().__init__("Không đủ hàng/tiền cho mọi hộ đủ điều kiện; chưa phát suất nào. Hãy giảm suất, "
                         "ưu tiên theo đối tượng, hoặc chờ thêm hàng",
                         "Stock cannot cover every eligible household; nothing was issued. Reduce the package, "
                         "prioritise by flags, or wait for stock",
                         shortfall=shortfall, needs=needs, eligible=eligible)


class AlreadyServed(Conflict):
    code = "already_served"

    def __init__(self, entitlement: "Entitlement"):
        super().__init__("Suất đã được giao, không hủy được (hãy hủy bút toán ở sổ cái)",
                         "The entitlement was served; reverse the delivery in the ledger instead",
                         entitlement_id=str(entitlement.id), served=entitlement.served)


class AlreadyCancelled(Conflict):
    code = "already_cancelled"

    def __init__(self, entitlement: "Entitlement"):
        super().__init__("Suất đã bị hủy trước đó", "The entitlement was cancelled already",
                         entitlement_id=str(entitlement.id), cancelled=entitlement.cancelled)


# -- aggregates

class Round(Aggregate):
    @event("Drafted")
    def __init__(self, campaign_id: UUID, name: str, planned_on: date, package: dict[str, Any],
                 eligibility: dict[str, Any], actor: str):
        self.campaign_id = campaign_id
        self.name = name
        self.planned_on = planned_on
        self.package = package
        self.eligibility = eligibility
        self.created_by = actor
        self.status = "draft"
        self.issued: dict[str, Any] | None = None
        self.top_ups: list[dict[str, Any]] = []

    def edit(self, actor: str, **changes: Any) -> None:
        if self.status != "draft":
            raise RoundNotDraft(self)
        self._edited(actor=actor, changes=changes)

    @event("Edited")
    def _edited(self, actor: str, changes: dict[str, Any]) -> None:
        for name, value in changes.items():
            setattr(self, name, value)

    def issue(self, actor: str, issued_on: date, count: int, waiting: int, prioritised: bool) -> None:
        if self.status != "draft":
            raise RoundNotDraft(self)
        self._issued(actor=actor, issued_on=issued_on, count=count, waiting=waiting, prioritised=prioritised)

    @event("Issued")
    def _issued(self, actor: str, issued_on: date, count: int, waiting: int, prioritised: bool) -> None:
        self.status = "issued"
        self.issued = {"by": actor, "on": issued_on.isoformat(), "count": count, "waiting": waiting,
                       "prioritised": prioritised}

    def top_up(self, actor: str, issued_on: date, count: int, waiting: int) -> None:
        if self.status != "issued":
            raise RoundNotIssued(self)
        self._topped_up(actor=actor, issued_on=issued_on, count=count, waiting=waiting)

    @event("ToppedUp")
    def _topped_up(self, actor: str, issued_on: date, count: int, waiting: int) -> None:
        self.top_ups.append({"by": actor, "on": issued_on.isoformat(), "count": count, "waiting": waiting})


class Entitlement(Aggregate):
    @event("Issued")
    def __init__(self, id: UUID, round_id: UUID, campaign_id: UUID, household_id: UUID,  # noqa: A002
                 commune_code: str, village: str, lines: dict[str, int], units: dict[str, str],
                 eligible_since: date, issued_on: date, actor: str, earmarked_donation_id: UUID | None = None,
                 included_because: str | None = None):
        self.round_id = round_id
        self.campaign_id = campaign_id
        self.household_id = household_id
        self.commune_code = commune_code
        self.village = village
        self.lines = lines
        self.units = units
        self.eligible_since = eligible_since
        self.issued_on = issued_on
        self.issued_by = actor
        self.earmarked_donation_id = earmarked_donation_id
        self.included_because = included_because
        self.served: dict[str, Any] | None = None
        self.cancelled: dict[str, Any] | None = None
        self.applied_entries: list[int] = []

    @property
    def status(self) -> str:
        return "served" if self.served else "cancelled" if self.cancelled else "issued"

    def cancel(self, reason: str, note: str | None, actor: str, on: date) -> None:
        if self.served:
            raise AlreadyServed(self)
        if self.cancelled:
            raise AlreadyCancelled(self)
        self._cancelled(round_id=self.round_id, household_id=self.household_id, reason=reason, note=note,
                        actor=actor, on=on)

    @event("Cancelled")
    def _cancelled(self, round_id: UUID, household_id: UUID, reason: str, note: str | None, actor: str,
                   on: date) -> None:
        self.cancelled = {"reason": reason, "note": note, "by": actor, "on": on.isoformat()}

    def record_delivery(self, entry_seq: int, delivered_at: datetime, volunteer_id: str) -> None:
        """From the ledger (the source of truth on deliveries): applied once per entry."""
        if entry_seq not in self.applied_entries:
            self._delivered(entry_seq=entry_seq, delivered_at=delivered_at.isoformat(), volunteer_id=volunteer_id)

    @event("Served")
    def _delivered(self, entry_seq: int, delivered_at: str, volunteer_id: str) -> None:
        self.applied_entries.append(entry_seq)
        self.served = {"entry_seq": entry_seq, "delivered_at": delivered_at, "volunteer_id": volunteer_id}

    def record_reversal(self, entry_seq: int, reverses_seq: int, reason: str) -> None:
        if entry_seq not in self.applied_entries:
            self._reopened(entry_seq=entry_seq, reverses_seq=reverses_seq, reason=reason)

    @event("Reopened")
    def _reopened(self, entry_seq: int, reverses_seq: int, reason: str) -> None:
        self.applied_entries.append(entry_seq)
        if self.served and self.served["entry_seq"] == reverses_seq:
            self.served = None


class EarmarkedGiftUse(Aggregate):
    """Claims an earmarked gift for one round. Saved with the gift's entitlements, so a
    second round (or a racing issue) collides on its id and cannot hand the gift out again."""

    @event("Used")
    def __init__(self, id: UUID, donation_id: UUID, round_id: UUID, household_ids: list[UUID]):  # noqa: A002
        self.donation_id = donation_id
        self.round_id = round_id
        self.household_ids = household_ids


@dataclass
class IssueResult:
    round_id: UUID
    issued: list[UUID] = field(default_factory=list)  # entitlement ids
    waiting: list[Candidate] = field(default_factory=list)
    shortfall: dict[str, int] = field(default_factory=dict)
    skipped: int = 0  # issued meanwhile by someone else (a racing top-up)
