"""Reports from relief's own data: public disclosure (công khai, Decree 93 Art. 14), the
Art. 13 summary, the daily commune report and who is eligible but not served.

They read the campaign, receipt book, donations and stock aggregates and the eligibility
read model; never another service's database. Names of beneficiaries are not relief's: the
disclosure asks households for them at request time (`households_client`) and keeps none.

Goods are valued at the campaign's average declared unit value per item (what donors wrote on
their receipts), so a value delivered, written off or left is comparable with the value raised.
"""

from collections import defaultdict
from datetime import date, datetime
from typing import Any
from uuid import UUID

from services.relief.campaigns import Campaign, Donation, unit_name
from services.relief.catalogue import CASH, ITEMS
from services.relief.distribution import LOCAL, today
from services.relief.households_client import HouseholdNames, HouseholdsUnavailable

LEGAL_BASIS_VI = {
    "decree_64_2008": "Nghị định số 64/2008/NĐ-CP",
    "decree_93_2021": "Nghị định số 93/2021/NĐ-CP",
    "state_budget": "Ngân sách nhà nước (ngoài Nghị định về vận động, tiếp nhận)",
}
ALL = 10_000_000  # "no limit" for the read model's paged queries
NAMES_UNAVAILABLE = ("Không lấy được tên chủ hộ từ dịch vụ hộ gia đình; danh sách tạm ghi mã hộ. "
                     "Households could not be reached: the list shows household ids only.")


# ---- shared pieces ----------------------------------------------------------------------

def item_name(code: str) -> str:
    return ITEMS[code].name_vi if code in ITEMS else code


def item_unit(code: str) -> str:
    return ITEMS[code].unit if code in ITEMS else ""


def campaign_info(campaign: Campaign) -> dict[str, Any]:
    return {
        "id": str(campaign.id), "name": campaign.name, "committee": campaign.committee, "level": campaign.level,
        "unit_code": campaign.unit_code, "unit_name": unit_name(campaign.level, campaign.unit_code),
        "purpose": campaign.purpose, "legal_basis": campaign.legal_basis,
        "legal_basis_vi": LEGAL_BASIS_VI.get(campaign.legal_basis, campaign.legal_basis),
        "call_document": campaign.call_document, "opens_on": campaign.opens_on.isoformat(),
        "closes_on": campaign.closes_on.isoformat(),
        "extensions": [{"previous_closes_on": e["previous_closes_on"].isoformat(),
                        "closes_on": e["closes_on"].isoformat(), "approved_by": e["approved_by"],
                        "document_ref": e["document_ref"]} for e in campaign.extensions],
        "accounts": campaign.accounts,
    }


def all_donations(app, campaign_id: UUID) -> list[Donation]:
    last = app.receipt_book(campaign_id).last_number
    return app.donations(campaign_id, 0, last)[0] if last else []


class Valuer:
    """VND value of goods at the campaign's average declared unit value per item."""

    def __init__(self, donations: list[Donation]):
        self.value: dict[str, int] = defaultdict(int)
        self.quantity: dict[str, int] = defaultdict(int)
        for donation in donations:
            for line in donation.goods:
                self.value[line["item_code"]] += line["quantity"] * line["unit_value_vnd"]
                self.quantity[line["item_code"]] += line["quantity"]

    def unit_value(self, code: str) -> float:
        return self.value[code] / self.quantity[code] if self.quantity.get(code) else 0

    def of(self, lines: dict[str, int]) -> int:
        return sum(round(q * self.unit_value(code)) for code, q in lines.items() if code != CASH)


def _add(total: dict[str, int], lines: dict[str, int]) -> None:
    for code, quantity in lines.items():
        total[code] = total.get(code, 0) + quantity


