"""Households: who lives where, who is vulnerable, who is in quarantine.

Rules are checked in the command methods and factories; the @event methods only
apply what was decided, so replaying old events never re-runs today's rules
(the commune list, for one, changes with administrative reforms).
"""

import hashlib
import hmac
import re
from dataclasses import asdict, dataclass, replace
from datetime import date
from enum import StrEnum
from typing import Any
from uuid import UUID, uuid4, uuid5

from eventsourcing.domain import Aggregate, event
from vietnam_provinces import Ward

from contracts.households import PovertyStatus, Vulnerability
from services.common.errors import Conflict, Invalid, NotFound

NAMESPACE = UUID("6f3a7c1e-2b0d-5f4e-9a61-8d2c4b7e0a15")
FLAGS = ("elderly", "child_under_6", "pregnant", "disabled", "chronic_illness")


class Relation(StrEnum):
    head = "head"
    spouse = "spouse"
    child = "child"
    parent = "parent"
    grandchild = "grandchild"
    sibling = "sibling"
    other = "other"


class QuarantineKind(StrEnum):
    f0_home_treatment = "f0_home_treatment"
    f1_home_quarantine = "f1_home_quarantine"
    lockdown_area = "lockdown_area"


class LegalGround(StrEnum):
    """Why we may process health data (Decree 13/2023 art. 17)."""

    consent = "consent"
    legal_obligation = "legal_obligation"
    vital_interest = "vital_interest"
    public_task = "public_task"


# ---- named errors ---------------------------------------------------------------

class InvalidCitizenId(Invalid):
    def __init__(self, field: str = "cccd"):
        super().__init__(field, "Số CCCD phải gồm đúng 12 chữ số",
                         "CCCD must be exactly 12 digits")


class InvalidPhone(Invalid):
    def __init__(self, field: str = "phone"):
        super().__init__(field, "Số điện thoại không đúng định dạng Việt Nam (ví dụ 0912345678)",
                         "Phone number is not a Vietnamese number (e.g. 0912345678)")


class UnknownCommune(Invalid):
    def __init__(self, field: str = "commune_code"):
        super().__init__(field, "Mã xã/phường không có trong danh mục hành chính hiện hành",
                         "Commune code is not in the current list of communes and wards")


class InvalidValue(Invalid):
    """Any other field-level rule; messages say which."""


class HouseholdNotFound(NotFound):
    def __init__(self, household_id: UUID):
        super().__init__("Không tìm thấy hộ gia đình", "Household not found",
                         household_id=str(household_id))


class MemberNotFound(NotFound):
    def __init__(self, member_id: UUID):
        super().__init__("Không tìm thấy thành viên trong hộ", "Member not found in this household",
                         member_id=str(member_id))


class EpisodeNotFound(NotFound):
    def __init__(self, episode_id: UUID):
        super().__init__("Không tìm thấy đợt cách ly", "Quarantine episode not found",
                         episode_id=str(episode_id))


class HeadAlreadyRegistered(Conflict):
    code = "head_already_registered"


class HouseholdMergedAway(Conflict):
    code = "household_merged"

    def __init__(self, household_id: UUID, survivor_id: UUID):
        super().__init__("Hộ này đã được gộp vào hộ khác; hãy thao tác trên hộ còn lại",
                         "This household was merged into another; act on the survivor",
                         household_id=str(household_id), survivor_id=str(survivor_id))


class HeadCannotBeRemoved(Conflict):
    code = "head_cannot_be_removed"

    def __init__(self) -> None:
        super().__init__("Không thể xoá chủ hộ khỏi hộ", "The head of household cannot be removed")


class EpisodeAlreadyEnded(Conflict):
    code = "episode_already_ended"


class DecisionAlreadyRecorded(Conflict):
    code = "decision_already_recorded"


class CannotMerge(Conflict):
    code = "cannot_merge"


# ---- value checks (also used by the HTTP models and the importer) ------------------

_SPACES = re.compile(r"\s+")
_PHONE_NOISE = re.compile(r"[\s.\-()]")
_MOBILE = re.compile(r"^0[35789]\d{8}$")
_LANDLINE = re.compile(r"^02\d{9}$")


