"""HTTP: public disclosure (no sign-in), and signed in: the Art. 13 summary, the daily commune report and
who is eligible but not served. JSON, CSV with an HXL hashtag row (https://hxlstandard.org),
and printable A4 HTML in Vietnamese."""

import csv
import io
from datetime import date
from enum import StrEnum
from pathlib import Path
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Depends, Query, Response
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape

from services.common.web import application
from services.relief.access import SIGNED_IN, CommuneReader, Reader, check_commune_reader
from services.relief import reports
from services.relief.application import Relief
from services.relief.distribution_schemas import CommuneCode
from services.relief.households_client import HouseholdNames, households_of

public = APIRouter(tags=["reports"])  # the disclosure: anyone, no sign-in
private = APIRouter(tags=["reports"], dependencies=SIGNED_IN)  # who may: services/relief/access.py
App = Annotated[Relief, Depends(application)]
Names = Annotated[HouseholdNames, Depends(households_of)]
Village = Annotated[str | None, Query(max_length=100)]
Commune = Annotated[str | None, Query(pattern=r"^\d{5}$", description="Only this commune's distribution and "
                                                                      "beneficiaries")]
templates = Environment(loader=FileSystemLoader(Path(__file__).parent / "templates"),
                        autoescape=select_autoescape(["html"]))
templates.filters["vnd"] = reports.vnd
templates.filters["day"] = lambda iso: date.fromisoformat(iso[:10]).strftime("%d/%m/%Y") if iso else ""
templates.globals.update(item_name=reports.item_name, item_unit=reports.item_unit)


class Table(StrEnum):
    distribution = "distribution"
    beneficiaries = "beneficiaries"
    donors = "donors"
    stock = "stock"


def html(template: str, **context) -> HTMLResponse:
    return HTMLResponse(templates.get_template(template).render(**context))


# ---- public disclosure (công khai) --------------------------------------------------------

@public.get("/campaigns/{campaign_id}/disclosure", summary="Public disclosure (công khai, Decree 93 Art. 14), JSON")
@public.get("/campaigns/{campaign_id}/disclosure.json", include_in_schema=False)
def disclosure(campaign_id: UUID, app: App, households: Names, commune_code: Commune = None) -> dict:
    return reports.disclosure(app, campaign_id, households, commune_code)


@public.get("/campaigns/{campaign_id}/disclosure.html", response_class=HTMLResponse,
            summary="Public disclosure, printable A4 page for the commune office")
def disclosure_html(campaign_id: UUID, app: App, households: Names, commune_code: Commune = None) -> HTMLResponse:
    return html("report_disclosure.html", d=reports.disclosure(app, campaign_id, households, commune_code))


@public.get("/campaigns/{campaign_id}/disclosure.csv", summary="Public disclosure as CSV with an HXL hashtag row "
            "(?table=distribution|beneficiaries|donors|stock)")
def disclosure_csv(campaign_id: UUID, app: App, households: Names, table: Table = Table.distribution,
                   commune_code: Commune = None) -> Response:
    d = reports.disclosure(app, campaign_id, households, commune_code)
    header, tags, rows = CSV_TABLES[table](d)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerows([header, tags, *rows])
    name = f"cong-khai-{campaign_id}-{table.value}.csv"
    return Response("\ufeff" + out.getvalue(), media_type="text/csv; charset=utf-8",  # BOM: Excel reads UTF-8
                    headers={"Content-Disposition": f'attachment; filename="{name}"'})


def _distribution_rows(d: dict) -> tuple[list, list, list]:
    header = ["commune_code", "commune_name", "item_code", "item_name", "unit", "households_entitled",
              "households_served", "quantity_allocated", "quantity_delivered", "value_delivered_vnd", "as_of"]
    tags = ["#adm2+code", "#adm2+name", "#item+code", "#item+name", "#item+unit", "#targeted+households",
            "#reached+households", "#item+allocated+num", "#item+delivered+num", "#value+vnd", "#date"]
    rows = [[c["commune_code"], c["commune_name"], i["item_code"], i["name"], i["unit"], i["households"],
             i["households_served"], i["allocated"], i["delivered"], i["value_delivered_vnd"], d["as_of"][:10]]
            for c in d["distribution"] for i in c["items"]]
    return header, tags, rows


