"""relief-audit report on a small dataset whose figures are worked out by hand.

Six households, two per commune (A=10001, B=10002, C=10003; household n is in commune n % 3).
Deliveries one hour apart from 2021-07-20 09:00 UTC: A gets 100,000 VND twice, B 200,000 twice,
C 600,000 once (household 5 is never served). Per household by commune: 100k, 200k, 600k:
min 100k, median 200k, max 600k, Gini = sum|xi-xj| / (2 n^2 mean) = 2,000k / 5,400k = 0.3704.
Eligible since 2021-07-15: 5 days + 9h..13h = 5.38, 5.42, 5.46, 5.50, 5.54 days (median 5.46).
Household 3 is delivered by the same volunteer as household 2, one hour later.
"""

from datetime import timedelta

import orjson
import pytest
from typer.testing import CliRunner

from services.ledger.audit import sample
from services.ledger.audit.cli import app
from services.ledger.audit.report import gini

CASH = {0: 100_000, 1: 200_000, 2: 600_000, 3: 100_000, 4: 200_000}


@pytest.fixture
def files(tmp_path):
    world = sample.World(households=6, communes=("10001", "10002", "10003"), villages=1)
    for ent in world.entitlements:
        ent["cash_vnd"] = 600_000
    entries = []
    for n, entry in enumerate(world.deliveries(seconds_apart=3600)):
        if n in CASH:
            moment = sample.START + timedelta(hours=n + 1)
            entries.append({**entry, "cash_vnd": CASH[n], "volunteer_id": "tnv-2" if n == 3 else entry["volunteer_id"]})
            assert entry["delivered_at"].startswith(moment.strftime("%Y-%m-%dT%H"))
    (tmp_path / "export.jsonl").write_bytes(b"\n".join(sample.export(entries, sample.signing_key())) + b"\n")
    (tmp_path / "relief.jsonl").write_bytes(b"\n".join(orjson.dumps(e) for e in world.relief_events()) + b"\n")
    return tmp_path


def report(files, *args) -> str:
    result = CliRunner().invoke(app, ["report", "-s", str(files / "export.jsonl"),
                                      "--relief-events", str(files / "relief.jsonl"), *args])
    assert result.exit_code == 0, result.output
    return result.output


def test_figures_match_the_hand_worked_ones(files):
    f = orjson.loads(report(files, "--format", "json", "--min-seconds", "4000"))
    assert (f["entries"], f["served"], f["eligible"]) == (5, 5, 6)
    assert [(c["commune_code"], c["served"], c["eligible"], c["coverage"], c["value_per_household_vnd"])
            for c in f["communes"]] == [("10001", 2, 2, 1.0, 100_000), ("10002", 2, 2, 1.0, 200_000),
                                        ("10003", 1, 2, 0.5, 600_000)]
    assert [n["household_id"] for n in f["eligible_not_served"]] == [sample.uid("household", 5)]
    spread = f["value_per_household_across_communes"]
    assert (spread["min"], spread["median"], spread["max"], spread["gini"]) == (100_000, 200_000, 600_000, 0.3704)
    days = f["days_from_eligible_to_delivery"]
    assert (days["n"], days["min"], days["median"], days["max"]) == (5, 5.38, 5.46, 5.54)
    assert f["days_from_issued_to_delivery"]["median"] == 2.46
    assert f["too_fast"]["pairs"] == [{"volunteer_id": "tnv-2", "seq": 3, "next_seq": 4, "seconds": 3600.0}]
    assert f["refusals_per_volunteer"] is None  # the v1 export carries no 409s
    assert orjson.loads(report(files, "--format", "json"))["too_fast"]["pairs"] == []


def test_goods_are_valued_when_priced(files):
    f = orjson.loads(report(files, "--format", "json", "--price", "gao=20000"))
    assert f["communes"][0]["value_per_household_vnd"] == 100_000 + 10 * 20_000


def test_gini_edge_cases():
    assert gini([]) == 0 and gini([5, 5, 5]) == 0
    assert gini([0, 0, 0, 12]) == pytest.approx(0.75)  # one of four has everything: (n-1)/n


def test_text_and_html_hold_the_same_figures_and_no_outside_resources(files):
    text = report(files)
    assert "Xã 10003: 1 / 2 = 50.0%" in text and "Gini 0.3704" in text
    report(files, "--format", "html", "--out", str(files / "report.html"))
    html = (files / "report.html").read_text()
    assert html.count("<svg") == 2 and "Gini <b>0.3704</b>" in html
    assert "http" not in html.replace('xmlns="http://www.w3.org/2000/svg"', "")
    # pygal's charts, inline: no script (the web front's CSP), values printed on the bars, named
    assert "<script" not in html and 'role="img"' in html and ">50.0%</text>" in html and ">600.000 đ</text>" in html


def test_a_delivery_without_an_issued_entitlement_is_counted_apart(files):
    events = [orjson.loads(line) for line in (files / "relief.jsonl").read_bytes().splitlines()]
    kept = [e for e in events if e["data"].get("household_id") != sample.uid("household", 0)]
    (files / "relief.jsonl").write_bytes(b"\n".join(orjson.dumps(e) for e in kept))
    a = orjson.loads(report(files, "--format", "json"))["communes"][0]
    assert (a["served"], a["eligible"], a["unmatched"], a["coverage"], a["value_per_household_vnd"]) == (1, 1, 1, 1.0, 100_000)
