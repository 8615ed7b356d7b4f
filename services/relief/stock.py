"""Stock per campaign and item, kept in lots so that first-expiry-first-out is real.

A lot is what shares an expiry date and an earmark (the donation whose gift it is, or none
for the common pool). Per lot and so per item, at every moment:

    received = allocated + available + written_off + transferred_out
    allocated = delivered + pending            (per item; delivered comes from the ledger)

Allocation takes only from the common pool unless it names the earmarked donation, skips
lots expired before the distribution date, and never overdraws. Rules run in the command
methods; the @event methods only apply what was decided.
"""

from dataclasses import dataclass
from datetime import date
from enum import StrEnum
from uuid import UUID, uuid5

from eventsourcing.domain import Aggregate, event

from services.common.errors import Conflict, Invalid, NotFound

NAMESPACE = UUID("3c0f6b9e-51a2-5d7c-8e44-a1b2c3d4e5f6")
COMMON = "common"


class WriteOffReason(StrEnum):
    spoiled = "spoiled"
    expired = "expired"
    damaged = "damaged"


class Overdraft(Conflict):
    """Not enough usable stock; `shortfall` says how much is missing per item."""

    code = "overdraft"

    def __init__(self, shortfall: dict[str, int]):
        listed = ", ".join(f"{item}: {qty}" for item, qty in shortfall.items())
        super().__init__(f"Không đủ hàng trong kho (còn thiếu {listed})",
                         f"Not enough stock (short by {listed})", shortfall=shortfall)
        self.shortfall = shortfall
        self.item = next(iter(shortfall))


class NotPending(Conflict):
    code = "not_pending"


class LotNotFound(NotFound):
    def __init__(self, item_code: str, lot: str):
        super().__init__("Không tìm thấy lô hàng", "Lot not found", item_code=item_code, lot=lot)


def lot_key(expiry: date | None, earmark: UUID | None) -> str:
    return f"{expiry.isoformat() if expiry else 'no-expiry'}/{earmark or COMMON}"


@dataclass
class Lot:
    key: str
    expiry: date | None
    earmark: UUID | None
    received: int = 0
    allocated: int = 0
    written_off: int = 0
    transferred_out: int = 0

    @property
    def available(self) -> int:
        return self.received - self.allocated - self.written_off - self.transferred_out

    def usable(self, on: date | None) -> bool:
        return self.available > 0 and (on is None or self.expiry is None or self.expiry >= on)


@dataclass
class Allocated:
    lots: dict[str, int]
    delivered: int = 0

    @property
    def quantity(self) -> int:
        return sum(self.lots.values())

    @property
    def pending(self) -> int:
        return self.quantity - self.delivered


@dataclass(frozen=True)
class StockLevel:
    item_code: str
    unit: str
    received: int
    allocated: int
    delivered: int
    written_off: int
    transferred_out: int
    available: int
    earmarked: int  # part of `available` reserved for earmarked gifts
    received_state_budget: int  # part of `received` that is state-budget aid

    @property
    def pending(self) -> int:
        return self.allocated - self.delivered

    @property
    def free(self) -> int:
        return self.available - self.earmarked


def fefo(lots: list[Lot]) -> list[Lot]:
    return sorted(lots, key=lambda lot: (lot.expiry is None, lot.expiry or date.max, lot.key))