def support_text(lines: dict[str, int]) -> str:
    """'Tiền mặt 300.000 đ; Gạo 10 kg' for a printed list."""
    parts = [f"Tiền mặt {vnd(lines[CASH])} đ"] if lines.get(CASH) else []
    parts += [f"{item_name(c)} {vnd(q)} {item_unit(c)}" for c, q in sorted(lines.items()) if c != CASH]
    return "; ".join(parts)


def vnd(amount: int | float) -> str:
    return f"{int(amount):,}".replace(",", ".")


def entitlement_rows(app, campaign_id: UUID | None = None, commune_code: str | None = None) -> list[dict]:
    """Every entitlement of the campaign's rounds (or of all rounds), with the round's name."""
    model = app.eligibility_model
    rows = []
    for round_ in model.rounds(campaign_id):
        _, found = model.entitlements(UUID(round_["id"]), commune_code, limit=ALL)
        rows += [{**row, "round_id": round_["id"], "round_name": round_["name"],
                  "campaign_id": round_["campaign_id"]} for row in found]
    return rows


def local_day(timestamp: str | None) -> date | None:
    return datetime.fromisoformat(timestamp).astimezone(LOCAL).date() if timestamp else None


# ---- public disclosure (công khai) ---------------------------------------------------------

def disclosure(app, campaign_id: UUID, households: HouseholdNames, commune_code: str | None = None) -> dict[str, Any]:
    """`commune_code` narrows distribution and beneficiaries to one commune (the page a
    province campaign posts at each commune office); totals and donors stay whole."""
    campaign = app.campaign(campaign_id)
    donations = all_donations(app, campaign_id)
    book = app.receipt_book(campaign_id)
    rows = [r for r in entitlement_rows(app, campaign_id, commune_code) if r["status"] != "cancelled"]
    return {
        "campaign": campaign_info(campaign), "commune_code": commune_code,
        "commune_name": unit_name("commune", commune_code) if commune_code else None,
        "as_of": datetime.now(LOCAL).isoformat(timespec="seconds"),
        "received": received(book.totals, donations),
        "donors": donors(donations),
        "distribution": distribution_by_commune(rows, Valuer(donations)),
        "stock": stock_left(app, campaign_id),
        "beneficiaries": beneficiaries(rows, households),
    }


def _totals(totals: dict) -> dict[str, Any]:
    return {"count": totals["count"], "cash_vnd": totals["cash_vnd"], "goods_value_vnd": totals["goods_value_vnd"],
            "total_vnd": totals["cash_vnd"] + totals["goods_value_vnd"],
            "goods": [{"item_code": c, "name": item_name(c), "unit": item_unit(c), "quantity": q}
                      for c, q in sorted(totals["goods"].items())]}


def received(totals: dict, donations: list[Donation]) -> dict[str, Any]:
    """Donations; state-budget aid apart, by funding source, never in the donation totals."""
    sources: dict[str, dict] = {}
    for d in donations:
        if d.state_budget:
            s = sources.setdefault(d.funding_source, {"funding_source": d.funding_source, "count": 0,
                                                      "cash_vnd": 0, "goods_value_vnd": 0})
            s["count"] += 1
            s["cash_vnd"] += d.cash_vnd
            s["goods_value_vnd"] += d.goods_value_vnd
    return {"donations": _totals(totals["donations"]),
            "state_budget": {**_totals(totals["state_budget"]), "sources": list(sources.values())}}


def donors(donations: list[Donation]) -> dict[str, Any]:
    """Organisations and individuals who agreed to be named, one line per receipt; anonymous
    donors and individuals who did not agree are counted and totalled, never named."""
    named, unnamed = [], {"anonymous": _empty(), "not_named": _empty()}
    for d in donations:
        if d.state_budget:
            continue
        kind = d.donor["kind"]
        if kind == "organisation" or (kind == "individual" and d.donor["public_consent"]):
            named.append({"receipt_number": d.receipt_number, "received_on": d.received_on.isoformat(),
                          "kind": kind, "name": d.donor["name"], "cash_vnd": d.cash_vnd,
                          "goods": {g["item_code"]: g["quantity"] for g in d.goods},
                          "goods_value_vnd": d.goods_value_vnd, "earmarked": d.earmark is not None})
        else:
            group = unnamed["anonymous" if kind == "anonymous" else "not_named"]
            group["count"] += 1
            group["cash_vnd"] += d.cash_vnd
            group["goods_value_vnd"] += d.goods_value_vnd
    return {"named": named, **unnamed}


