"""Money and goods in: campaigns (đợt vận động), donations and their receipts (biên nhận).

Receipt numbers are gapless per campaign because each number is an event of the campaign's
ReceiptBook, saved in one transaction with the donation: two writers racing for the same
number collide on the book's next version, the loser's save writes nothing and it retries.
"""

import hashlib
from datetime import date
from enum import StrEnum
from typing import Any
from uuid import UUID, uuid5

import orjson
from eventsourcing.domain import Aggregate, event
from vietnam_provinces import Province, Ward

from contracts.relief import LegalBasis
from services.common.errors import Conflict, Invalid, NotFound
from services.relief.catalogue import CASH, item
from services.relief.stock import NAMESPACE

DECREE_93_IN_FORCE = date(2021, 12, 11)
CAMPAIGN_BASES = (LegalBasis.decree_64_2008, LegalBasis.decree_93_2021)


class CommitteeLevel(StrEnum):
    commune = "commune"
    province = "province"


class AccountKind(StrEnum):
    treasury = "treasury"
    bank = "bank"


class DonorKind(StrEnum):
    individual = "individual"
    organisation = "organisation"
    anonymous = "anonymous"


class Channel(StrEnum):
    cash = "cash"
    bank_transfer = "bank_transfer"
    goods = "goods"


# ---- named errors -------------------------------------------------------------------

class CampaignNotFound(NotFound):
    def __init__(self, campaign_id: UUID):
        super().__init__("Không tìm thấy đợt vận động", "Campaign not found", campaign_id=str(campaign_id))


class DonationNotFound(NotFound):
    def __init__(self, campaign_id: UUID, receipt_number: int):
        super().__init__("Không tìm thấy biên nhận", "Receipt not found", campaign_id=str(campaign_id),
                         receipt_number=receipt_number)


class OutsideWindow(Invalid):
    code = "outside_receiving_window"

    def __init__(self, received_on: date, opens_on: date, closes_on: date):
        window = f"{opens_on.isoformat()} – {closes_on.isoformat()}"
        super().__init__("received_on",
                         f"Ngày nhận {received_on.isoformat()} nằm ngoài thời gian tiếp nhận của đợt vận động "
                         f"({window}); cần gia hạn trước khi nhận",
                         f"Received on {received_on.isoformat()}, outside the campaign's receiving window "
                         f"({window}); extend the window first")
        self.window = {"opens_on": opens_on.isoformat(), "closes_on": closes_on.isoformat()}

    def body(self) -> dict[str, Any]:
        body = super().body()
        body["detail"][0]["window"] = self.window
        return body


class IdempotencyKeyReused(Conflict):
    code = "idempotency_key_reused"


def check_text(value: str | None, field: str, required: bool = True, max_length: int = 300) -> str:
    cleaned = " ".join(str(value or "").split())
    if required and not cleaned:
        raise Invalid(field, "Trường này không được để trống", "This field is required")
    if len(cleaned) > max_length:
        raise Invalid(field, f"Tối đa {max_length} ký tự", f"At most {max_length} characters")
    return cleaned


def check_unit(level: str, code: str, field: str = "unit_code") -> str:
    code = str(code).strip()
    try:
        if level == CommitteeLevel.commune and code.isdigit() and len(code) <= 5:
            Ward.from_code(int(code))
            return code.zfill(5)
        if level == CommitteeLevel.province and code.isdigit() and len(code) <= 2:
            Province.from_code(int(code))
            return code.zfill(2)
    except ValueError:
        pass
    raise Invalid(field, "Mã đơn vị hành chính không có trong danh mục hiện hành (xã 5 số, tỉnh 2 số)",
                   "Unit code is not in the current list (commune: 5 digits, province: 2 digits)")


def check_commune(code: str, field: str) -> str:
    return check_unit(CommitteeLevel.commune, code, field)


def unit_name(level: str, code: str) -> str:
    try:
        return (Ward if level == CommitteeLevel.commune else Province).from_code(int(code)).name
    except ValueError:
        return code


# ---- campaign -------------------------------------------------------------------------

