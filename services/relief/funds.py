"""Money and goods in: campaigns, donations and receipts, stock.

`FundsCommands` is mixed into the Relief application; `to_contract` maps its domain events
to contract events; `LEDGER_HANDLERS` count delivered stock from ledger events.

Concurrency: every command loads fresh aggregates and saves all it touched in one
`save()`. A concurrent writer makes that save raise IntegrityError (nothing written), and
the command starts again from fresh state.
"""

import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, fields
from datetime import date
from typing import Any, ClassVar, TypeVar
from uuid import UUID, uuid4, uuid5

from eventsourcing.domain import Aggregate
from eventsourcing.persistence import IntegrityError, JSONTranscoder, Transcoding

from contracts import ContractEvent, DistributionRecorded, DistributionReversed, DonationReceived
from contracts.relief import Earmark, LegalBasis, PackageLine
from services.common.consumer import Handler
from services.common.errors import Conflict, Invalid, NotFound
from services.common.store import UnitOfWork
from services.relief.campaigns import (Campaign, CampaignIndex, CampaignNotFound, Donation, DonationNotFound,
                                       IdempotencyKey, IdempotencyKeyReused, ReceiptBook, draft, fingerprint)
from services.relief.catalogue import CASH, ITEMS, item
from services.relief.domain import HouseholdEligibility
from services.relief.stock import (NAMESPACE, Allocated, AllocationAlreadyMade, AllocationRecord, Lot, NotPending,
                                   Overdraft, StockItem, StockLevel, Transfer, check_quantity)

log = logging.getLogger(__name__)
T = TypeVar("T")
ATTEMPTS = 100
SNAPSHOT_EVERY = 100


class Busy(Conflict):
    code = "busy"

    def __init__(self) -> None:
        super().__init__("Hệ thống đang bận ghi cùng lúc, vui lòng thử lại", "Too many concurrent writes; retry")


@dataclass(frozen=True)
class EarmarkedGift:
    donation_id: UUID
    receipt_number: int
    commune_code: str | None
    household_id: UUID | None
    cash_vnd: int
    goods: list[PackageLine]


class DataclassAsDict(Transcoding):
    def __init__(self, cls: type):
        self.type = cls
        self.name = f"relief_funds_{cls.__name__.lower()}"
        self._names = [f.name for f in fields(cls)]

    def encode(self, obj: Any) -> dict:
        return {name: getattr(obj, name) for name in self._names}

    def decode(self, data: dict) -> Any:
        return self.type(**data)