def _empty() -> dict[str, int]:
    return {"count": 0, "cash_vnd": 0, "goods_value_vnd": 0}


def distribution_by_commune(rows: list[dict], value: Valuer) -> list[dict]:
    """Per commune: entitlements issued and served, households, and per item allocated/delivered."""
    communes: dict[str, dict] = {}
    for row in rows:
        c = communes.setdefault(row["commune_code"], {
            "commune_code": row["commune_code"], "commune_name": unit_name("commune", row["commune_code"]),
            "entitlements": 0, "served": 0, "households": set(), "households_served": set(), "items": {}})
        served = row["status"] == "served"
        c["entitlements"] += 1
        c["served"] += served
        c["households"].add(row["household_id"])
        if served:
            c["households_served"].add(row["household_id"])
        for code, quantity in row["lines"].items():
            line = c["items"].setdefault(code, {"item_code": code, "name": item_name(code), "unit": item_unit(code),
                                                "allocated": 0, "delivered": 0, "households": set(),
                                                "households_served": set()})
            line["allocated"] += quantity
            line["delivered"] += quantity if served else 0
            line["households"].add(row["household_id"])
            if served:
                line["households_served"].add(row["household_id"])
    result = []
    for c in sorted(communes.values(), key=lambda c: c["commune_code"]):
        items = [{**line, "households": len(line["households"]), "households_served": len(line["households_served"]),
                  "value_delivered_vnd": line["delivered"] if code == CASH else value.of({code: line["delivered"]})}
                 for code, line in sorted(c["items"].items())]
        result.append({**c, "households": len(c["households"]), "households_served": len(c["households_served"]),
                       "items": items})
    return result


def stock_left(app, campaign_id: UUID) -> list[dict]:
    return [{"item_code": code, "name": item_name(code), "unit": level.unit, "received": level.received,
             "delivered": level.delivered, "pending": level.pending, "written_off": level.written_off,
             "transferred_out": level.transferred_out, "available": level.available}
            for code, level in sorted(app.stock_levels(campaign_id).items())]


def beneficiaries(rows: list[dict], households: HouseholdNames) -> dict[str, Any]:
    """One line per suất: head-of-household name and village (from households, not stored),
    commune, support level, status. Nothing else about the household."""
    note = None
    try:
        names = households.names(UUID(r["household_id"]) for r in rows)
    except HouseholdsUnavailable:
        names, note = None, NAMES_UNAVAILABLE
    listed = []
    for r in rows:
        found = (names or {}).get(UUID(r["household_id"]))
        listed.append({
            "household_id": r["household_id"], "head_name": found["head_name"] if found else None,
            "village": found["village"] if found else r["village"], "commune_code": r["commune_code"],
            "round_name": r["round_name"], "support": r["lines"], "support_text": support_text(r["lines"]),
            "earmarked": r["earmarked_donation_id"] is not None, "status": r["status"],
            "delivered_on": local_day(r["delivered_at"]).isoformat() if r["delivered_at"] else None})
    listed.sort(key=lambda b: (b["commune_code"], b["village"].casefold(), (b["head_name"] or "").casefold(),
                               b["household_id"]))
    missing = sum(1 for b in listed if b["head_name"] is None) if names is not None else 0
    if missing:
        note = (f"{missing} hộ không tìm thấy tên ở dịch vụ hộ gia đình; ghi mã hộ. "
                f"{missing} household(s) unknown to households: shown by id.")
    return {"names_available": names is not None, "note": note, "count": len(listed), "households": listed}