class StockItem(Aggregate):
    """One item's stock in one campaign (cash is the item "cash", in VND)."""

    @staticmethod
    def create_id(campaign_id: UUID, item_code: str) -> UUID:
        return uuid5(NAMESPACE, f"stock/{campaign_id}/{item_code}")

    @event("Opened")
    def __init__(self, campaign_id: UUID, item_code: str, unit: str):
        self.campaign_id = campaign_id
        self.item_code = item_code
        self.unit = unit
        self.lots: dict[str, Lot] = {}
        self.allocations: dict[str, Allocated] = {}
        self.delivered = 0
        self.received_state_budget = 0

    # -- reading

    def level(self) -> StockLevel:
        lots = self.lots.values()
        return StockLevel(
            item_code=self.item_code, unit=self.unit, received=sum(lot.received for lot in lots),
            allocated=sum(lot.allocated for lot in lots), delivered=self.delivered,
            written_off=sum(lot.written_off for lot in lots),
            transferred_out=sum(lot.transferred_out for lot in lots),
            available=sum(lot.available for lot in lots),
            earmarked=sum(lot.available for lot in lots if lot.earmark is not None),
            received_state_budget=self.received_state_budget)

    def usable(self, on: date | None, earmark: UUID | None = None) -> int:
        return sum(lot.available for lot in self.lots.values() if lot.earmark == earmark and lot.usable(on))

    def _pick(self, quantity: int, on: date | None, earmark: UUID | None = None,
              taken: dict[str, int] | None = None) -> dict[str, int]:
        """Lots to take `quantity` from, first expiry first; `taken` are picks not yet applied."""
        taken = taken or {}
        picked: dict[str, int] = {}
        left = quantity
        for lot in fefo([lot for lot in self.lots.values() if lot.earmark == earmark and lot.usable(on)]):
            take = min(left, lot.available - taken.get(lot.key, 0))
            if take > 0:
                picked[lot.key] = take
                left -= take
            if left == 0:
                return picked
        if left > 0:
            raise Overdraft({self.item_code: left})
        return picked

    # -- in

    def receive(self, quantity: int, expiry: date | None, earmark: UUID | None, source: str,
                reference: str) -> None:
        if quantity > 0:
            self._received(lot=lot_key(expiry, earmark), expiry=expiry, earmark=earmark, quantity=quantity,
                           source=source, reference=reference)

    @event("Received")
    def _received(self, lot: str, expiry: date | None, earmark: UUID | None, quantity: int, source: str,
                  reference: str) -> None:
        self.lots.setdefault(lot, Lot(lot, expiry, earmark)).received += quantity
        if source == "state_budget":
            self.received_state_budget += quantity

    # -- allocation (distribution rounds)

    def allocate(self, quantities: dict[UUID, int], on: date | None, earmark: UUID | None = None) -> None:
        """Set aside stock for each allocation (FEFO); all or nothing; an allocation id
        already applied is skipped."""
        new = {str(a): q for a, q in quantities.items() if q > 0 and str(a) not in self.allocations}
        missing = sum(new.values()) - self.usable(on, earmark)
        if missing > 0:
            raise Overdraft({self.item_code: missing})
        plan: dict[str, dict[str, int]] = {}
        taken: dict[str, int] = {}
        for allocation_id, quantity in new.items():
            plan[allocation_id] = picked = self._pick(quantity, on, earmark, taken)
            for key, take in picked.items():
                taken[key] = taken.get(key, 0) + take
        if plan:
            self._allocated(allocations=plan)

    @event("Allocated")
    def _allocated(self, allocations: dict[str, dict[str, int]]) -> None:
        for allocation_id, lots in allocations.items():
            self.allocations[allocation_id] = Allocated(dict(lots))
            for key, quantity in lots.items():
                self.lots[key].allocated += quantity

    def release(self, allocation_id: UUID, quantity: int) -> None:
        """Give back what a cancelled entitlement had set aside and not yet received."""
        allocated = self.allocations.get(str(allocation_id))
        pending = allocated.pending if allocated else 0
        if quantity > pending:
            raise NotPending("Không thể hoàn lại nhiều hơn phần đã phân bổ mà chưa phát",
                             "Cannot release more than was allocated and not yet delivered",
                             item_code=self.item_code, pending=pending, requested=quantity)
        lots: dict[str, int] = {}
        left = quantity
        for lot in reversed(fefo([self.lots[key] for key in allocated.lots] if allocated else [])):
            take = min(left, allocated.lots[lot.key])
            if take > 0:
                lots[lot.key] = take
                left -= take
        if lots:
            self._released(allocation_id=str(allocation_id), lots=lots)

    @event("Released")
    def _released(self, allocation_id: str, lots: dict[str, int]) -> None:
        allocated = self.allocations[allocation_id]
        for key, quantity in lots.items():
            allocated.lots[key] -= quantity
            self.lots[key].allocated -= quantity

    # -- delivery (from the ledger)

    def deliver(self, allocation_id: UUID, quantity: int, entry_seq: int) -> int:
        """Count a delivery against its allocation; returns the quantity counted (never more
        than was pending, so allocated = delivered + pending keeps holding)."""
        allocated = self.allocations.get(str(allocation_id))
        counted = min(quantity, allocated.pending) if allocated else 0
        if counted > 0:
            self._delivered(allocation_id=str(allocation_id), quantity=counted, entry_seq=entry_seq)
        return counted

    @event("Delivered")
    def _delivered(self, allocation_id: str, quantity: int, entry_seq: int) -> None:
        self.allocations[allocation_id].delivered += quantity
        self.delivered += quantity

    def reverse_delivery(self, allocation_id: UUID, quantity: int, entry_seq: int) -> int:
        allocated = self.allocations.get(str(allocation_id))
        counted = min(quantity, allocated.delivered) if allocated else 0
        if counted > 0:
            self._delivery_reversed(allocation_id=str(allocation_id), quantity=counted, entry_seq=entry_seq)
        return counted

    @event("DeliveryReversed")
    def _delivery_reversed(self, allocation_id: str, quantity: int, entry_seq: int) -> None:
        self.allocations[allocation_id].delivered -= quantity
        self.delivered -= quantity

    # -- out of the books

    def write_off(self, quantity: int, reason: str, note: str, actor: str, lot: str | None = None) -> dict[str, int]:
        """From the named lot, or from the common pool first-expiry-first (expired lots included)."""
        if lot is not None:
            if lot not in self.lots:
                raise LotNotFound(self.item_code, lot)
            if self.lots[lot].available < quantity:
                raise Overdraft({self.item_code: quantity - self.lots[lot].available})
            picked = {lot: quantity}
        else:
            picked = self._pick(quantity, None)
        self._written_off(lots=picked, reason=reason, note=note, actor=actor)
        return picked

    @event("WrittenOff")
    def _written_off(self, lots: dict[str, int], reason: str, note: str, actor: str) -> None:
        for key, quantity in lots.items():
            self.lots[key].written_off += quantity

    def send(self, transfer_id: UUID, quantity: int, on: date | None) -> list[tuple[date | None, int]]:
        """Transfer out of the common pool (usable lots, FEFO); returns (expiry, quantity) per lot."""
        picked = self._pick(quantity, on)
        self._sent(transfer_id=transfer_id, lots=picked)
        return [(self.lots[key].expiry, qty) for key, qty in picked.items()]

    @event("Sent")
    def _sent(self, transfer_id: UUID, lots: dict[str, int]) -> None:
        for key, quantity in lots.items():
            self.lots[key].transferred_out += quantity

    def near_expiry(self, until: date) -> list[Lot]:
        return fefo([lot for lot in self.lots.values()
                     if lot.available > 0 and lot.expiry is not None and lot.expiry <= until])


