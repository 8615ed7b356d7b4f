"""Goods out: distribution rounds, entitlements, top-ups, cancellations, deliveries.

`DistributionCommands` is mixed into the Relief application and calls the funds side on the
same object (stock_levels, shortfall, allocate, release, earmarked_gifts). `to_contract` maps
entitlement events to contract events; `LEDGER_HANDLERS` mark entitlements served or re-opened.

Issuing saves each batch of entitlements together with their stock allocations (allocation
id = entitlement id) in one transaction; the round's own Issued event rides in the first
batch, so a second issue of the same round collides on the round's version and issues nothing.
"""

import contextlib
import logging
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from typing import Any
from uuid import UUID, uuid5
from zoneinfo import ZoneInfo

from eventsourcing.domain import Aggregate
from eventsourcing.persistence import IntegrityError

from contracts import (ContractEvent, DistributionRecorded, DistributionReversed, EntitlementCancelled,
                       EntitlementIssued, PackageLine)
from services.common.consumer import Handler
from services.common.errors import Conflict
from services.common.projection import read_model
from services.common.store import UnitOfWork
from services.relief.catalogue import ITEMS
from services.relief.domain import OutOfStep
from services.relief.eligibility import EligibilityModel
from services.relief.rounds import (CASH, Candidate, EarmarkedGiftUse, Entitlement, EntitlementNotFound,
                                    IssueResult, Round, RoundNotDraft, RoundNotFound, RoundNotIssued, Shortfall,
                                    add_lines, entitlement_id, gift_use_id, package_for, priority_key)

log = logging.getLogger(__name__)
BATCH = 500
ATTEMPTS = 5
LOCAL = ZoneInfo("Asia/Ho_Chi_Minh")


def today() -> date:
    return datetime.now(LOCAL).date()


@dataclass
class Issue:
    """One entitlement to save (and the gift it uses, if any), rebuilt fresh for each attempt."""

    kwargs: dict[str, Any]
    use: dict[str, Any] | None = None

    @property
    def id(self) -> UUID:
        return self.kwargs["id"]

    def build(self) -> list[Aggregate]:
        return [Entitlement(**self.kwargs), *([EarmarkedGiftUse(**self.use)] if self.use else [])]


def _issued_with(round_: Round, candidate: Candidate, lines: dict[str, int], units: dict[str, str], actor: str,
                 on: date, donation_id: UUID | None = None) -> dict[str, Any]:
    return dict(id=entitlement_id(round_.id, candidate.household_id, donation_id), round_id=round_.id,
                campaign_id=round_.campaign_id, household_id=candidate.household_id,
                commune_code=candidate.commune_code, village=candidate.village, lines=lines,
                units={code: units.get(code, "VND" if code == CASH else "đơn vị") for code in lines},
                eligible_since=candidate.eligible_since, issued_on=on, actor=actor,
                earmarked_donation_id=donation_id, included_because=candidate.included_because)


@dataclass
class Plan:
    """Who a round would issue to now, and what it needs."""

    round: Round
    candidates: list[Candidate]
    packages: dict[UUID, dict[str, int]]
    needs: dict[str, int]
    shortfall: dict[str, int]
    gifts: list[tuple[Any, list[tuple[Candidate, dict[str, int]]]]] = field(default_factory=list)
    unknown_includes: list[dict] = field(default_factory=list)
    excluded: list[dict] = field(default_factory=list)