class FundsCommands:
    """Campaigns, donations, receipts and stock, on the Relief application."""

    # The receipt book and stock items gain an event per donation, allocation batch and
    # delivery; a snapshot every so often keeps loading them cheap.
    snapshotting_intervals: ClassVar[dict[type, int]] = {ReceiptBook: SNAPSHOT_EVERY, StockItem: SNAPSHOT_EVERY}

    def register_transcodings(self, transcoder: JSONTranscoder) -> None:
        super().register_transcodings(transcoder)  # type: ignore[misc]
        for cls in (Lot, Allocated):
            transcoder.register(DataclassAsDict(cls))

    # ---- campaigns

    def open_campaign(self, actor: str, **fields: Any) -> Campaign:
        Campaign.open(actor=actor, **fields)  # checks first: a refusal is not worth retrying

        def attempt() -> Campaign:  # fresh aggregates: a failed save() has taken their events
            campaign = Campaign.open(actor=actor, **fields)
            book = ReceiptBook(campaign_id=campaign.id)
            index = self.get_or_none(CampaignIndex.ID) or CampaignIndex()
            index.add(campaign.id)
            self.save(campaign, book, index)
            return campaign
        return _retrying(attempt)

    def campaign(self, campaign_id: UUID) -> Campaign:
        found = self.get_or_none(campaign_id)
        if not isinstance(found, Campaign):
            raise CampaignNotFound(campaign_id)
        return found

    def campaigns(self, unit_code: str | None = None) -> list[Campaign]:
        index = self.get_or_none(CampaignIndex.ID)
        found = [self.campaign(i) for i in (index.campaign_ids if index else [])]
        return [c for c in found if unit_code is None or c.unit_code == unit_code]

    def extend_campaign(self, campaign_id: UUID, actor: str, closes_on: date, approved_by: str,
                        document_ref: str) -> Campaign:
        def attempt() -> Campaign:
            campaign = self.campaign(campaign_id)
            campaign.extend(closes_on, approved_by, document_ref, actor)
            self.save(campaign)
            return campaign
        return _retrying(attempt)

    def receipt_book(self, campaign_id: UUID) -> ReceiptBook:
        self.campaign(campaign_id)
        return self.repository.get(ReceiptBook.create_id(campaign_id))

    # ---- donations

    def record_donation(self, campaign_id: UUID, actor: str, idempotency_key: str | None = None,
                        today: date | None = None, **fields: Any) -> tuple[Donation, bool]:
        """Record a donation (or state-budget aid, with `funding_source`) with the next receipt
        number; its goods and cash enter stock. Returns (donation, created). With an
        idempotency key, a repeat of the same body returns the first donation (created False)."""
        campaign = self.campaign(campaign_id)
        donation = draft(campaign, today=today or date.today(), **fields)
        household_id = (donation["earmark"] or {}).get("household_id")
        if household_id is not None and not isinstance(self.get_or_none(household_id), HouseholdEligibility):
            raise Invalid("earmark.household_id", "Cứu trợ chưa biết hộ gia đình này",
                          "Relief does not know this household")
        body_hash = fingerprint(donation)
        legal_basis = LegalBasis.state_budget if donation["funding_source"] else campaign.legal_basis

        def attempt() -> tuple[Donation, bool]:
            if idempotency_key is not None:
                used = self.get_or_none(IdempotencyKey.create_id(campaign_id, idempotency_key))
                if used is not None:
                    if used.fingerprint != body_hash:
                        raise IdempotencyKeyReused(
                            "Khoá Idempotency-Key này đã dùng cho một khoản ủng hộ khác",
                            "This Idempotency-Key was used for a different donation",
                            receipt_number=used.receipt_number)
                    return self.donation(campaign_id, used.receipt_number), False
            book: ReceiptBook = self.repository.get(ReceiptBook.create_id(campaign_id))
            number = book.issue(donation)
            recorded = Donation(campaign_id=campaign_id, receipt_number=number, legal_basis=str(legal_basis),
                                actor=actor, **donation)
            touched: list[Aggregate] = [book, recorded, *self._receive_stock(recorded)]
            if idempotency_key is not None:
                touched.append(IdempotencyKey(campaign_id=campaign_id, key=idempotency_key, fingerprint=body_hash,
                                              receipt_number=number))
            self.save(*touched)
            return recorded, True
        return _retrying(attempt)

    def _receive_stock(self, donation: Donation) -> list[StockItem]:
        earmark = donation.id if donation.earmark else None
        source = "state_budget" if donation.state_budget else "donation"
        stocks: dict[str, StockItem] = {}
        lines = [(CASH, donation.cash_vnd, None)] + [(g["item_code"], g["quantity"], g["expiry_date"])
                                                      for g in donation.goods]
        for code, quantity, expiry in lines:
            if quantity > 0:
                stock = stocks.get(code) or self._stock_item(donation.campaign_id, code)
                stock.receive(quantity, expiry, earmark, source, f"receipt {donation.receipt_number}")
                stocks[code] = stock
        return list(stocks.values())

    def donation(self, campaign_id: UUID, receipt_number: int) -> Donation:
        self.campaign(campaign_id)
        found = self.get_or_none(Donation.create_id(campaign_id, receipt_number))
        if found is None:
            raise DonationNotFound(campaign_id, receipt_number)
        return found

    def donations(self, campaign_id: UUID, offset: int = 0, limit: int = 50) -> tuple[list[Donation], int]:
        book = self.receipt_book(campaign_id)
        ids = book.donation_ids(range(offset + 1, offset + limit + 1))
        return [self.repository.get(i) for i in ids], book.last_number

    # ---- stock

    def _stock_item(self, campaign_id: UUID, item_code: str) -> StockItem:
        found = self.get_or_none(StockItem.create_id(campaign_id, item_code))
        return found or StockItem(campaign_id=campaign_id, item_code=item_code, unit=ITEMS[item_code].unit)

    def _stock_items(self, campaign_id: UUID) -> dict[str, StockItem]:
        found = {code: self.get_or_none(StockItem.create_id(campaign_id, code)) for code in ITEMS}
        return {code: stock for code, stock in found.items() if stock is not None}

    def stock_levels(self, campaign_id: UUID) -> dict[str, StockLevel]:
        """Per item code: received, allocated, delivered, written_off, transferred_out, available
        (and pending = allocated - delivered, earmarked = part of available kept for earmarked
        gifts, free = available - earmarked), in the item's unit (cash: VND)."""
        self.campaign(campaign_id)
        return {code: stock.level() for code, stock in self._stock_items(campaign_id).items()}

    def near_expiry(self, campaign_id: UUID, days: int, today: date | None = None) -> list[dict]:
        today = today or date.today()
        until = date.fromordinal(today.toordinal() + days)
        self.campaign(campaign_id)
        return [{"item_code": stock.item_code, "unit": stock.unit, "lot": lot.key, "expiry_date": lot.expiry,
                 "days_left": (lot.expiry - today).days, "available": lot.available,
                 "earmarked_donation_id": lot.earmark}
                for stock in self._stock_items(campaign_id).values() for lot in stock.near_expiry(until)]

    def write_off(self, campaign_id: UUID, actor: str, item_code: str, quantity: int, reason: str, note: str,
                  lot: str | None = None) -> tuple[StockLevel, dict[str, int]]:
        self.campaign(campaign_id)
        item(item_code)
        check_quantity(quantity, "quantity")

        def attempt() -> tuple[StockLevel, dict[str, int]]:
            stock = self.get_or_none(StockItem.create_id(campaign_id, item_code))
            if stock is None:
                raise Overdraft({item_code: quantity})
            lots = stock.write_off(quantity, reason, note, actor, lot)
            self.save(stock)
            return stock.level(), lots
        return _retrying(attempt)

    def transfer_out(self, campaign_id: UUID, actor: str, to_campaign_id: UUID, lines: dict[str, int],
                     note: str, document_ref: str, today: date | None = None) -> Transfer:
        """Send common-pool stock (usable lots, FEFO) to another committee's campaign."""
        self.campaign(campaign_id)
        if to_campaign_id == campaign_id or not isinstance(self.get_or_none(to_campaign_id), Campaign):
            raise Invalid("to_campaign_id", "Đợt vận động nhận phải là một đợt khác, đã có trong hệ thống",
                          "The receiving campaign must be another, existing campaign")
        today = today or date.today()
        lines = _checked_lines(lines, "lines")

        def attempt() -> Transfer:
            stocks = {code: self.get_or_none(StockItem.create_id(campaign_id, code)) for code in lines}
            missing = {code: qty - (stocks[code].usable(today) if stocks[code] else 0) for code, qty in lines.items()}
            if any(m > 0 for m in missing.values()):
                raise Overdraft({code: m for code, m in missing.items() if m > 0})
            transfer_id = uuid4()
            sent = [{"item_code": code, "quantity": qty, "expiry": expiry}
                    for code, quantity in lines.items()
                    for expiry, qty in stocks[code].send(transfer_id, quantity, today)]
            transfer = Transfer(transfer_id=transfer_id, from_campaign_id=campaign_id, to_campaign_id=to_campaign_id,
                                lines=sent, sent_on=today, note=note, document_ref=document_ref, actor=actor)
            self.save(transfer, *stocks.values())
            return transfer
        return _retrying(attempt)

    def receive_transfer(self, campaign_id: UUID, transfer_id: UUID, actor: str,
                         today: date | None = None) -> Transfer:
        """The receiving half of a transfer: once, at the campaign it was sent to."""
        self.campaign(campaign_id)

        def attempt() -> Transfer:
            transfer = self.get_or_none(transfer_id)
            if not isinstance(transfer, Transfer):
                raise NotFound("Không tìm thấy lô chuyển giao", "Transfer not found", transfer_id=str(transfer_id))
            transfer.receive(campaign_id, today or date.today(), actor)
            stocks: dict[str, StockItem] = {}
            for line in transfer.lines:
                code = line["item_code"]
                stock = stocks.get(code) or self._stock_item(campaign_id, code)
                stock.receive(line["quantity"], line["expiry"], None, "transfer", f"transfer {transfer_id}")
                stocks[code] = stock
            self.save(transfer, *stocks.values())
            return transfer
        return _retrying(attempt)

    # ---- the interface distribution rounds use

    def shortfall(self, campaign_id: UUID, needs: dict[str, int], on: date | None = None,
                  donation_id: UUID | None = None) -> dict[str, int]:
        """item_code -> how much is missing to cover `needs` from usable stock (the common pool,
        or the earmarked gift `donation_id`; lots expired before `on`, default today, do not
        count). Empty when everything is covered."""
        self.campaign(campaign_id)
        on = on or date.today()
        needs = _checked_lines(needs, "needs")
        short = {}
        for code, quantity in needs.items():
            stock = self.get_or_none(StockItem.create_id(campaign_id, code))
            missing = quantity - (stock.usable(on, donation_id) if stock else 0)
            if missing > 0:
                short[code] = missing
        return short

    def allocate(self, campaign_id: UUID, allocation_id: UUID, needs: dict[str, int], *, on: date | None = None,
                 donation_id: UUID | None = None, loaded: dict[UUID, Aggregate] | None = None) -> list[Aggregate]:
        """Set stock aside for one allocation (use the entitlement id as `allocation_id`), lots
        first-expiry-first-out, skipping lots expired before `on` (default today). Takes from
        the common pool, or only from the earmarked gift `donation_id`.

        Returns the changed aggregates UNSAVED: save them in the same `app.save()` as the
        entitlement, so both happen or neither. On IntegrityError from that save (someone
        else changed the same stock), call allocate again and retry.
        Raises Overdraft (item and shortfall) if stock does not cover `needs`; then nothing
        was changed. Idempotent: an allocation id already made with the same needs returns
        []; with other needs it raises AllocationAlreadyMade (409).

        `loaded`: several calls before ONE save must share the aggregates they change (two
        copies of one stock item in a save collide with each other). Pass the same dict to
        each call; an aggregate returned twice is harmless."""
        return self.allocate_many(campaign_id, {allocation_id: needs}, on=on, donation_id=donation_id, loaded=loaded)

    def allocate_many(self, campaign_id: UUID, allocations: dict[UUID, dict[str, int]], *, on: date | None = None,
                      donation_id: UUID | None = None, loaded: dict[UUID, Aggregate] | None = None
                      ) -> list[Aggregate]:
        """`allocate` for many allocations at once (a whole round), all or nothing."""
        self.campaign(campaign_id)
        on = on or date.today()
        loaded = {} if loaded is None else loaded
        per_item: dict[str, dict[UUID, int]] = {}
        records: list[AllocationRecord] = []
        for allocation_id, needs in allocations.items():
            needs = {code: qty for code, qty in _checked_lines(needs, "needs", allow_zero=True).items() if qty > 0}
            record = _get(self, AllocationRecord.create_id(allocation_id), loaded)
            if record is not None:
                if not record.same_as(campaign_id, needs, donation_id):
                    raise AllocationAlreadyMade("Phân bổ này đã được thực hiện với số lượng khác",
                                                "This allocation was already made with other quantities",
                                                allocation_id=str(allocation_id), lines=record.lines)
                continue
            records.append(AllocationRecord(allocation_id=allocation_id, campaign_id=campaign_id, lines=needs,
                                            donation_id=donation_id))
            for code, quantity in needs.items():
                per_item.setdefault(code, {})[allocation_id] = quantity
        stocks = {code: _get(self, StockItem.create_id(campaign_id, code), loaded) for code in per_item}
        short = {code: sum(quantities.values()) - (stocks[code].usable(on, donation_id) if stocks[code] else 0)
                 for code, quantities in per_item.items()}
        if any(missing > 0 for missing in short.values()):
            raise Overdraft({code: missing for code, missing in short.items() if missing > 0})
        for code, quantities in per_item.items():
            stocks[code].allocate(quantities, on, donation_id)
        for record in records:
            loaded[record.id] = record
        return [*stocks.values(), *records]

    def release(self, campaign_id: UUID, allocation_id: UUID, lines: dict[str, int], *,
                loaded: dict[UUID, Aggregate] | None = None) -> list[Aggregate]:
        """Give back to stock what a cancelled entitlement had set aside and not yet received
        (at most its pending quantity per item; NotPending 409 otherwise). Returns the changed
        aggregates UNSAVED, to save with the cancellation. `loaded` as for `allocate`."""
        loaded = {} if loaded is None else loaded
        lines = {code: qty for code, qty in _checked_lines(lines, "lines", allow_zero=True).items() if qty > 0}
        record = _get(self, AllocationRecord.create_id(allocation_id), loaded)
        if record is None or record.campaign_id != campaign_id:
            raise NotPending("Không có phân bổ này trong đợt vận động", "No such allocation in this campaign",
                             allocation_id=str(allocation_id))
        stocks = []
        for code, quantity in lines.items():
            stock = _get(self, StockItem.create_id(campaign_id, code), loaded)
            pending = stock.allocations[str(allocation_id)].pending if stock and str(allocation_id) in \
                stock.allocations else 0
            if quantity > pending:
                raise NotPending("Không thể hoàn lại nhiều hơn phần đã phân bổ mà chưa phát",
                                 "Cannot release more than was allocated and not yet delivered",
                                 item_code=code, pending=pending, requested=quantity)
            stocks.append(stock)
        for stock in stocks:
            stock.release(allocation_id, lines[stock.item_code])
        if lines:
            record.release(lines)
        return [*stocks, record] if lines else []

    def earmarked_gifts(self, campaign_id: UUID) -> list[EarmarkedGift]:
        """Gifts 'có địa chỉ', for one commune or one named household, in receipt order: each
        becomes entitlements for its named recipient only (allocate with donation_id=...)."""
        book = self.receipt_book(campaign_id)
        gifts = []
        for donation_id in book.donation_ids(book.earmarked):
            donation: Donation = self.repository.get(donation_id)
            gifts.append(EarmarkedGift(
                donation_id=donation.id, receipt_number=donation.receipt_number,
                commune_code=donation.earmark["commune_code"], household_id=donation.earmark["household_id"],
                cash_vnd=donation.cash_vnd,
                goods=[PackageLine(item_code=g["item_code"], unit=g["unit"], quantity=g["quantity"])
                       for g in donation.goods]))
        return gifts