# ---- Art. 13 summary -----------------------------------------------------------------------

def _money(cash: int, goods: int) -> dict[str, int]:
    return {"cash_vnd": cash, "goods_value_vnd": goods, "total_vnd": cash + goods}


def summary(app, campaign_id: UUID) -> dict[str, Any]:
    """Raised (donations only), spent per purpose, balance = raised - spent. State-budget aid
    and transfers received are shown apart: they enter the same stock, so what is left in stock
    is balance + state budget + transfers received."""
    campaign = app.campaign(campaign_id)
    donations = all_donations(app, campaign_id)
    totals = app.receipt_book(campaign_id).totals
    value = Valuer(donations)
    rows = [r for r in entitlement_rows(app, campaign_id) if r["status"] != "cancelled"]
    purposes = []
    for round_ in app.eligibility_model.rounds(campaign_id):
        mine = [r for r in rows if r["round_id"] == round_["id"]]
        delivered: dict[str, int] = {}
        pending: dict[str, int] = {}
        for r in mine:
            _add(delivered if r["status"] == "served" else pending, r["lines"])
        used = {**delivered}
        _add(used, pending)
        purposes.append({"purpose": "round", "round_id": round_["id"], "name": round_["name"],
                         "planned_on": round_["planned_on"], "status": round_["status"],
                         "households": len({r["household_id"] for r in mine}),
                         "served": sum(r["status"] == "served" for r in mine),
                         "delivered": _money(delivered.get(CASH, 0), value.of(delivered)),
                         "pending": _money(pending.get(CASH, 0), value.of(pending)),
                         **_money(used.get(CASH, 0), value.of(used))})
    levels = app.stock_levels(campaign_id)
    written = {c: lv.written_off for c, lv in levels.items() if lv.written_off}
    sent = {c: lv.transferred_out for c, lv in levels.items() if lv.transferred_out}
    for purpose, name, lines in (("written_off", "Hàng hư hỏng, hết hạn (xuất huỷ)", written),
                                 ("transferred_out", "Chuyển cho đơn vị khác", sent)):
        if lines:
            purposes.append({"purpose": purpose, "name": name, **_money(lines.get(CASH, 0), value.of(lines))})
    raised = _money(totals["donations"]["cash_vnd"], totals["donations"]["goods_value_vnd"])
    spent = _money(sum(p["cash_vnd"] for p in purposes), sum(p["goods_value_vnd"] for p in purposes))
    state = _money(totals["state_budget"]["cash_vnd"], totals["state_budget"]["goods_value_vnd"])
    transfers_in = {c: lv.received - totals["donations"]["goods"].get(c, 0) - totals["state_budget"]["goods"].get(c, 0)
                    for c, lv in levels.items() if c != CASH}
    transfers_in = {c: q for c, q in transfers_in.items() if q}
    cash_in = levels[CASH].received - raised["cash_vnd"] - state["cash_vnd"] if CASH in levels else 0
    return {
        "campaign": campaign_info(campaign), "as_of": datetime.now(LOCAL).isoformat(timespec="seconds"),
        "raised": raised, "state_budget": state,
        "transfers_received": _money(cash_in, value.of(transfers_in)),
        "spent": {**spent, "purposes": purposes},
        "balance": {k: raised[k] - spent[k] for k in raised},
        "unit_values_vnd": {c: round(value.unit_value(c)) for c in sorted(value.quantity)},
    }


# ---- the daily commune report ----------------------------------------------------------------

