"""The households application: commands on households and the mapping to contracts."""

import base64
import hashlib
import hmac
from collections.abc import Callable, Sequence
from functools import cached_property
from dataclasses import fields
from datetime import date
from typing import Any, TypeVar
from uuid import UUID, uuid5

from eventsourcing.domain import DomainEventProtocol
from eventsourcing.persistence import IntegrityError, JSONTranscoder, Transcoding

from contracts import (ContractEvent, HouseholdCorrected, HouseholdRegistered, HouseholdsMerged,
                       MembersChanged, QuarantineEnded, QuarantineStarted)
from contracts.households import Vulnerability
from services.common.errors import Conflict
from services.common.store import ServiceApplication
from services.households.domain import (FLAGS, NAMESPACE, DuplicateDismissal, Episode, HeadAlreadyRegistered,
                                        HeadCitizenId, Household, HouseholdNotFound, LegalBasis, Member,
                                        vulnerability)
from services.households.views import summary

T = TypeVar("T")
ATTEMPTS = 3


class MemberAsDict(Transcoding):
    """Compact: a million households hold several million members."""

    type = Member
    name = "member"

    def encode(self, member: Member) -> dict:
        data: dict[str, Any] = {"id": member.member_id.hex, "name": member.name, "relation": member.relation}
        if member.birth_year is not None:
            data["birth_year"] = member.birth_year
        if member.cccd:
            data["cccd"] = member.cccd
        flags = [flag for flag in FLAGS if getattr(member, flag)]
        if flags:
            data["flags"] = flags
        return data

    def decode(self, data: dict) -> Member:
        return Member(member_id=UUID(data["id"]), name=data["name"], relation=data["relation"],
                      birth_year=data.get("birth_year"), cccd=data.get("cccd"),
                      **{flag: True for flag in data.get("flags", ())})


class DataclassAsDict(Transcoding):
    def __init__(self, cls: type):
        self.type = cls
        self.name = cls.__name__.lower()
        self._names = [f.name for f in fields(cls)]

    def encode(self, obj: Any) -> dict:
        return {name: getattr(obj, name) for name in self._names}

    def decode(self, data: dict) -> Any:
        return self.type(**data)