def _get(app: Any, aggregate_id: UUID, loaded: dict[UUID, Aggregate]) -> Any:
    if aggregate_id not in loaded:
        found = app.get_or_none(aggregate_id)
        if found is None:
            return None
        loaded[aggregate_id] = found
    return loaded[aggregate_id]


def _checked_lines(lines: dict[str, int], field: str, allow_zero: bool = False) -> dict[str, int]:
    checked = {}
    for code, quantity in lines.items():
        item(code, f"{field}.{code}")
        if not isinstance(quantity, int) or isinstance(quantity, bool) or quantity < 0 or (
                quantity == 0 and not allow_zero):
            raise Invalid(f"{field}.{code}", "Số lượng phải là số nguyên dương", "Quantity must be a positive integer")
        checked[code] = quantity
    return checked


def _retrying(attempt: Callable[[], T]) -> T:
    for tries in range(ATTEMPTS):
        try:
            return attempt()
        except IntegrityError:
            time.sleep(random.uniform(0, 0.002 * min(tries + 1, 20)))
    raise Busy()


# ---- the bus ---------------------------------------------------------------------------

def to_contract(domain_event) -> ContractEvent | None:
    """DonationReceived for each donation: amounts, goods, earmark; never who gave."""
    if not isinstance(domain_event, Donation.Recorded):
        return None
    e = domain_event
    earmark = Earmark(**e.earmark) if e.earmark else None
    return DonationReceived(
        event_id=uuid5(NAMESPACE, f"{e.originator_id}:{e.originator_version}"), occurred_at=e.timestamp,
        source_id=e.originator_id, source_version=e.originator_version, campaign_id=e.campaign_id,
        receipt_number=e.receipt_number, legal_basis=e.legal_basis, received_on=e.received_on,
        cash_vnd=e.cash_vnd, earmark=earmark,
        goods=[PackageLine(item_code=g["item_code"], unit=g["unit"], quantity=g["quantity"]) for g in e.goods])


