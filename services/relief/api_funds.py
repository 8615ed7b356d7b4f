"""HTTP: campaigns, donations, receipts, stock."""

from dataclasses import asdict
from datetime import date
from pathlib import Path
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Depends, Header, Query, Response, status
from fastapi import Path as InPath
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape

from services.common.web import application
from services.relief.access import SIGNED_IN, Officer, Reader, check_new_campaign, officer_of
from services.relief.application import Relief
from services.relief.campaigns import Campaign, Donation, unit_name
from services.relief.catalogue import ITEMS
from services.relief.funds_schemas import CampaignIn, DonationIn, ExtensionIn, TransferIn, WriteOffIn

router = APIRouter(tags=["funds"], dependencies=SIGNED_IN)  # who may: services/relief/access.py
App = Annotated[Relief, Depends(application)]
templates = Environment(loader=FileSystemLoader(Path(__file__).parent / "templates"),
                        autoescape=select_autoescape(["html"]))

LEGAL_BASIS_VI = {
    "decree_64_2008": "Nghị định số 64/2008/NĐ-CP",
    "decree_93_2021": "Nghị định số 93/2021/NĐ-CP",
    "state_budget": "Ngân sách nhà nước (ngoài Nghị định về vận động, tiếp nhận)",
}


ReceiptNumber = Annotated[int, InPath(ge=1, le=10**9)]


def campaign_view(campaign: Campaign, app: Relief | None = None) -> dict:
    view = {
        "id": str(campaign.id), "level": campaign.level, "unit_code": campaign.unit_code,
        "committee": campaign.committee, "name": campaign.name, "purpose": campaign.purpose,
        "legal_basis": campaign.legal_basis, "call_document": campaign.call_document,
        "opens_on": campaign.opens_on, "closes_on": campaign.closes_on, "accounts": campaign.accounts,
        "extensions": campaign.extensions, "opened_by": campaign.opened_by,
    }
    if app is not None:
        view["totals"] = app.receipt_book(campaign.id).totals
    return view


def donation_view(donation: Donation) -> dict:
    return {
        "donation_id": str(donation.id), "campaign_id": str(donation.campaign_id),
        "receipt_number": donation.receipt_number, "legal_basis": donation.legal_basis,
        "donor": donation.donor, "received_on": donation.received_on, "channel": donation.channel,
        "cash_vnd": donation.cash_vnd, "goods": donation.goods, "goods_value_vnd": donation.goods_value_vnd,
        "earmark": donation.earmark, "funding_source": donation.funding_source, "note": donation.note,
        "recorded_by": donation.recorded_by,
        "receipt_url": f"/campaigns/{donation.campaign_id}/donations/{donation.receipt_number}/receipt",
    }


def stock_view(app: Relief, campaign_id: UUID) -> dict:
    levels = app.stock_levels(campaign_id)
    return {"campaign_id": str(campaign_id),
            "items": {code: {**asdict(level), "pending": level.pending, "free": level.free,
                             "name": ITEMS[code].name_vi} for code, level in levels.items()}}


@router.get("/catalogue", summary="Items a committee receives, with their unit and whether they perish")
def catalogue(_: Reader) -> list[dict]:
    return [asdict(item) for item in ITEMS.values()]


@router.post("/campaigns", status_code=status.HTTP_201_CREATED, summary="Open a campaign (đợt vận động)")
def open_campaign(body: CampaignIn, app: App, who: Officer) -> dict:
    check_new_campaign(who, body.level.value, body.unit_code)
    fields = body.model_dump(mode="python")
    fields["accounts"] = [{**a, "kind": a["kind"].value} for a in fields["accounts"]]
    campaign = app.open_campaign(who.username, **{**fields, "level": body.level.value,
                                                  "legal_basis": body.legal_basis.value})
    return campaign_view(campaign, app)


@router.get("/campaigns", summary="Campaigns, optionally of one committee (unit code)")
def list_campaigns(app: App, _: Reader,
                   unit_code: Annotated[str | None, Query(pattern=r"^\d{1,5}$")] = None) -> list[dict]:
    return [campaign_view(c) for c in app.campaigns(unit_code)]


@router.get("/campaigns/{campaign_id}", summary="One campaign with its totals (state-budget aid apart)")
def get_campaign(campaign_id: UUID, app: App, _: Reader) -> dict:
    return campaign_view(app.campaign(campaign_id), app)


@router.post("/campaigns/{campaign_id}/extensions", summary="Extend the receiving window (approved, with document)")
def extend(campaign_id: UUID, body: ExtensionIn, app: App, who: Officer) -> dict:
    actor = officer_of(app, who, campaign_id)
    return campaign_view(app.extend_campaign(campaign_id, actor, **body.model_dump()), app)


@router.post("/campaigns/{campaign_id}/donations", status_code=status.HTTP_201_CREATED,
             summary="Record a donation and give it the next receipt number (201; 200 for a repeated Idempotency-Key)")