def _beneficiary_rows(d: dict) -> tuple[list, list, list]:
    header = ["commune_code", "village", "head_name", "household_id", "round", "cash_vnd", "goods", "status",
              "delivered_on"]
    tags = ["#adm2+code", "#loc+village", "#beneficiary+name", "#beneficiary+id", "#activity+name", "#value+vnd",
            "#item+name", "#status", "#date+delivered"]
    rows = [[b["commune_code"], b["village"], b["head_name"] or "", b["household_id"], b["round_name"],
             b["support"].get("cash", 0), reports.support_text({k: v for k, v in b["support"].items() if k != "cash"}),
             b["status"], b["delivered_on"] or ""] for b in d["beneficiaries"]["households"]]
    return header, tags, rows


def _donor_rows(d: dict) -> tuple[list, list, list]:
    header = ["receipt_number", "received_on", "donor_kind", "donor_name", "cash_vnd", "goods_value_vnd", "goods"]
    tags = ["#meta+receipt", "#date", "#org+type", "#org+name", "#value+cash+vnd", "#value+goods+vnd", "#item+name"]
    rows = [[n["receipt_number"], n["received_on"], n["kind"], n["name"], n["cash_vnd"], n["goods_value_vnd"],
             reports.support_text(n["goods"])] for n in d["donors"]["named"]]
    for kind, label in (("anonymous", "Nhà hảo tâm ẩn danh"), ("not_named", "Cá nhân không công khai tên")):
        group = d["donors"][kind]
        if group["count"]:
            rows.append(["", "", kind, f"{label} ({group['count']})", group["cash_vnd"], group["goods_value_vnd"], ""])
    return header, tags, rows


def _stock_rows(d: dict) -> tuple[list, list, list]:
    header = ["item_code", "item_name", "unit", "received", "delivered", "pending", "written_off",
              "transferred_out", "available", "as_of"]
    tags = ["#item+code", "#item+name", "#item+unit", "#item+received+num", "#item+delivered+num",
            "#item+pending+num", "#item+written_off+num", "#item+transferred+num", "#item+available+num", "#date"]
    rows = [[s["item_code"], s["name"], s["unit"], s["received"], s["delivered"], s["pending"], s["written_off"],
             s["transferred_out"], s["available"], d["as_of"][:10]] for s in d["stock"]]
    return header, tags, rows


CSV_TABLES = {Table.distribution: _distribution_rows, Table.beneficiaries: _beneficiary_rows,
              Table.donors: _donor_rows, Table.stock: _stock_rows}


# ---- Art. 13 summary --------------------------------------------------------------------

@private.get("/campaigns/{campaign_id}/summary", summary="Art. 13 summary: raised, spent per purpose, balance")
def summary(campaign_id: UUID, app: App, _: Reader) -> dict:
    return reports.summary(app, campaign_id)


@private.get("/campaigns/{campaign_id}/summary.html", response_class=HTMLResponse,
            summary="Art. 13 summary, printable")
def summary_html(campaign_id: UUID, app: App, _: Reader) -> HTMLResponse:
    return html("report_summary.html", s=reports.summary(app, campaign_id))


# ---- daily commune report and not served -----------------------------------------------

@private.get("/reports/daily", summary="Daily commune report (before 07:00): quarantine, entitled, served, stock")
def daily(app: App, who: CommuneReader, commune_code: CommuneCode,
          date_: Annotated[date | None, Query(alias="date")] = None) -> dict:
    check_commune_reader(who, commune_code)
    return reports.daily(app, commune_code, date_)


@private.get("/reports/daily.html", response_class=HTMLResponse, summary="Daily commune report, printable")
def daily_html(app: App, who: CommuneReader, commune_code: CommuneCode,
               date_: Annotated[date | None, Query(alias="date")] = None) -> HTMLResponse:
    check_commune_reader(who, commune_code)
    return html("report_daily.html", r=reports.daily(app, commune_code, date_))


@private.get("/reports/not-served", summary="Eligible but not served in a commune (and village), across rounds, "
            "with waiting days")
def not_served(app: App, who: CommuneReader, commune_code: CommuneCode, village: Village = None,
               on: Annotated[date | None, Query(description="Count waiting days to this day")] = None) -> dict:
    check_commune_reader(who, commune_code)
    return reports.not_served(app, commune_code, village, on)


router = APIRouter()
router.include_router(public)
router.include_router(private)
