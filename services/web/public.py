"""Public pages, rendered here from the services' public endpoints: no sign-in.

- /public: campaigns; /public/campaigns/{id}: the disclosure (công khai) with SVG charts, the
  beneficiary list and downloads (CSV with HXL tags, ledger export, public key);
- /ledger: the ledger explorer (entries, checkpoints, a receipt checker run in the browser);
- /ledger/audit: `relief-audit report` as HTML, computed from the ledger's export.
"""

import asyncio
import re
from typing import Any

import httpx
from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from services.common.charts import grouped_bars

router = APIRouter(include_in_schema=False)
EXPLORER_ENTRIES = 20


class Upstream(Exception):
    def __init__(self, status: int, detail: Any):
        self.status, self.detail = status, detail


async def fetch(request: Request, service: str, path: str, **params) -> Any:
    http: httpx.AsyncClient = request.app.state.http
    url = f"{request.app.state.settings.upstreams[service]}{path}"
    try:
        response = await http.get(url, params={k: v for k, v in params.items() if v is not None})
    except httpx.HTTPError as error:
        raise Upstream(502, f"{service}: {type(error).__name__}") from None
    if response.status_code != 200:
        try:
            detail = response.json()
        except ValueError:
            detail = response.text[:300]
        raise Upstream(response.status_code, detail)
    return response.json()


def problem(request: Request, error: Upstream, what_vi: str, what_en: str) -> HTMLResponse:
    return request.app.state.render(request, "problem.html", status_code=error.status if error.status >= 400 else 502,
                                    status=error.status, detail=error.detail, what_vi=what_vi, what_en=what_en)


@router.get("/public", response_class=HTMLResponse)
async def campaigns(request: Request) -> HTMLResponse:
    """The list of campaigns is for signed-in readers (relief's rule); the public opens a
    campaign's page from its posted link or QR code, or types its code here."""
    try:
        found = await fetch(request, "relief", "/campaigns")
    except Upstream as error:
        if error.status not in (401, 403):
            return problem(request, error, "danh sách đợt vận động", "the list of campaigns")
        found = None
    return request.app.state.render(request, "public_campaigns.html", campaigns=found)


@router.get("/public/open")
async def open_campaign(request: Request, campaign: str = Query("", max_length=500)) -> Response:
    """A campaign code or a pasted link -> its disclosure page."""
    match = UUID_IN.search(campaign)
    if not match:
        return RedirectResponse("/public?missing=1", status_code=303)
    return RedirectResponse(f"/public/campaigns/{match.group(0).lower()}", status_code=303)


UUID_IN = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")


def disclosure_figures(d: dict, lang: str) -> dict[str, Any]:
    """The totals and chart rows a disclosure page shows, from relief's disclosure JSON."""
    en = lang == "en"
    donations = d["received"]["donations"]
    communes = d["distribution"]
    cash_delivered = sum(i["delivered"] for c in communes for i in c["items"] if i["item_code"] == "cash")
    value_delivered = sum(i["value_delivered_vnd"] for c in communes for i in c["items"])
    entitled = sum(c["households"] for c in communes)
    served = sum(c["households_served"] for c in communes)
    received_label, delivered_label = ("Received", "Delivered") if en else ("Đã nhận", "Đã phát")
    goods_rows = [(f"{s['name']} ({s['unit']})", [s["received"], s["delivered"]]) for s in d["stock"]
                  if s.get("item_code") != "cash"]  # cash has its own chart
    money = grouped_bars("VND", [("Tiền mặt / Cash", [donations["cash_vnd"], cash_delivered]),
                                 ("Tổng giá trị / Total value", [donations["total_vnd"], value_delivered])],
                         [received_label, delivered_label], unit="đ")
    goods = grouped_bars("goods", goods_rows, [received_label, delivered_label]) if goods_rows else ""
    per_commune = grouped_bars(
        "communes", [(c["commune_name"] or c["commune_code"], [c["households"], c["households_served"]])
                     for c in communes],
        ["Hộ được hưởng / Entitled" if not en else "Households entitled", "Hộ đã nhận / Served" if not en
         else "Households served"], unit="hộ") if communes else ""
    return {"cash_received": donations["cash_vnd"], "goods_value_received": donations["goods_value_vnd"],
            "total_received": donations["total_vnd"], "donation_count": donations["count"],
            "cash_delivered": cash_delivered, "value_delivered": value_delivered, "entitled": entitled,
            "served": served, "state_budget": d["received"]["state_budget"],
            "charts": {"money": money, "goods": goods, "communes": per_commune}}