def check_cccd(value: str, field: str = "cccd") -> str:
    value = str(value).strip()
    if len(value) != 12 or not value.isascii() or not value.isdigit():
        raise InvalidCitizenId(field)
    return value


def check_phone(value: str, field: str = "phone") -> str:
    """Normalise to the domestic form 0xxxxxxxxx (mobile) or 02xxxxxxxxx (landline)."""
    digits = _PHONE_NOISE.sub("", str(value))
    if digits.startswith("+84"):
        digits = "0" + digits[3:]
    elif digits.startswith("84") and len(digits) in (11, 12):
        digits = "0" + digits[2:]
    if not digits.isascii() or not (_MOBILE.match(digits) or _LANDLINE.match(digits)):
        raise InvalidPhone(field)
    return digits


def check_commune(value: str, field: str = "commune_code") -> str:
    """A ward/commune code of the list in force since 1 July 2025, as 5 digits."""
    value = str(value).strip()
    if not value.isascii() or not value.isdigit() or len(value) > 5:
        raise UnknownCommune(field)
    try:
        Ward.from_code(int(value))
    except ValueError:
        raise UnknownCommune(field) from None
    return value.zfill(5)


def commune_name(code: str) -> str | None:
    try:
        return Ward.from_code(int(code)).name
    except ValueError:
        return None


def check_text(value: str | None, field: str, *, required: bool = True, max_length: int = 200) -> str:
    cleaned = _SPACES.sub(" ", str(value or "")).strip()
    if required and not cleaned:
        raise InvalidValue(field, "Trường này không được để trống", "This field is required")
    if len(cleaned) > max_length:
        raise InvalidValue(field, f"Tối đa {max_length} ký tự", f"At most {max_length} characters")
    return cleaned


def check_birth_year(value: int | None, field: str = "birth_year") -> int | None:
    if value is None:
        return None
    try:
        year = int(value)
    except (TypeError, ValueError):
        year = 0
    if not 1900 <= year <= date.today().year:
        raise InvalidValue(field, "Năm sinh không hợp lệ", "Birth year is out of range")
    return year


def check_choice(kind: type[StrEnum], value: str, field: str) -> str:
    try:
        return kind(value).value
    except ValueError:
        allowed = ", ".join(kind)
        raise InvalidValue(field, f"Giá trị phải là một trong: {allowed}",
                           f"Must be one of: {allowed}") from None


# ---- values ---------------------------------------------------------------------

@dataclass(frozen=True)
class Member:
    member_id: UUID
    name: str
    relation: str
    birth_year: int | None = None
    cccd: str | None = None
    elderly: bool = False
    child_under_6: bool = False
    pregnant: bool = False
    disabled: bool = False
    chronic_illness: bool = False

    @classmethod
    def new(cls, name: str, relation: str, birth_year: int | None = None, cccd: str | None = None,
            prefix: str = "", **flags: bool) -> "Member":
        """A checked member; `prefix` names the input fields in errors (e.g. "members.2.")."""
        return cls(
            member_id=uuid4(),
            name=check_text(name, f"{prefix}name", max_length=100),
            relation=check_choice(Relation, relation, f"{prefix}relation"),
            birth_year=check_birth_year(birth_year, f"{prefix}birth_year"),
            cccd=check_cccd(cccd, f"{prefix}cccd") if cccd else None,
            **{flag: bool(flags.get(flag, False)) for flag in FLAGS},
        )



@dataclass(frozen=True)
class LegalBasis:
    ground: str
    reference: str

    @classmethod
    def new(cls, ground: str, reference: str, prefix: str = "legal_basis.") -> "LegalBasis":
        return cls(check_choice(LegalGround, ground, f"{prefix}ground"),
                   check_text(reference, f"{prefix}reference", max_length=300))


@dataclass(frozen=True)
class Episode:
    episode_id: UUID
    kind: str
    decision_number: str
    starts_on: date
    expected_end_on: date
    ended_on: date | None = None

    @property
    def last_day(self) -> date:
        """In quarantine up to and including this day (the end, or the expected end while open)."""
        return self.ended_on or self.expected_end_on

    def covers(self, day: date) -> bool:
        return self.starts_on <= day <= self.last_day


def vulnerability(members: list[Member]) -> Vulnerability:
    return Vulnerability(**{flag: sum(getattr(m, flag) for m in members) for flag in FLAGS})