class Households(ServiceApplication):
    @cached_property
    def claim_secret(self) -> bytes:
        """Keys the ids of head-CCCD claims; derived from the personal-data key."""
        key = base64.b64decode(self.env.get("CIPHER_KEY") or "")
        return hmac.new(key, b"mttq-relief/head-cccd-claims", hashlib.sha256).digest()

    def register_transcodings(self, transcoder: JSONTranscoder) -> None:
        super().register_transcodings(transcoder)
        transcoder.register(MemberAsDict())
        for cls in (LegalBasis, Episode):
            transcoder.register(DataclassAsDict(cls))

    # -- registering (once per head CCCD)

    def register(self, actor: str, **details: Any) -> Household:
        household = Household.register(actor=actor, **details)
        [existing] = self.save_new([household], actor)
        if existing is not None:
            holder = self.resolve(existing)
            raise HeadAlreadyRegistered(
                "Chủ hộ có số CCCD này đã được đăng ký", "A household with this head's CCCD is already registered",
                household=summary(holder))
        return household

    def save_new(self, households: Sequence[Household], actor: str) -> list[UUID | None]:
        """Save new households with their head claims in one transaction; if one collides,
        fall back to one by one.

        Returns per household None (saved) or the id of the household whose head already
        holds that CCCD. The unique key of the claim's first event decides, not a lookup.
        """
        return self._save_chunk(households, actor) if households else []

    def _save_chunk(self, households: Sequence[Household], actor: str) -> list[UUID | None]:
        batches = [[*h.collect_events(), *HeadCitizenId.claim(h.head.cccd, self.claim_secret, h.id, actor).collect_events()]
                   for h in households]
        try:
            self.save(*(e for batch in batches for e in batch))
            return [None] * len(households)
        except IntegrityError:
            pass
        # Some head is registered already (a re-imported file): set those aside and save the
        # rest together; the store still judges them, one by one if it refuses again.
        outcomes = [self.claim_holder(h.head.cccd) for h in households]
        free = [i for i, holder in enumerate(outcomes) if holder is None]
        try:
            self.save(*(e for i in free for e in batches[i]))
        except IntegrityError:
            for i in free:
                outcomes[i] = self._save_one(households[i], batches[i], actor)
        return outcomes

    def _save_one(self, household: Household, events: list, actor: str) -> UUID | None:
        for _ in range(ATTEMPTS):
            try:
                self.save(*events)
                return None
            except IntegrityError:
                claim = self.get_or_none(HeadCitizenId.id_for(household.head.cccd, self.claim_secret))
                if claim is None:
                    raise
                if claim.household_id is not None:
                    return claim.household_id
                claim.reclaim(household.id, actor)  # released by a correction: free again
                events = [*events[:-1], *claim.collect_events()]
        raise IntegrityError(f"head claim for {household.id} kept colliding")

    def claim_holder(self, cccd: str) -> UUID | None:
        claim = self.get_or_none(HeadCitizenId.id_for(cccd, self.claim_secret))
        return None if claim is None else claim.household_id

    # -- one household

    def household(self, household_id: UUID) -> Household:
        found = self.get_or_none(household_id)
        if not isinstance(found, Household):
            raise HouseholdNotFound(household_id)
        return found

    def resolve(self, household_id: UUID) -> Household:
        """The household itself, or the survivor it was (transitively) merged into."""
        household = self.household(household_id)
        for _ in range(100):
            if household.merged_into is None:
                break
            household = self.household(household.merged_into)
        return household

    def history(self, household_id: UUID) -> list[DomainEventProtocol]:
        self.household(household_id)
        return list(self.events.get(household_id))

    def correct(self, household_id: UUID, actor: str, reason: str | None = None, **changes: Any) -> Household:
        return self._change(household_id, actor, lambda h: h.correct(actor, reason, **changes))[0]

    def add_member(self, household_id: UUID, member: Member, actor: str) -> Household:
        return self._change(household_id, actor, lambda h: h.add_member(member, actor))[0]

    def remove_member(self, household_id: UUID, member_id: UUID, actor: str, reason: str | None = None) -> Household:
        return self._change(household_id, actor, lambda h: h.remove_member(member_id, actor, reason))[0]

    def correct_member(self, household_id: UUID, member_id: UUID, actor: str, **changes: Any) -> Household:
        return self._change(household_id, actor, lambda h: h.correct_member(member_id, actor, **changes))[0]

    def start_quarantine(self, household_id: UUID, actor: str, **episode: Any) -> tuple[Household, Episode]:
        return self._change(household_id, actor, lambda h: h.start_quarantine(actor=actor, **episode))

    def end_quarantine(self, household_id: UUID, episode_id: UUID, ended_on: date, actor: str
                       ) -> tuple[Household, Episode]:
        return self._change(household_id, actor, lambda h: h.end_quarantine(episode_id, ended_on, actor))

    def _change(self, household_id: UUID, actor: str, command: Callable[[Household], T]) -> tuple[Household, T]:
        """Run a command on a fresh copy and save; a concurrent writer makes us retry."""
        for _ in range(ATTEMPTS):
            household = self.household(household_id)
            old_cccd = household.head.cccd
            result = command(household)
            events = list(household.collect_events())
            if not events:
                return household, result
            if household.head.cccd != old_cccd:
                events += self._move_claim(old_cccd, household, actor)
            try:
                self.save(*events)
                return household, result
            except IntegrityError:
                continue
        raise Conflict("Hộ vừa được người khác sửa, vui lòng thử lại",
                       "The household was changed at the same time; please retry")

    def _move_claim(self, old_cccd: str, household: Household, actor: str) -> list:
        new_cccd = household.head.cccd
        claim = self.get_or_none(HeadCitizenId.id_for(new_cccd, self.claim_secret))
        if claim is None:
            claim = HeadCitizenId.claim(new_cccd, self.claim_secret, household.id, actor)
        elif claim.household_id is None:
            claim.reclaim(household.id, actor)
        else:
            raise HeadAlreadyRegistered(
                "Số CCCD này đã là chủ hộ của hộ khác", "This CCCD is already the head of another household",
                household=summary(self.resolve(claim.household_id)))
        events = list(claim.collect_events())
        old = self.get_or_none(HeadCitizenId.id_for(old_cccd, self.claim_secret))
        if old is not None and old.household_id == household.id:
            old.release(actor)
            events += old.collect_events()
        return events

    # -- duplicates

    def merge(self, survivor_id: UUID, merged_id: UUID, actor: str, reason: str | None = None) -> Household:
        for _ in range(ATTEMPTS):
            survivor, merged = self.household(survivor_id), self.household(merged_id)
            merged.merge_into(survivor, actor, reason)
            try:
                self.save(merged, survivor)
                return survivor
            except IntegrityError:
                continue
        raise Conflict("Hộ vừa được người khác sửa, vui lòng thử lại",
                       "The household was changed at the same time; please retry")

    def dismiss_duplicate(self, first: UUID, second: UUID, actor: str, reason: str | None = None) -> None:
        """Record that two look-alike households are really different (idempotent)."""
        self.household(first), self.household(second)
        try:
            self.save(DuplicateDismissal.dismiss(first, second, reason, actor))
        except IntegrityError:
            pass  # dismissed before: the first review stands

    to_contract: Callable[[DomainEventProtocol], ContractEvent | None]


def to_contract(event: DomainEventProtocol) -> ContractEvent | None:
    """The public face of a private event: ids, place, dates and counts; nothing personal."""
    if not isinstance(event, Household.Event):
        return None
    envelope = dict(
        event_id=uuid5(NAMESPACE, f"{event.originator_id}:{event.originator_version}"),
        occurred_at=event.timestamp, source_id=event.originator_id, source_version=event.originator_version,
    )
    match event:
        case Household.Registered():
            members = [event.head, *event.members]
            return HouseholdRegistered(**envelope, commune_code=event.commune_code, village=event.village,
                                       member_count=len(members), poverty_status=event.poverty_status,
                                       vulnerability=vulnerability(members))
        case Household.Corrected():
            if not {"commune_code", "village", "poverty_status"} & set(event.changes):
                return None  # names, phone, address: nobody outside needs to know
            return HouseholdCorrected(**envelope, commune_code=event.commune_code, village=event.village,
                                      poverty_status=event.poverty_status)
        case Household.MemberCorrected() if not set(FLAGS) & set(event.changes):
            return None  # a name or birth year was fixed; the counts did not move
        case Household.MemberAdded() | Household.MemberRemoved() | Household.MemberCorrected():
            return MembersChanged(**envelope, member_count=event.member_count,
                                  vulnerability=Vulnerability(**event.vulnerability))
        case Household.QuarantineStarted():
            episode = event.episode
            return QuarantineStarted(**envelope, episode_id=episode.episode_id, starts_on=episode.starts_on,
                                     expected_end_on=episode.expected_end_on)
        case Household.QuarantineEnded():
            return QuarantineEnded(**envelope, episode_id=event.episode_id, ended_on=event.ended_on)
        case Household.Absorbed():
            return HouseholdsMerged(**envelope, merged_id=event.merged_id)
    return None


Households.to_contract = staticmethod(to_contract)  # type: ignore[assignment]
