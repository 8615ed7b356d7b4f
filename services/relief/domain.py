"""Relief's own view of a household: what eligibility needs, nothing personal.

One aggregate per household, with the household's id. It is built only from contract
events of services/households; `source_version` is the households aggregate version last
applied, so a copy of an event (redelivered, re-published, replayed) changes nothing.
"""

from dataclasses import dataclass, replace
from datetime import date
from uuid import UUID

from eventsourcing.domain import Aggregate, event


class OutOfStep(Exception):
    """An upstream event that cannot follow what relief knows (e.g. a quarantine for a
    household it never heard of). The consumer retries it, then parks it as a dead letter."""


@dataclass(frozen=True)
class QuarantineEpisode:
    episode_id: UUID
    starts_on: date
    expected_end_on: date
    ended_on: date | None = None

    @property
    def open(self) -> bool:
        return self.ended_on is None


class HouseholdEligibility(Aggregate):
    @staticmethod
    def create_id(household_id: UUID) -> UUID:
        return household_id

    @event("Registered")
    def __init__(self, household_id: UUID, source_version: int, commune_code: str, village: str, member_count: int,
                 poverty_status: str, vulnerability: dict[str, int]):
        self.source_version = source_version
        self.commune_code = commune_code
        self.village = village
        self.member_count = member_count
        self.poverty_status = poverty_status
        self.vulnerability = vulnerability
        self.episodes: dict[UUID, QuarantineEpisode] = {}
        self.merged_ids: list[UUID] = []
        self.merged_into: UUID | None = None

    def is_new(self, source_version: int) -> bool:
        return source_version > self.source_version

    @property
    def in_quarantine(self) -> bool:
        return any(episode.open for episode in self.episodes.values())

    @event("Corrected")
    def correct(self, source_version: int, commune_code: str, village: str, poverty_status: str) -> None:
        self.source_version = source_version
        self.commune_code = commune_code
        self.village = village
        self.poverty_status = poverty_status

    @event("MembersChanged")
    def change_members(self, source_version: int, member_count: int, vulnerability: dict[str, int]) -> None:
        self.source_version = source_version
        self.member_count = member_count
        self.vulnerability = vulnerability

    @event("QuarantineStarted")
    def start_quarantine(self, source_version: int, episode_id: UUID, starts_on: date,
                         expected_end_on: date) -> None:
        self.source_version = source_version
        self.episodes[episode_id] = QuarantineEpisode(episode_id, starts_on, expected_end_on)

    def end_quarantine(self, source_version: int, episode_id: UUID, ended_on: date) -> None:
        if episode_id not in self.episodes:
            raise OutOfStep(f"household {self.id} has no quarantine episode {episode_id}")
        self._end_quarantine(source_version, episode_id, ended_on)

    @event("QuarantineEnded")
    def _end_quarantine(self, source_version: int, episode_id: UUID, ended_on: date) -> None:
        self.source_version = source_version
        self.episodes[episode_id] = replace(self.episodes[episode_id], ended_on=ended_on)

    @event("Absorbed")
    def absorb(self, source_version: int, merged_id: UUID) -> None:
        """This household survived a merge: `merged_id` was a duplicate of it."""
        self.source_version = source_version
        self.merged_ids.append(merged_id)

    @event("MergedInto")
    def merge_into(self, survivor_id: UUID) -> None:
        """This household was a duplicate; its deliveries and eligibility belong to the survivor.
        Not versioned by its own source: the merge is an event of the survivor."""
        self.merged_into = survivor_id