class Campaign(Aggregate):
    """A call for donations by one committee, under one decree, through its accounts."""

    @classmethod
    def open(cls, level: str, unit_code: str, name: str, purpose: str, legal_basis: str, call_document: str,
             opens_on: date, closes_on: date, accounts: list[dict], actor: str) -> "Campaign":
        if legal_basis not in CAMPAIGN_BASES:
            raise Invalid("legal_basis", "Đợt vận động phải theo Nghị định 64/2008 hoặc 93/2021",
                           "A campaign is under Decree 64/2008 or 93/2021")
        if legal_basis == LegalBasis.decree_64_2008 and opens_on >= DECREE_93_IN_FORCE:
            raise Invalid("legal_basis", "Từ ngày 11/12/2021 Nghị định 64/2008 đã hết hiệu lực; dùng Nghị định 93/2021",
                           "Decree 64/2008 was replaced by Decree 93/2021 from 2021-12-11")
        if legal_basis == LegalBasis.decree_93_2021 and opens_on < DECREE_93_IN_FORCE:
            raise Invalid("legal_basis", "Nghị định 93/2021 chỉ có hiệu lực từ ngày 11/12/2021",
                           "Decree 93/2021 is in force only from 2021-12-11")
        if closes_on < opens_on:
            raise Invalid("closes_on", "Ngày kết thúc tiếp nhận phải sau ngày bắt đầu",
                           "The window must close on or after it opens")
        if not accounts:
            raise Invalid("accounts", "Cần ít nhất một tài khoản tiếp nhận", "At least one receiving account")
        if legal_basis == LegalBasis.decree_93_2021 and len(accounts) > 1:
            raise Invalid("accounts", "Theo Nghị định 93/2021 mỗi đợt vận động chỉ có một tài khoản tiếp nhận",
                           "Under Decree 93/2021 a campaign has exactly one receiving account")
        checked = []
        for index, account in enumerate(accounts):
            kind = account["kind"]
            bank = check_text(account.get("bank_name"), f"accounts.{index}.bank_name", required=kind == "bank",
                              max_length=200)
            checked.append({"kind": kind, "number": check_text(account["number"], f"accounts.{index}.number", True, 40),
                            "bank_name": bank or None})
        return cls(level=level, unit_code=check_unit(level, unit_code), name=check_text(name, "name", max_length=200),
                   purpose=check_text(purpose, "purpose", max_length=1000), legal_basis=legal_basis,
                   call_document=check_text(call_document, "call_document"), opens_on=opens_on,
                   closes_on=closes_on, accounts=checked, actor=actor)

    @event("Opened")
    def __init__(self, level: str, unit_code: str, name: str, purpose: str, legal_basis: str, call_document: str,
                 opens_on: date, closes_on: date, accounts: list[dict], actor: str):
        self.level = level
        self.unit_code = unit_code
        self.name = name
        self.purpose = purpose
        self.legal_basis = legal_basis
        self.call_document = call_document
        self.opens_on = opens_on
        self.closes_on = closes_on
        self.accounts = accounts
        self.opened_by = actor
        self.extensions: list[dict] = []

    @property
    def committee(self) -> str:
        return f"Ủy ban Mặt trận Tổ quốc Việt Nam {unit_name(self.level, self.unit_code)}"

    def extend(self, closes_on: date, approved_by: str, document_ref: str, actor: str) -> None:
        if closes_on <= self.closes_on:
            raise Invalid("closes_on", f"Ngày gia hạn phải sau ngày kết thúc hiện tại ({self.closes_on.isoformat()})",
                           f"The new close date must be after the current one ({self.closes_on.isoformat()})")
        self._extended(previous_closes_on=self.closes_on, closes_on=closes_on,
                       approved_by=check_text(approved_by, "approved_by", max_length=200),
                       document_ref=check_text(document_ref, "document_ref"), actor=actor)

    @event("Extended")
    def _extended(self, previous_closes_on: date, closes_on: date, approved_by: str, document_ref: str,
                  actor: str) -> None:
        self.closes_on = closes_on
        self.extensions.append({"previous_closes_on": previous_closes_on, "closes_on": closes_on,
                                "approved_by": approved_by, "document_ref": document_ref, "recorded_by": actor})

    def check_receiving(self, received_on: date) -> None:
        if not self.opens_on <= received_on <= self.closes_on:
            raise OutsideWindow(received_on, self.opens_on, self.closes_on)