# ---- aggregates -----------------------------------------------------------------

HEAD_FIELDS = {"head_name": "name", "head_cccd": "cccd", "head_birth_year": "birth_year"}


class Household(Aggregate):
    """A household (hộ gia đình) as the commune knows it. Every event names its actor."""

    @classmethod
    def register(cls, head: Member, members: list[Member], commune_code: str, village: str,
                 address: str, phone: str | None, poverty_status: str, legal_basis: LegalBasis,
                 actor: str) -> "Household":
        if not head.cccd:
            raise InvalidCitizenId("head.cccd")
        head = replace(head, relation=Relation.head.value)
        for index, member in enumerate(members):
            if member.relation == Relation.head:
                raise InvalidValue(f"members.{index}.relation", "Mỗi hộ chỉ có một chủ hộ",
                                   "A household has exactly one head")
        _unique_citizen_ids([head, *members])
        return cls(
            head=head, members=list(members),
            commune_code=check_commune(commune_code),
            village=check_text(village, "village", max_length=100),
            address=check_text(address, "address", required=False, max_length=300),
            phone=check_phone(phone) if phone else None,
            poverty_status=check_choice(PovertyStatus, poverty_status, "poverty_status"),
            legal_basis=legal_basis, actor=actor,
        )

    @event("Registered")
    def __init__(self, head: Member, members: list[Member], commune_code: str, village: str,
                 address: str, phone: str | None, poverty_status: str, legal_basis: LegalBasis,
                 actor: str):
        self.head_id = head.member_id
        self.members = {m.member_id: m for m in [head, *members]}
        self.commune_code = commune_code
        self.village = village
        self.address = address
        self.phone = phone
        self.poverty_status = poverty_status
        self.legal_basis = legal_basis
        self.episodes: dict[UUID, Episode] = {}
        self.merged_into: UUID | None = None
        self.merged_from: list[UUID] = []

    @property
    def head(self) -> Member:
        return self.members[self.head_id]

    @property
    def member_list(self) -> list[Member]:
        return list(self.members.values())

    # -- details

    def correct(self, actor: str, reason: str | None = None, **changes: Any) -> bool:
        """Correct household details and the head's name/CCCD/birth year; False if nothing changed."""
        self._check_active()
        checked = {}
        for name, value in changes.items():
            new = _checked_detail(name, value)
            if new != self._current(name):
                checked[name] = new
        if "head_cccd" in checked:
            _unique_citizen_ids([replace(self.head, cccd=checked["head_cccd"]),
                                 *(m for m in self.member_list if m.member_id != self.head_id)])
        if not checked:
            return False
        self._corrected(
            changes=checked, reason=reason, actor=actor,
            commune_code=checked.get("commune_code", self.commune_code),
            village=checked.get("village", self.village),
            poverty_status=checked.get("poverty_status", self.poverty_status),
        )
        return True

    # The resulting place and poverty status travel with the event, so the publisher
    # can map it to a contract without loading the aggregate.
    @event("Corrected")
    def _corrected(self, changes: dict, reason: str | None, actor: str, commune_code: str,
                   village: str, poverty_status: str) -> None:
        head_changes = {}
        for name, value in changes.items():
            if name in HEAD_FIELDS:
                head_changes[HEAD_FIELDS[name]] = value
            else:
                setattr(self, name, value)
        if head_changes:
            self.members[self.head_id] = replace(self.head, **head_changes)

    def _current(self, name: str) -> Any:
        if name in HEAD_FIELDS:
            return getattr(self.head, HEAD_FIELDS[name])
        return getattr(self, name)

    # -- members

    def add_member(self, member: Member, actor: str) -> None:
        self._check_active()
        if member.relation == Relation.head:
            raise InvalidValue("relation", "Mỗi hộ chỉ có một chủ hộ", "A household has exactly one head")
        _unique_citizen_ids([*self.member_list, member])
        after = [*self.member_list, member]
        self._member_added(member=member, actor=actor, member_count=len(after),
                           vulnerability=vulnerability(after).model_dump())

    @event("MemberAdded")
    def _member_added(self, member: Member, actor: str, member_count: int, vulnerability: dict) -> None:
        self.members[member.member_id] = member

    def remove_member(self, member_id: UUID, actor: str, reason: str | None = None) -> None:
        self._check_active()
        if member_id not in self.members:
            raise MemberNotFound(member_id)
        if member_id == self.head_id:
            raise HeadCannotBeRemoved()
        after = [m for m in self.member_list if m.member_id != member_id]
        self._member_removed(member_id=member_id, reason=reason, actor=actor, member_count=len(after),
                             vulnerability=vulnerability(after).model_dump())

    @event("MemberRemoved")
    def _member_removed(self, member_id: UUID, reason: str | None, actor: str, member_count: int,
                        vulnerability: dict) -> None:
        del self.members[member_id]

    def correct_member(self, member_id: UUID, actor: str, **changes: Any) -> bool:
        """Correct a member's name, birth year, relation, CCCD or flags (e.g. pregnant)."""
        self._check_active()
        if member_id not in self.members:
            raise MemberNotFound(member_id)
        current = self.members[member_id]
        if member_id == self.head_id and changes.get("relation", Relation.head) != Relation.head:
            raise InvalidValue("relation", "Không thể đổi quan hệ của chủ hộ",
                               "The head's relation cannot change")
        if member_id != self.head_id and changes.get("relation") == Relation.head:
            raise InvalidValue("relation", "Mỗi hộ chỉ có một chủ hộ", "A household has exactly one head")
        fields = {**asdict(current), **changes}
        fields.pop("member_id")
        checked = Member.new(**fields)
        checked = replace(checked, member_id=member_id)
        if member_id == self.head_id and not checked.cccd:
            raise InvalidCitizenId("cccd")
        diff = {k: v for k, v in asdict(checked).items() if getattr(current, k) != v}
        if not diff:
            return False
        after = [checked if m.member_id == member_id else m for m in self.member_list]
        _unique_citizen_ids(after)
        self._member_corrected(member_id=member_id, changes=diff, actor=actor, member_count=len(after),
                               vulnerability=vulnerability(after).model_dump())
        return True

    @event("MemberCorrected")
    def _member_corrected(self, member_id: UUID, changes: dict, actor: str, member_count: int,
                          vulnerability: dict) -> None:
        self.members[member_id] = replace(self.members[member_id], **changes)

    # -- quarantine

    def start_quarantine(self, kind: str, decision_number: str, starts_on: date,
                         expected_end_on: date, actor: str) -> Episode:
        self._check_active()
        decision_number = check_text(decision_number, "decision_number", max_length=100)
        if expected_end_on < starts_on:
            raise InvalidValue("expected_end_on", "Ngày dự kiến kết thúc phải từ ngày bắt đầu trở đi",
                               "Expected end must be on or after the start")
        for episode in self.episodes.values():
            if episode.decision_number == decision_number:
                raise DecisionAlreadyRecorded(
                    "Quyết định cách ly này đã được ghi nhận", "This quarantine decision is already recorded",
                    episode_id=str(episode.episode_id))
        episode = Episode(uuid4(), check_choice(QuarantineKind, kind, "kind"), decision_number,
                          starts_on, expected_end_on)
        self._quarantine_started(episode=episode, actor=actor)
        return episode

    @event("QuarantineStarted")
    def _quarantine_started(self, episode: Episode, actor: str) -> None:
        self.episodes[episode.episode_id] = episode

    def end_quarantine(self, episode_id: UUID, ended_on: date, actor: str) -> Episode:
        self._check_active()
        episode = self.episodes.get(episode_id)
        if episode is None:
            raise EpisodeNotFound(episode_id)
        if episode.ended_on is not None:
            raise EpisodeAlreadyEnded("Đợt cách ly này đã kết thúc", "This quarantine episode already ended",
                                      episode_id=str(episode_id), ended_on=episode.ended_on.isoformat())
        if ended_on < episode.starts_on:
            raise InvalidValue("ended_on", "Ngày kết thúc phải từ ngày bắt đầu trở đi",
                               "The end must be on or after the start")
        self._quarantine_ended(episode_id=episode_id, ended_on=ended_on, actor=actor)
        return self.episodes[episode_id]

    @event("QuarantineEnded")
    def _quarantine_ended(self, episode_id: UUID, ended_on: date, actor: str) -> None:
        self.episodes[episode_id] = replace(self.episodes[episode_id], ended_on=ended_on)

    def in_quarantine_on(self, day: date) -> bool:
        return any(e.covers(day) for e in self.episodes.values())

    # -- merging duplicates

    def merge_into(self, survivor: "Household", actor: str, reason: str | None = None) -> None:
        """This household was a duplicate of `survivor`; both record it."""
        if survivor.id == self.id:
            raise CannotMerge("Không thể gộp một hộ vào chính nó", "A household cannot merge into itself")
        self._check_active()
        survivor._check_active()
        self._merged_into(survivor_id=survivor.id, reason=reason, actor=actor)
        survivor._absorbed(merged_id=self.id, reason=reason, actor=actor)

    @event("MergedInto")
    def _merged_into(self, survivor_id: UUID, reason: str | None, actor: str) -> None:
        self.merged_into = survivor_id

    @event("Absorbed")
    def _absorbed(self, merged_id: UUID, reason: str | None, actor: str) -> None:
        self.merged_from.append(merged_id)

    def _check_active(self) -> None:
        if self.merged_into is not None:
            raise HouseholdMergedAway(self.id, self.merged_into)


