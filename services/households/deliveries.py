"""What a household has received, as the ledger recorded it.

Built only from the ledger's contract events (DistributionRecorded / Reversed), one
aggregate per household with an id derived from the household's, so staff see deliveries
beside the registry without the ledger ever holding a name. Idempotent by entry number.
"""

from dataclasses import dataclass, replace
from datetime import datetime
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import Aggregate, event

from contracts import DistributionRecorded, DistributionReversed
from services.common.store import UnitOfWork


def history_id(household_id: UUID) -> UUID:
    return uuid5(NAMESPACE_URL, f"households/{household_id}/deliveries")


@dataclass(frozen=True)
class Delivery:
    entry_seq: int
    entitlement_id: UUID
    round_id: UUID
    items: tuple[tuple[str, str, int], ...]  # (item_code, unit, quantity)
    cash_vnd: int
    delivered_at: datetime
    volunteer_id: str
    reversed_by_seq: int | None = None


class DeliveryHistory(Aggregate):
    @staticmethod
    def create_id(household_id: UUID) -> UUID:
        return history_id(household_id)

    @event("Started")
    def __init__(self, household_id: UUID):
        self.household_id = household_id
        self.deliveries: dict[int, Delivery] = {}
        self.seen: set[int] = set()

    @event("Delivered")
    def record(self, delivery: dict) -> None:
        entry = Delivery(**{**delivery, "items": tuple(tuple(line) for line in delivery["items"])})
        self.deliveries[entry.entry_seq] = entry
        self.seen.add(entry.entry_seq)

    @event("Reversed")
    def reverse(self, entry_seq: int, reverses_seq: int) -> None:
        self.seen.add(entry_seq)
        if reverses_seq in self.deliveries:
            self.deliveries[reverses_seq] = replace(self.deliveries[reverses_seq], reversed_by_seq=entry_seq)


def _history(uow: UnitOfWork, household_id: UUID) -> DeliveryHistory:
    history = uow.get(history_id(household_id))
    if history is None:
        history = DeliveryHistory(household_id=household_id)
        uow.add(history)
    return history


def on_recorded(uow: UnitOfWork, e: DistributionRecorded) -> None:
    history = _history(uow, e.household_id)
    if e.entry_seq not in history.seen:
        history.record({
            "entry_seq": e.entry_seq, "entitlement_id": e.source_id, "round_id": e.round_id,
            "items": [(line.item_code, line.unit, line.quantity) for line in e.items],
            "cash_vnd": e.cash_vnd, "delivered_at": e.delivered_at, "volunteer_id": e.volunteer_id,
        })


def on_reversed(uow: UnitOfWork, e: DistributionReversed) -> None:
    history = _history(uow, e.household_id)
    if e.entry_seq not in history.seen:
        history.reverse(e.entry_seq, e.reverses_seq)


LEDGER_HANDLERS = {DistributionRecorded: on_recorded, DistributionReversed: on_reversed}


def view(history: DeliveryHistory | None) -> list[dict]:
    if history is None:
        return []
    return [
        {"entry_seq": d.entry_seq, "entitlement_id": str(d.entitlement_id), "round_id": str(d.round_id),
         "items": [{"item_code": c, "unit": u, "quantity": q} for c, u, q in d.items], "cash_vnd": d.cash_vnd,
         "delivered_at": d.delivered_at.isoformat(), "volunteer_id": d.volunteer_id,
         "reversed_by_seq": d.reversed_by_seq}
        for d in sorted(history.deliveries.values(), key=lambda d: d.entry_seq)
    ]
