"""`relief-audit report`: the public figures (công khai) from the export and relief's events.

Everything is keyed by ids and GSO codes: no names, ID numbers or health data (guarantee 8).
Duplicates refused (409) come from the export's `{"kind": "refusal", ...}` lines (outside the
tree); an export without them (from NATS events, or an older ledger) says it cannot show them.
"""

import statistics
from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime
from enum import StrEnum
from pathlib import Path

import orjson
from jinja2 import Environment, FileSystemLoader, select_autoescape

from services.common.charts import grouped_bars
from services.ledger.audit.sources import paused_gc
from services.ledger.audit.verify import ReliefFacts

TEMPLATES = Path(__file__).parent / "templates"


class Format(StrEnum):
    text = "text"
    json = "json"
    html = "html"


def gini(values: list[float]) -> float:
    """0 when everyone got the same, towards 1 when one got everything (mean absolute difference / 2 mean)."""
    n, total = len(values), sum(values)
    if n == 0 or total == 0:
        return 0.0
    ordered = sorted(values)
    weighted = sum((2 * i - n + 1) * x for i, x in enumerate(ordered))
    return weighted / (n * total)


def _when(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _days(start, delivered_at: str) -> float:
    moment = _when(delivered_at)
    return round((moment - datetime(start.year, start.month, start.day, tzinfo=moment.tzinfo)).total_seconds() / 86400, 2)


def _spread(values: list[float]) -> dict | None:
    if not values:
        return None
    ordered = sorted(values)
    return {"n": len(ordered), "min": ordered[0], "median": round(statistics.median(ordered), 2),
            "p90": ordered[min(len(ordered) - 1, int(0.9 * len(ordered)))], "max": ordered[-1]}


def compute(lines: Iterable[bytes], relief_events: Iterable = (), min_seconds: float = 60.0,
            prices: dict[str, int] | None = None) -> dict:
    with paused_gc():
        return _compute(lines, relief_events, min_seconds, prices)


def _compute(lines: Iterable[bytes], relief_events: Iterable, min_seconds: float, prices: dict[str, int] | None) -> dict:
    prices = prices or {}
    facts = ReliefFacts(relief_events)
    open_delivery: dict[str, dict] = {}
    by_volunteer: dict[str, list[tuple[str, str, int]]] = defaultdict(list)
    refusals: dict[str, int] = defaultdict(int)
    refusals_exported = False
    entries = reversals = 0
    for line in lines:
        record = orjson.loads(line)
        if record.get("kind") == "refusal":
            refusals_exported = True
            refusals[record.get("volunteer_id", "?")] += 1
        if record.get("kind") != "entry":
            continue
        entries += 1
        entry = record["entry"]
        if entry["kind"] == "reversal":
            reversals += 1
            open_delivery.pop(entry["entitlement_id"], None)
            continue
        open_delivery[entry["entitlement_id"]] = entry
        by_volunteer[entry["volunteer_id"]].append((entry["delivered_at"], entry["household_id"], entry["seq"]))

    def value(entry: dict) -> int:
        return entry["cash_vnd"] + sum(line["quantity"] * prices.get(line["item_code"], 0) for line in entry["items"])

    places: dict[tuple[str, str], dict] = defaultdict(lambda: {"eligible": 0, "served": 0, "unmatched": 0, "value_vnd": 0})
    not_served: list[dict] = []
    since_eligible, since_issued = [], []
    for ent_id, ent in facts.entitlements.items():
        place = places[(ent.commune_code, ent.village)]
        place["eligible"] += 1
        entry = open_delivery.get(ent_id)
        if entry is None:
            if ent.cancelled_at is None:
                not_served.append({"entitlement_id": ent_id, "household_id": ent.household_id,
                                   "commune_code": ent.commune_code, "village": ent.village})
            continue
        place["served"] += 1
        place["value_vnd"] += value(entry)
        since_eligible.append(_days(ent.eligible_since, entry["delivered_at"]))
        since_issued.append(_days(ent.issued_on, entry["delivered_at"]))
    for ent_id, entry in open_delivery.items():
        if ent_id not in facts.entitlements:  # served without a known entitlement (or no relief events given)
            place = places[(entry["commune_code"], "")]
            place["unmatched"] += 1
            place["value_vnd"] += value(entry)

    communes: dict[str, dict] = {}
    for (commune, village), place in sorted(places.items()):
        c = communes.setdefault(commune, {"commune_code": commune, "eligible": 0, "served": 0, "unmatched": 0,
                                          "value_vnd": 0, "villages": []})
        for key in ("eligible", "served", "unmatched", "value_vnd"):
            c[key] += place[key]
        c["villages"].append({"village": village, **place, "coverage": _ratio(place["served"], place["eligible"])})
    for c in communes.values():
        c["coverage"] = _ratio(c["served"], c["eligible"])
        households = c["served"] + c["unmatched"]
        c["value_per_household_vnd"] = round(c["value_vnd"] / households) if households else 0
    per_household = [c["value_per_household_vnd"] for c in communes.values() if c["served"] + c["unmatched"]]

    fast = []
    for volunteer, visits in sorted(by_volunteer.items()):
        visits.sort()
        for (t1, h1, s1), (t2, h2, s2) in zip(visits, visits[1:]):
            gap = (_when(t2) - _when(t1)).total_seconds()
            if h1 != h2 and gap < min_seconds:
                fast.append({"volunteer_id": volunteer, "seq": s1, "next_seq": s2, "seconds": gap})

    return {
        "entries": entries, "reversals": reversals, "served": len(open_delivery),
        "eligible": len(facts.entitlements), "relief_events_given": bool(facts.entitlements),
        "communes": list(communes.values()),
        "eligible_not_served": not_served,
        "value_per_household_across_communes": {**(_spread(per_household) or {}), "gini": round(gini(per_household), 4),
                                                "priced_items": prices},
        "days_from_eligible_to_delivery": _spread(since_eligible),
        "days_from_issued_to_delivery": _spread(since_issued),
        "refusals_per_volunteer": dict(refusals) if refusals_exported else None,
        "too_fast": {"min_seconds": min_seconds, "pairs": fast},
    }


def _ratio(a: int, b: int) -> float | None:
    return round(a / b, 4) if b else None


def render(figures: dict, fmt: Format) -> str:
    if fmt == Format.json:
        return orjson.dumps(figures, option=orjson.OPT_INDENT_2).decode() + "\n"
    env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(["html"]),
                      trim_blocks=True, lstrip_blocks=True)
    env.filters["pct"] = lambda x: "—" if x is None else f"{x * 100:.1f}%"
    env.filters["vnd"] = lambda x: f"{x:,.0f}".replace(",", ".")
    template = env.get_template("report.html" if fmt == Format.html else "report.txt")
    communes = figures["communes"]
    charts = {"coverage": grouped_bars("Độ phủ / Coverage", [(c["commune_code"], [(c["coverage"] or 0) * 100])
                                                             for c in communes],
                                       ["Độ phủ / Coverage"], unit="%", fmt=lambda v: f"{v:.1f}%", top=100),
              "value": grouped_bars("Giá trị mỗi hộ / Value per household",
                                    [(c["commune_code"], [c["value_per_household_vnd"]]) for c in communes if c["served"]],
                                    ["Bình quân / hộ (đ)"], unit="đ")}
    return template.render(f=figures, charts=charts)