class DistributionCommands:
    # -- the read model

    @property
    def eligibility_model(self) -> EligibilityModel:
        return read_model(self, EligibilityModel, "eligibility.sqlite")

    # -- rounds

    def draft_round(self, actor: str, campaign_id: UUID, name: str, planned_on: date, package: dict,
                    eligibility: dict) -> Round:
        self._check_campaign(campaign_id)
        round_ = Round(campaign_id=campaign_id, name=name, planned_on=planned_on, package=package,
                       eligibility=eligibility, actor=actor)
        self.save(round_)
        return round_

    def round(self, round_id: UUID) -> Round:
        found = self.get_or_none(round_id)
        if not isinstance(found, Round):
            raise RoundNotFound(round_id)
        return found

    def edit_round(self, round_id: UUID, actor: str, **changes: Any) -> Round:
        round_ = self.round(round_id)
        round_.edit(actor, **changes)
        try:
            self.save(round_)
        except IntegrityError:
            raise Conflict("Đợt vừa được sửa hoặc phát hành; hãy tải lại", "The round changed meanwhile; reload",
                           round_id=str(round_id)) from None
        return round_

    def plan(self, round_: Round, topping_up: bool) -> Plan:
        model = self.eligibility_model
        rule, since = round_.eligibility, round_.planned_on
        selected = {c.household_id: c for c in model.candidates(rule, since)}
        includes = {UUID(str(i["household_id"])): i["reason"] for i in rule.get("includes", [])}
        excludes = {UUID(str(x["household_id"])): x["reason"] for x in rule.get("excludes", [])}
        known = model.households([*includes, *excludes], since)
        unknown = [{"household_id": str(h), "reason": r} for h, r in includes.items() if known[h] is None]
        for household_id, reason in includes.items():
            if (found := known[household_id]) is not None:
                selected.setdefault(found.household_id, replace(found, included_because=reason))
        excluded = []
        for household_id, reason in excludes.items():
            survivor = known[household_id].household_id if known[household_id] else household_id
            if selected.pop(survivor, None) is not None:
                excluded.append({"household_id": str(survivor), "reason": reason})
        # a commune's gift is shared among all the round selects there, entitled already or not
        gifts = self._earmarked(round_, list(selected.values()), model)
        if topping_up:
            for household_id in model.entitled(round_.id):
                selected.pop(household_id, None)
        packages = {h: package_for(round_.package, c.member_count, c.vulnerability) for h, c in selected.items()}
        candidates = sorted((c for c in selected.values() if packages[c.household_id]),
                            key=lambda c: (c.commune_code, c.village, str(c.household_id)))
        needs: dict[str, int] = {}
        for candidate in candidates:
            add_lines(needs, packages[candidate.household_id])
        shortfall = self.shortfall(round_.campaign_id, needs) if needs else {}
        return Plan(round_, candidates, packages, needs, dict(shortfall), gifts, unknown, excluded)

    def preview(self, round_id: UUID, topping_up: bool | None = None) -> Plan:
        round_ = self.round(round_id)
        return self.plan(round_, round_.status != "draft" if topping_up is None else topping_up)

    def issue(self, round_id: UUID, actor: str, prioritise: bool = False, on: date | None = None) -> IssueResult:
        on = on or today()
        for _ in range(ATTEMPTS):
            round_ = self.round(round_id)
            if round_.status != "draft":
                raise RoundNotDraft(round_)
            plan = self.plan(round_, topping_up=False)
            chosen, waiting = self._fit(plan, prioritise)
            round_.issue(actor, on, count=len(chosen), waiting=len(waiting), prioritised=prioritise)
            try:
                result = self._issue(plan, chosen, actor, on, first=[round_])
            except IntegrityError:
                continue  # the round was issued meanwhile (refused above), or stock moved: plan again
            result.waiting, result.shortfall = waiting, plan.shortfall
            return result
        raise Conflict("Kho đang bận, hãy thử lại", "Stock is busy; please retry", round_id=str(round_id))

    def top_up(self, round_id: UUID, actor: str, prioritise: bool = False, on: date | None = None) -> IssueResult:
        """Issue to households that became eligible since (late registration, new quarantine) or
        that waited for stock. Two racing top-ups issue each household once: the ids collide."""
        round_ = self.round(round_id)
        if round_.status != "issued":
            raise RoundNotIssued(round_)
        plan = self.plan(round_, topping_up=True)
        chosen, waiting = self._fit(plan, prioritise)
        on = on or today()
        result = self._issue(plan, chosen, actor, on, first=[])
        result.waiting, result.shortfall = waiting, plan.shortfall
        for _ in range(ATTEMPTS if result.issued or waiting else 0):  # who topped up; entitlements are safe
            round_ = self.round(round_id)
            round_.top_up(actor, on, count=len(result.issued), waiting=len(waiting))
            with contextlib.suppress(IntegrityError):
                self.save(round_)
                break
        return result

    def _fit(self, plan: Plan, prioritise: bool) -> tuple[list[Candidate], list[Candidate]]:
        if not plan.shortfall:
            return plan.candidates, []
        if not prioritise:
            raise Shortfall(plan.shortfall, plan.needs, eligible=len(plan.candidates))
        ordered = sorted(plan.candidates, key=priority_key)
        low, high = 0, len(ordered)  # the longest prefix that stock covers (shortfall grows with it)
        while low < high:
            middle = (low + high + 1) // 2
            needs: dict[str, int] = {}
            for candidate in ordered[:middle]:
                add_lines(needs, plan.packages[candidate.household_id])
            if self.shortfall(plan.round.campaign_id, needs):
                high = middle - 1
            else:
                low = middle
        return ordered[:low], ordered[low:]

    def _issue(self, plan: Plan, chosen: list[Candidate], actor: str, on: date,
               first: list[Aggregate]) -> IssueResult:
        """Saves in batches; `first` (the round's Issued event) rides in the first batch."""
        round_, units = plan.round, self._units_of(plan.round)
        general = [Issue(_issued_with(round_, c, plan.packages[c.household_id], units, actor, on)) for c in chosen]
        batches = [general[i:i + BATCH] for i in range(0, len(general), BATCH)]
        for gift, shares in plan.gifts:  # one batch per gift: its lots are allocated apart from the pool
            use = dict(id=gift_use_id(gift_id(gift)), donation_id=gift_id(gift), round_id=round_.id,
                       household_ids=[c.household_id for c, _ in shares])
            batches.append([Issue(_issued_with(round_, c, lines, units, actor, on, gift_id(gift)),
                                  use if i == 0 else None) for i, (c, lines) in enumerate(shares)])
        result = IssueResult(round_.id)
        for number, batch in enumerate(batches):
            try:
                self._save_batch(round_.campaign_id, batch, first if number == 0 else [])
                result.issued += [item.id for item in batch]
            except IntegrityError:
                if number == 0 and first:
                    raise  # the round itself changed: nothing was issued by this call
                for item in batch:
                    if self._save_one(round_.campaign_id, item):
                        result.issued.append(item.id)
                    else:
                        result.skipped += 1
        if not batches and first:
            self.save(*first)
        return result

    def _allocations(self, campaign_id: UUID, batch: list["Issue"]) -> list[Aggregate]:
        """Stock set aside for each entitlement (allocation id = entitlement id), unsaved. A batch
        is all from the pool or all from one earmarked gift's own lots."""
        return self.allocate_many(campaign_id, {item.id: item.kwargs["lines"] for item in batch},
                                  donation_id=batch[0].kwargs["earmarked_donation_id"])

    def _save_batch(self, campaign_id: UUID, batch: list["Issue"], first: list[Aggregate]) -> None:
        aggregates = [*first]
        for item in batch:
            aggregates += item.build()
        self.save(*aggregates, *self._allocations(campaign_id, batch))

    def _save_one(self, campaign_id: UUID, item: "Issue") -> bool:
        """After a batch collided: False if someone else issued this entitlement (or gift) meanwhile."""
        for _ in range(ATTEMPTS):
            if self.get_or_none(item.id) is not None:
                return False
            if item.use and self.get_or_none(item.use["id"]) is not None:
                return False
            try:
                self.save(*item.build(), *self._allocations(campaign_id, [item]))
                return True
            except IntegrityError:
                continue
        raise Conflict("Kho đang bận, hãy thử lại", "Stock is busy; please retry", entitlement_id=str(item.id))

    def _units_of(self, round_: Round) -> dict[str, str]:
        return {code: item.unit for code, item in ITEMS.items()}

    # -- earmarked gifts ("có địa chỉ")

    def _earmarked(self, round_: Round, selected: list[Candidate], model: EligibilityModel) -> list:
        """A gift for a named household goes to that household (its survivor) whole; a gift for a
        commune is shared among this round's selected households of that commune. A gift is
        used by one round only (EarmarkedGiftUse)."""
        plans = []
        for gift in self.earmarked_gifts(round_.campaign_id) or []:
            donation_id, household_id, commune_code, lines = _gift_parts(gift)
            if not lines or self.get_or_none(gift_use_id(donation_id)) is not None:
                continue  # used by another round (the store would refuse it anyway)
            if self.shortfall(round_.campaign_id, lines, donation_id=donation_id):
                continue  # partly written off or transferred: the officer decides what to do
            if household_id is not None:
                found = model.households([household_id], round_.planned_on)[household_id]
                if found is not None:
                    plans.append((gift, [(found, lines)]))
            elif commune_code is not None:
                here = sorted((c for c in selected if c.commune_code == commune_code), key=priority_key)
                if here:
                    plans.append((gift, _share(lines, here)))
        return plans

    # -- entitlements

    def entitlement(self, entitlement_id_: UUID) -> Entitlement:
        found = self.get_or_none(entitlement_id_)
        if not isinstance(found, Entitlement):
            raise EntitlementNotFound(entitlement_id_)
        return found

    def cancel_entitlement(self, entitlement_id_: UUID, reason: str, note: str | None, actor: str) -> Entitlement:
        for _ in range(ATTEMPTS):
            entitlement = self.entitlement(entitlement_id_)
            entitlement.cancel(reason, note, actor, today())
            try:
                self.save(entitlement, *self.release(entitlement.campaign_id, entitlement.id, entitlement.lines))
                return entitlement
            except IntegrityError:
                continue  # served or stock moved meanwhile: look again
        raise Conflict("Suất đang được cập nhật, hãy thử lại", "The entitlement is busy; retry",
                       entitlement_id=str(entitlement_id_))

    def not_served(self, round_id: UUID, commune_code: str | None = None, village: str | None = None,
                   on: date | None = None) -> dict:
        """Entitled but not delivered, and eligible but not yet entitled (waiting for stock or a top-up)."""
        round_ = self.round(round_id)
        on = on or today()
        _, open_ = self.eligibility_model.entitlements(round_id, commune_code, village, "issued", limit=1_000_000)
        rows = [{"state": "entitled", "entitlement_id": r["id"], "household_id": r["household_id"],
                 "commune_code": r["commune_code"], "village": r["village"], "eligible_since": r["eligible_since"],
                 "issued_on": r["issued_on"]} for r in open_]
        if round_.status == "issued":
            for c in self.plan(round_, topping_up=True).candidates:
                if (not commune_code or c.commune_code == commune_code) and (
                        not village or _same_village(c.village, village)):
                    rows.append({"state": "not_entitled", "entitlement_id": None, "household_id": str(c.household_id),
                                 "commune_code": c.commune_code, "village": c.village,
                                 "eligible_since": c.eligible_since.isoformat(), "issued_on": None})
        places: dict[tuple[str, str], dict] = {}
        for row in rows:
            row["waiting_days"] = (on - date.fromisoformat(row["eligible_since"])).days
            place = places.setdefault((row["commune_code"], row["village"]), {
                "commune_code": row["commune_code"], "village": row["village"], "entitled": 0, "not_entitled": 0,
                "longest_wait_days": 0})
            place[row["state"]] += 1
            place["longest_wait_days"] = max(place["longest_wait_days"], row["waiting_days"])
        rows.sort(key=lambda r: (-r["waiting_days"], r["commune_code"], r["village"], r["household_id"]))
        return {"round_id": str(round_id), "as_of": on.isoformat(), "total": len(rows),
                "by_place": sorted(places.values(), key=lambda p: (p["commune_code"], p["village"])),
                "households": rows}

    def _check_campaign(self, campaign_id: UUID) -> None:
        self.campaign(campaign_id)  # funds: NotFound for an unknown campaign