def _ledger_lines(event: DistributionRecorded | DistributionReversed) -> dict[str, int]:
    lines: dict[str, int] = {}
    for line in event.items:
        lines[line.item_code] = lines.get(line.item_code, 0) + line.quantity
    if event.cash_vnd:
        lines[CASH] = lines.get(CASH, 0) + event.cash_vnd
    return lines


def _apply_ledger(uow: UnitOfWork, event: DistributionRecorded | DistributionReversed, kind: str) -> None:
    record = uow.get(AllocationRecord.create_id(event.source_id))
    if record is None:
        log.warning("ledger entry %s for entitlement %s: no allocation in relief's stock", event.entry_seq,
                    event.source_id)
        return
    if record.seen(event.entry_seq):
        return
    counted = {}
    for code, quantity in _ledger_lines(event).items():
        stock = uow.get(StockItem.create_id(record.campaign_id, code))
        if stock is None:
            continue
        if kind == "delivered":
            counted[code] = stock.deliver(event.source_id, quantity, event.entry_seq)
        else:
            counted[code] = stock.reverse_delivery(event.source_id, quantity, event.entry_seq)
        if counted[code] != quantity:
            log.warning("ledger entry %s: %s %s of %s counted (%s reported)", event.entry_seq, kind,
                        counted[code], code, quantity)
    record.apply_ledger(event.entry_seq, kind, counted)


def on_distribution_recorded(uow: UnitOfWork, event: DistributionRecorded) -> None:
    _apply_ledger(uow, event, "delivered")


def on_distribution_reversed(uow: UnitOfWork, event: DistributionReversed) -> None:
    _apply_ledger(uow, event, "reversed")


LEDGER_HANDLERS: dict[type, Handler] = {
    DistributionRecorded: on_distribution_recorded,
    DistributionReversed: on_distribution_reversed,
}