@router.get("/public/campaigns/{campaign_id}", response_class=HTMLResponse)
async def disclosure(request: Request, campaign_id: str,
                     commune_code: str | None = Query(None, pattern=r"^\d{5}$")) -> HTMLResponse:
    try:
        d = await fetch(request, "relief", f"/campaigns/{campaign_id}/disclosure", commune_code=commune_code)
    except Upstream as error:
        return problem(request, error, "trang công khai", "the disclosure page")
    render = request.app.state.render
    from services.web.main import lang_of
    return render(request, "public_disclosure.html", d=d, f=disclosure_figures(d, lang_of(request)),
                  campaign_id=campaign_id, commune_code=commune_code)


async def _entry(request: Request, seq: int) -> dict | None:
    try:
        return await fetch(request, "ledger", f"/ledger/proof/{seq}")
    except Upstream:
        return None


@router.get("/ledger", response_class=HTMLResponse)
async def explorer(request: Request, seq: int | None = Query(None, ge=1, le=2**63 - 1)) -> HTMLResponse:
    try:
        info = await fetch(request, "ledger", "/ledger/info")
        key = await fetch(request, "ledger", "/ledger/public-key")
    except Upstream as error:
        return problem(request, error, "sổ cái", "the ledger")
    latest = info.get("latest_checkpoint") or {}
    covered = latest.get("tree_size", 0)
    checkpoints = (await fetch(request, "ledger", "/ledger/checkpoints", after=max(0, covered - 200),
                               limit=1000))["checkpoints"][-20:] if covered else []
    seqs = list(range(covered, max(0, covered - EXPLORER_ENTRIES), -1))
    receipts = [r for r in await asyncio.gather(*(_entry(request, s) for s in seqs)) if r]
    chosen = await _entry(request, seq) if seq else None
    return request.app.state.render(request, "ledger_explorer.html", info=info, key=key, checkpoints=checkpoints,
                                    receipts=receipts, chosen=chosen, seq=seq, pending=info["entries"] - covered)


@router.get("/ledger/audit", response_class=HTMLResponse)
async def audit_report(request: Request) -> HTMLResponse:
    """`relief-audit report --format html` over the ledger's export (ids and counts only)."""
    from services.ledger.audit import report as reports

    http: httpx.AsyncClient = request.app.state.http
    try:
        response = await http.get(f"{request.app.state.settings.upstreams['ledger']}/ledger/export")
    except httpx.HTTPError as error:
        return problem(request, Upstream(502, type(error).__name__), "báo cáo kiểm toán", "the audit report")
    if response.status_code != 200:
        return problem(request, Upstream(response.status_code, response.text[:300]), "báo cáo kiểm toán",
                       "the audit report")
    lines = [line for line in response.content.splitlines() if line.strip()]
    events, note = [], ""
    nats_url = request.app.state.settings.audit_nats_url
    if nats_url:  # relief's public events: who was entitled, for coverage (ids and counts only)
        from services.ledger.audit.sources import SourceError, read_stream
        try:
            events = await read_stream(nats_url, "RELIEF")
        except SourceError:
            note = NO_RELIEF
    else:
        note = NO_RELIEF
    figures = await asyncio.to_thread(reports.compute, lines, events)
    html = reports.render(figures, reports.Format.html)
    return HTMLResponse(html.replace("<body>", f"<body>{note}", 1) if note else html)


NO_RELIEF = ('<p style="border:1px solid #b23a3a;padding:6px">Không đọc được sự kiện của dịch vụ cứu trợ: '
             'số hộ được hưởng và độ phủ chưa tính. / Relief\'s events could not be read: entitlements and '
             'coverage are not counted.</p>')