class CampaignIndex(Aggregate):
    """Every campaign's id, so they can be listed without a read model."""

    ID = uuid5(NAMESPACE, "campaigns")

    @staticmethod
    def create_id() -> UUID:
        return CampaignIndex.ID

    @event("Started")
    def __init__(self) -> None:
        self.campaign_ids: list[UUID] = []

    @event("Listed")
    def add(self, campaign_id: UUID) -> None:
        self.campaign_ids.append(campaign_id)


# ---- donations --------------------------------------------------------------------------

def donation_id(campaign_id: UUID, receipt_number: int) -> UUID:
    return uuid5(NAMESPACE, f"donation/{campaign_id}/{receipt_number}")


def _empty_totals() -> dict:
    return {"count": 0, "cash_vnd": 0, "goods_value_vnd": 0, "goods": {}, "earmarked_count": 0}


class ReceiptBook(Aggregate):
    """The campaign's receipt numbers, one event each, and what they add up to. Donations and
    state-budget aid share the numbering but are totalled apart."""

    @staticmethod
    def create_id(campaign_id: UUID) -> UUID:
        return uuid5(NAMESPACE, f"receipts/{campaign_id}")

    @event("Opened")
    def __init__(self, campaign_id: UUID):
        self.campaign_id = campaign_id
        self.last_number = 0
        self.earmarked: list[int] = []  # receipt numbers of gifts "có địa chỉ"
        self.totals = {"donations": _empty_totals(), "state_budget": _empty_totals()}

    def donation_ids(self, numbers: range | list[int]) -> list[UUID]:
        return [donation_id(self.campaign_id, number) for number in numbers if 1 <= number <= self.last_number]

    def issue(self, donation: dict) -> int:
        number = self.last_number + 1
        goods: dict[str, int] = {}
        for line in donation["goods"]:
            goods[line["item_code"]] = goods.get(line["item_code"], 0) + line["quantity"]
        self._issued(number=number, donation_id=donation_id(self.campaign_id, number),
                     state_budget=donation["funding_source"] is not None, earmarked=donation["earmark"] is not None,
                     cash_vnd=donation["cash_vnd"], goods=goods,
                     goods_value_vnd=sum(line["quantity"] * line["unit_value_vnd"] for line in donation["goods"]))
        return number

    @event("Issued")
    def _issued(self, number: int, donation_id: UUID, state_budget: bool, earmarked: bool, cash_vnd: int,
                goods: dict[str, int], goods_value_vnd: int) -> None:
        self.last_number = number
        if earmarked:
            self.earmarked.append(number)
        totals = self.totals["state_budget" if state_budget else "donations"]
        totals["count"] += 1
        totals["cash_vnd"] += cash_vnd
        totals["goods_value_vnd"] += goods_value_vnd
        totals["earmarked_count"] += earmarked
        for code, quantity in goods.items():
            totals["goods"][code] = totals["goods"].get(code, 0) + quantity