class HeadCitizenId(Aggregate):
    """Once-only claim of a head's CCCD. Its id derives from the CCCD, so a second claim
    collides on the store's unique (id, version) key: no check-then-act. The derivation is keyed
    (HMAC with a secret from the personal-data key): ids are stored in clear, and a plain hash of
    12 digits could be reversed by trying them all."""

    @staticmethod
    def id_for(cccd: str, secret: bytes) -> UUID:
        return uuid5(NAMESPACE, "head-cccd:" + hmac.new(secret, cccd.encode(), hashlib.sha256).hexdigest())

    @classmethod
    def claim(cls, cccd: str, secret: bytes, household_id: UUID, actor: str) -> "HeadCitizenId":
        return cls(household_id=household_id, actor=actor, id=cls.id_for(cccd, secret))

    @event("Claimed")
    def __init__(self, id: UUID, household_id: UUID, actor: str):  # noqa: A002
        self.household_id: UUID | None = household_id

    @event("Released")
    def release(self, actor: str) -> None:
        self.household_id = None

    @event("Reclaimed")
    def reclaim(self, household_id: UUID, actor: str) -> None:
        self.household_id = household_id


class DuplicateDismissal(Aggregate):
    """Staff reviewed a suspected duplicate pair and found two real households."""

    @staticmethod
    def id_for(first: UUID, second: UUID) -> UUID:
        a, b = sorted((first, second))
        return uuid5(NAMESPACE, f"dismissed:{a}:{b}")

    @classmethod
    def dismiss(cls, first: UUID, second: UUID, reason: str | None, actor: str) -> "DuplicateDismissal":
        if first == second:
            raise InvalidValue("household_ids", "Cần hai hộ khác nhau", "Two different households are needed")
        return cls(household_ids=sorted((first, second)), reason=reason, actor=actor,
                   id=cls.id_for(first, second))

    @event("Dismissed")
    def __init__(self, id: UUID, household_ids: list[UUID], reason: str | None, actor: str):  # noqa: A002
        self.household_ids = household_ids


def _checked_detail(name: str, value: Any) -> Any:
    match name:
        case "phone":
            return check_phone(value) if value else None
        case "commune_code":
            return check_commune(value)
        case "village":
            return check_text(value, "village", max_length=100)
        case "address":
            return check_text(value, "address", required=False, max_length=300)
        case "poverty_status":
            return check_choice(PovertyStatus, value, "poverty_status")
        case "legal_basis":
            return value if isinstance(value, LegalBasis) else LegalBasis.new(**value)
        case "head_name":
            return check_text(value, "head_name", max_length=100)
        case "head_cccd":
            return check_cccd(value, "head_cccd")
        case "head_birth_year":
            return check_birth_year(value, "head_birth_year")
    raise InvalidValue(name, "Trường này không sửa được", "This field cannot be corrected")


def _unique_citizen_ids(members: list[Member]) -> None:
    seen: set[str] = set()
    for member in members:
        if member.cccd and member.cccd in seen:
            raise InvalidValue("cccd", "Hai người trong hộ không thể cùng số CCCD",
                               "Two members cannot share a CCCD")
        if member.cccd:
            seen.add(member.cccd)