def record_donation(campaign_id: UUID, body: DonationIn, app: App, who: Officer, response: Response,
                    idempotency_key: Annotated[str | None, Header(min_length=1, max_length=200)] = None) -> dict:
    actor = officer_of(app, who, campaign_id)
    fields = body.model_dump(mode="python")
    fields["donor"]["kind"] = body.donor.kind.value
    donation, created = app.record_donation(campaign_id, actor, idempotency_key=idempotency_key,
                                            **{**fields, "channel": body.channel.value})
    if not created:
        response.status_code = status.HTTP_200_OK
    return donation_view(donation)


@router.get("/campaigns/{campaign_id}/donations", summary="Donations in receipt order, with totals")
def list_donations(campaign_id: UUID, app: App, _: Reader, page: Annotated[int, Query(ge=1, le=100_000)] = 1,
                   page_size: Annotated[int, Query(ge=1, le=200)] = 50) -> dict:
    donations, total = app.donations(campaign_id, (page - 1) * page_size, page_size)
    return {"total": total, "page": page, "page_size": page_size,
            "totals": app.receipt_book(campaign_id).totals, "items": [donation_view(d) for d in donations]}


@router.get("/campaigns/{campaign_id}/donations/{receipt_number}", summary="One donation by receipt number")
def get_donation(campaign_id: UUID, receipt_number: ReceiptNumber, app: App, _: Reader) -> dict:
    return donation_view(app.donation(campaign_id, receipt_number))


@router.get("/campaigns/{campaign_id}/donations/{receipt_number}/receipt", response_class=HTMLResponse,
            summary="Printable receipt (biên nhận), HTML")
def receipt(campaign_id: UUID, receipt_number: ReceiptNumber, app: App, _: Reader) -> HTMLResponse:
    donation = app.donation(campaign_id, receipt_number)
    campaign = app.campaign(campaign_id)
    html = templates.get_template("receipt.html").render(
        campaign=campaign, donation=donation, legal_basis=LEGAL_BASIS_VI[donation.legal_basis],
        items=ITEMS, earmark_commune=unit_name("commune", (donation.earmark or {}).get("commune_code") or "0"))
    return HTMLResponse(html)


@router.get("/campaigns/{campaign_id}/stock", summary="Stock per item: received, allocated, delivered, written off...")
def stock(campaign_id: UUID, app: App, _: Reader) -> dict:
    return stock_view(app, campaign_id)


@router.get("/campaigns/{campaign_id}/stock/near-expiry", summary="Lots expiring within N days (expired ones too)")
def near_expiry(campaign_id: UUID, app: App, _: Reader, days: Annotated[int, Query(ge=0, le=3650)] = 7,
                today: date | None = None) -> dict:
    return {"campaign_id": str(campaign_id), "days": days, "lots": app.near_expiry(campaign_id, days, today)}


@router.post("/campaigns/{campaign_id}/stock/write-offs", status_code=status.HTTP_201_CREATED,
             summary="Write off spoiled, expired or damaged stock, with a reason")
def write_off(campaign_id: UUID, body: WriteOffIn, app: App, who: Officer) -> dict:
    actor = officer_of(app, who, campaign_id)
    level, lots = app.write_off(campaign_id, actor, body.item_code, body.quantity, body.reason.value, body.note,
                                body.lot)
    return {"item_code": body.item_code, "written_off": lots, "level": {**asdict(level), "pending": level.pending}}


@router.post("/campaigns/{campaign_id}/stock/transfers", status_code=status.HTTP_201_CREATED,
             summary="Send stock to another committee's campaign (the sending half)")
def transfer_out(campaign_id: UUID, body: TransferIn, app: App, who: Officer) -> dict:
    actor = officer_of(app, who, campaign_id)  # the sending committee's officer; the receiver accepts it
    lines: dict[str, int] = {}
    for line in body.lines:
        lines[line.item_code] = lines.get(line.item_code, 0) + line.quantity
    transfer = app.transfer_out(campaign_id, actor, body.to_campaign_id, lines, body.note, body.document_ref)
    return transfer.view()


@router.get("/campaigns/{campaign_id}/stock/transfers",
            summary="Transfers sent from and to this campaign, newest first, received or pending")
def list_transfers(campaign_id: UUID, app: App, _: Reader) -> dict:
    app.campaign(campaign_id)  # 404 for an unknown campaign
    return {"campaign_id": str(campaign_id), "items": app.transfers(campaign_id)}


@router.post("/campaigns/{campaign_id}/stock/transfers/{transfer_id}/receive",
             summary="Receive a transfer sent to this campaign (once)")
def receive_transfer(campaign_id: UUID, transfer_id: UUID, app: App, who: Officer) -> dict:
    return app.receive_transfer(campaign_id, transfer_id, officer_of(app, who, campaign_id)).view()