def daily(app, commune_code: str, on: date | None = None) -> dict[str, Any]:
    """As of the end of `on` (default today, Vietnam time): households in quarantine, and for
    each round with households here: households entitled to its package, served (that day and
    so far), not yet served, eligible but not yet entitled; stock per item of the campaigns
    serving the commune (stock is as of now). Earmarked gifts are not counted here."""
    on = on or today()
    model = app.eligibility_model
    in_quarantine = model.candidates({"commune_codes": [commune_code], "quarantine_on": on.isoformat()}, on)
    villages: dict[str, int] = defaultdict(int)
    for c in in_quarantine:
        villages[c.village] += 1
    rows = [r for r in entitlement_rows(app, commune_code=commune_code)  # gifts apart: one row, one household
            if r["status"] != "cancelled" and date.fromisoformat(r["issued_on"]) <= on
            and not r["earmarked_donation_id"]]
    waiting = not_served(app, commune_code, on=on)
    campaigns = {c.id: c for c in app.campaigns() if c.level == "commune" and c.unit_code == commune_code}
    rounds = []
    for round_ in model.rounds():
        mine = [r for r in rows if r["round_id"] == round_["id"]]
        not_entitled = sum(1 for h in waiting["households"]
                           if h["round_id"] == round_["id"] and h["state"] == "not_entitled")
        if not mine and not not_entitled:
            continue
        served = [local_day(r["delivered_at"]) for r in mine if r["status"] == "served"]
        served_by = sum(1 for d in served if d <= on)
        campaign = campaigns.get(UUID(round_["campaign_id"])) or app.campaign(UUID(round_["campaign_id"]))
        campaigns[campaign.id] = campaign
        rounds.append({"round_id": round_["id"], "name": round_["name"], "campaign_id": round_["campaign_id"],
                       "campaign_name": campaign.name, "entitled": len(mine), "served": served_by,
                       "served_on_day": sum(1 for d in served if d == on), "not_served": len(mine) - served_by,
                       "eligible_not_entitled": not_entitled})
    totals = {k: sum(r[k] for r in rounds)
              for k in ("entitled", "served", "served_on_day", "not_served", "eligible_not_entitled")}
    return {
        "commune_code": commune_code, "commune_name": unit_name("commune", commune_code), "date": on.isoformat(),
        "generated_at": datetime.now(LOCAL).isoformat(timespec="seconds"),
        "in_quarantine": {"households": len(in_quarantine),
                          "by_village": [{"village": v, "households": n} for v, n in sorted(villages.items())]},
        "rounds": rounds, "totals": totals,
        "stock": [{"campaign_id": str(c.id), "campaign_name": c.name, "items": stock_left(app, c.id)}
                  for c in sorted(campaigns.values(), key=lambda c: c.name)],
    }


# ---- eligible but not served, across rounds ----------------------------------------------------

def not_served(app, commune_code: str, village: str | None = None, on: date | None = None) -> dict[str, Any]:
    """Distribution's per-round not-served query over every issued round: entitled but not
    served, and eligible but not yet entitled, per village, with the days each has waited."""
    on = on or today()
    households, places = [], {}
    for round_ in app.eligibility_model.rounds():
        if round_["status"] != "issued":
            continue
        found = app.not_served(UUID(round_["id"]), commune_code, village, on)
        for row in found["households"]:
            households.append({**row, "round_id": round_["id"], "round_name": round_["name"],
                               "campaign_id": round_["campaign_id"]})
            place = places.setdefault(row["village"].casefold(), {
                "commune_code": row["commune_code"], "village": row["village"], "entitled": 0,
                "not_entitled": 0, "households": set(), "longest_wait_days": 0})
            place[row["state"]] += 1
            place["households"].add(row["household_id"])
            place["longest_wait_days"] = max(place["longest_wait_days"], row["waiting_days"])
    households.sort(key=lambda r: (-r["waiting_days"], r["village"], r["household_id"], r["round_id"]))
    return {"commune_code": commune_code, "commune_name": unit_name("commune", commune_code), "village": village,
            "as_of": on.isoformat(), "total": len(households),
            "by_village": [{**p, "households": len(p["households"])}
                           for _, p in sorted(places.items())],
            "households": households}