def _same_village(a: str, b: str) -> bool:
    return " ".join(a.split()).casefold() == " ".join(b.split()).casefold()


def gift_id(gift: Any) -> UUID:
    return _gift_parts(gift)[0]


def _gift_parts(gift: Any) -> tuple[UUID, UUID | None, str | None, dict[str, int]]:
    """(donation id, household, commune, lines) of funds' EarmarkedGift, whatever its exact shape."""
    donation_id = getattr(gift, "donation_id", None) or gift.id
    earmark = getattr(gift, "earmark", None)
    household_id = getattr(gift, "household_id", None) or getattr(earmark, "household_id", None)
    commune_code = getattr(gift, "commune_code", None) or getattr(earmark, "commune_code", None)
    lines = getattr(gift, "lines", None)
    if lines is None:
        lines = {line.item_code: line.quantity for line in getattr(gift, "goods", [])}
        if getattr(gift, "cash_vnd", 0):
            lines[CASH] = gift.cash_vnd
    return donation_id, household_id, commune_code, {k: v for k, v in dict(lines).items() if v > 0}


def _share(lines: dict[str, int], households: list[Candidate]) -> list[tuple[Candidate, dict[str, int]]]:
    """Equal shares in whole units; the remainder goes one unit each to the first in priority order."""
    count = len(households)
    shares = []
    for index, household in enumerate(households):
        share = {code: total // count + (1 if index < total % count else 0) for code, total in lines.items()}
        share = {code: quantity for code, quantity in share.items() if quantity}
        if share:
            shares.append((household, share))
    return shares


# -- contract events and ledger events

def to_contract(domain_event) -> ContractEvent | None:
    if not isinstance(domain_event, Entitlement.Event):
        return None
    envelope = dict(event_id=uuid5(domain_event.originator_id, f"v{domain_event.originator_version}"),
                    occurred_at=domain_event.timestamp, source_id=domain_event.originator_id,
                    source_version=domain_event.originator_version)
    match domain_event:
        case Entitlement.Issued():
            e = domain_event
            items = [PackageLine(item_code=code, unit=e.units.get(code, "đơn vị"), quantity=quantity)
                     for code, quantity in e.lines.items() if code != CASH]
            return EntitlementIssued(**envelope, round_id=e.round_id, campaign_id=e.campaign_id,
                                     household_id=e.household_id, commune_code=e.commune_code, village=e.village,
                                     items=items, cash_vnd=e.lines.get(CASH, 0),
                                     earmarked_donation_id=e.earmarked_donation_id,
                                     eligible_since=e.eligible_since, issued_on=e.issued_on)
        case Entitlement.Cancelled():
            return EntitlementCancelled(**envelope, round_id=domain_event.round_id,
                                        household_id=domain_event.household_id, reason=domain_event.reason)
    return None


def _entitlement_for(uow: UnitOfWork, event: ContractEvent) -> Entitlement:
    entitlement = uow.get(event.source_id)
    if not isinstance(entitlement, Entitlement):
        raise OutOfStep(f"ledger event for unknown entitlement {event.source_id}")
    return entitlement


def on_distribution_recorded(uow: UnitOfWork, e: DistributionRecorded) -> None:
    _entitlement_for(uow, e).record_delivery(e.entry_seq, e.delivered_at, e.volunteer_id)


def on_distribution_reversed(uow: UnitOfWork, e: DistributionReversed) -> None:
    _entitlement_for(uow, e).record_reversal(e.entry_seq, e.reverses_seq, e.reason.value)


LEDGER_HANDLERS: dict[type, Handler] = {
    DistributionRecorded: on_distribution_recorded,
    DistributionReversed: on_distribution_reversed,
}



async def follow_eligibility(app: DistributionCommands) -> None:
    """Background loop (ServiceSpec.background): keep the eligibility read model current."""
    await app.eligibility_model.follow()