class AllocationAlreadyMade(Conflict):
    code = "allocation_mismatch"


class AllocationRecord(Aggregate):
    """What one allocation (the distribution engineer uses the entitlement id) took, so that
    ledger events, which name only the entitlement, find their campaign."""

    @staticmethod
    def create_id(allocation_id: UUID) -> UUID:
        return uuid5(NAMESPACE, f"allocation/{allocation_id}")

    @event("Made")
    def __init__(self, allocation_id: UUID, campaign_id: UUID, lines: dict[str, int], donation_id: UUID | None):
        self.allocation_id = allocation_id
        self.campaign_id = campaign_id
        self.lines = dict(lines)
        self.donation_id = donation_id
        self.released: dict[str, int] = {}
        self.applied: set[int] = set()

    def same_as(self, campaign_id: UUID, lines: dict[str, int], donation_id: UUID | None) -> bool:
        return (self.campaign_id, self.lines, self.donation_id) == (campaign_id, lines, donation_id)

    @event("Released")
    def release(self, lines: dict[str, int]) -> None:
        for item, quantity in lines.items():
            self.released[item] = self.released.get(item, 0) + quantity

    def seen(self, entry_seq: int) -> bool:
        return entry_seq in self.applied

    @event("LedgerApplied")
    def apply_ledger(self, entry_seq: int, kind: str, counted: dict[str, int]) -> None:
        self.applied.add(entry_seq)


class TransferAlreadyReceived(Conflict):
    code = "transfer_already_received"


class TransferNotForThisCampaign(Conflict):
    code = "transfer_not_for_this_campaign"


class Transfer(Aggregate):
    """Goods (or cash) sent from one campaign's stock to another committee's campaign.
    Received once, by the campaign it was sent to, with the lots' expiry dates kept."""

    @staticmethod
    def create_id(transfer_id: UUID) -> UUID:
        return transfer_id

    @event("Sent")
    def __init__(self, transfer_id: UUID, from_campaign_id: UUID, to_campaign_id: UUID, lines: list[dict],
                 sent_on: date, note: str, document_ref: str, actor: str):
        self.from_campaign_id = from_campaign_id
        self.to_campaign_id = to_campaign_id
        self.lines = lines  # [{"item_code", "quantity", "expiry"}] one per lot sent
        self.sent_on = sent_on
        self.note = note
        self.document_ref = document_ref
        self.sent_by = actor
        self.received_on: date | None = None
        self.received_by: str | None = None

    def receive(self, campaign_id: UUID, on: date, actor: str) -> None:
        if self.received_on is not None:
            raise TransferAlreadyReceived("Lô chuyển giao này đã được nhận", "This transfer was already received",
                                          transfer=self.view())
        if campaign_id != self.to_campaign_id:
            raise TransferNotForThisCampaign("Lô chuyển giao này gửi cho đợt vận động khác",
                                             "This transfer was sent to another campaign", transfer=self.view())
        self._received(received_on=on, actor=actor)

    @event("Received")
    def _received(self, received_on: date, actor: str) -> None:
        self.received_on = received_on
        self.received_by = actor

    def view(self) -> dict:
        return {"transfer_id": str(self.id), "from_campaign_id": str(self.from_campaign_id),
                "to_campaign_id": str(self.to_campaign_id), "sent_on": self.sent_on.isoformat(),
                "sent_by": self.sent_by, "note": self.note, "document_ref": self.document_ref,
                "lines": [{**line, "expiry": line["expiry"].isoformat() if line["expiry"] else None}
                          for line in self.lines],
                "received_on": self.received_on.isoformat() if self.received_on else None,
                "received_by": self.received_by}


def check_quantity(value: int, field: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise Invalid(field, "Số lượng phải là số nguyên dương", "Quantity must be a positive integer")
    return value