def draft(campaign: Campaign, donor: dict, received_on: date, channel: str, cash_vnd: int, goods: list[dict],
          earmark: dict | None, funding_source: str | None, note: str | None, today: date) -> dict:
    """A checked, normalised donation (or state-budget aid when `funding_source` is given).
    Field names in errors are those of the HTTP body."""
    if received_on > today:
        raise Invalid("received_on", "Ngày nhận không được ở tương lai", "Received on cannot be in the future")
    if funding_source is None:
        campaign.check_receiving(received_on)  # state-budget aid is outside the decree and its window
    kind = donor["kind"]
    if kind == DonorKind.anonymous:
        for name in ("name", "contact"):
            if donor.get(name):
                raise Invalid(f"donor.{name}", "Nhà hảo tâm ẩn danh thì không ghi tên, liên hệ",
                               "An anonymous donor has no name or contact")
        donor = {"kind": kind, "name": None, "contact": None, "public_consent": False}
    else:
        donor = {"kind": kind, "name": check_text(donor.get("name"), "donor.name", max_length=200),
                 "contact": check_text(donor.get("contact"), "donor.contact", False, 200) or None,
                 "public_consent": bool(donor.get("public_consent"))}
    if cash_vnd < 0:
        raise Invalid("cash_vnd", "Số tiền không được âm", "Cash cannot be negative")
    if channel in (Channel.cash, Channel.bank_transfer) and cash_vnd == 0:
        raise Invalid("cash_vnd", "Ủng hộ bằng tiền cần có số tiền", "A cash or bank transfer gift needs an amount")
    if channel == Channel.goods and not goods:
        raise Invalid("goods", "Ủng hộ hiện vật cần ít nhất một mặt hàng", "A gift in kind needs at least one item")
    lines = []
    for index, line in enumerate(goods):
        prefix = f"goods.{index}."
        known = item(line["item_code"], f"{prefix}item_code")
        if known.code == CASH:
            raise Invalid(f"{prefix}item_code", "Tiền ghi ở cash_vnd, không ghi là hiện vật",
                           "Cash goes in cash_vnd, not in goods")
        if line["quantity"] <= 0:
            raise Invalid(f"{prefix}quantity", "Số lượng phải lớn hơn 0", "Quantity must be positive")
        expiry = line.get("expiry_date")
        if known.perishable and expiry is None:
            raise Invalid(f"{prefix}expiry_date", "Hàng dễ hỏng phải có hạn sử dụng",
                           "A perishable item needs an expiry date")
        if expiry is not None and expiry < received_on:
            raise Invalid(f"{prefix}expiry_date", "Hàng đã hết hạn khi nhận", "The goods were expired when received")
        lines.append({"item_code": known.code, "unit": known.unit, "quantity": line["quantity"],
                      "unit_value_vnd": line.get("unit_value_vnd", 0), "expiry_date": expiry})
    if earmark is not None:
        earmark = {"commune_code": check_commune(earmark["commune_code"], "earmark.commune_code")
                   if earmark.get("commune_code") else None, "household_id": earmark.get("household_id")}
        if (earmark["commune_code"] is None) == (earmark["household_id"] is None):
            raise Invalid("earmark", "Địa chỉ nhận phải là một xã hoặc một hộ gia đình",
                           "An earmark names either one commune or one household")
    return {"donor": donor, "received_on": received_on, "channel": channel, "cash_vnd": cash_vnd, "goods": lines,
            "earmark": earmark,
            "funding_source": check_text(funding_source, "funding_source") if funding_source is not None else None,
            "note": check_text(note, "note", False, 1000) or None}


def fingerprint(donation: dict) -> str:
    """What an idempotency key promises: the same normalised donation, byte for byte."""
    return hashlib.sha256(orjson.dumps(donation, option=orjson.OPT_SORT_KEYS)).hexdigest()


class Donation(Aggregate):
    """One entry in the campaign's books, with its receipt number."""

    @staticmethod
    def create_id(campaign_id: UUID, receipt_number: int) -> UUID:
        return donation_id(campaign_id, receipt_number)

    @event("Recorded")
    def __init__(self, campaign_id: UUID, receipt_number: int, legal_basis: str, donor: dict, received_on: date,
                 channel: str, cash_vnd: int, goods: list[dict], earmark: dict | None, funding_source: str | None,
                 note: str | None, actor: str):
        self.campaign_id = campaign_id
        self.receipt_number = receipt_number
        self.legal_basis = legal_basis
        self.donor = donor
        self.received_on = received_on
        self.channel = channel
        self.cash_vnd = cash_vnd
        self.goods = goods
        self.earmark = earmark
        self.funding_source = funding_source
        self.note = note
        self.recorded_by = actor

    @property
    def state_budget(self) -> bool:
        return self.funding_source is not None

    @property
    def goods_value_vnd(self) -> int:
        return sum(line["quantity"] * line["unit_value_vnd"] for line in self.goods)


class IdempotencyKey(Aggregate):
    """A client's key for one POST of a donation: the body it came with, the receipt it got."""

    @staticmethod
    def create_id(campaign_id: UUID, key: str) -> UUID:
        return uuid5(NAMESPACE, f"idempotency/{campaign_id}/{key}")

    @event("Used")
    def __init__(self, campaign_id: UUID, key: str, fingerprint: str, receipt_number: int):
        self.campaign_id = campaign_id
        self.key = key
        self.fingerprint = fingerprint
        self.receipt_number = receipt_number
