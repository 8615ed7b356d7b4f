"""Property: for any households, quarantine episodes, merges and rule, the round selects exactly
the households a plain reading of the rule selects (an oracle over the same facts), and issuing
creates exactly one entitlement for each of them."""

import tempfile
from dataclasses import dataclass, field
from datetime import date, timedelta
from uuid import UUID

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.common.settings import Settings
from services.relief.application import Relief
from tests.unit.test_relief_rounds_support import COMMUNE, OTHER_COMMUNE, Feed, give, open_campaign

DAY0 = date(2021, 7, 1)
FLAGS = ("elderly", "child_under_6", "pregnant")


@dataclass
class Facts:
    commune: str
    village: str
    poverty: str
    flags: dict[str, int]
    episodes: list[tuple[date, date, date | None]] = field(default_factory=list)  # start, expected end, ended
    merged_into: int | None = None


days = st.integers(0, 40).map(lambda n: DAY0 + timedelta(days=n))
episode = st.tuples(days, st.integers(0, 20), st.one_of(st.none(), st.integers(0, 25))).map(
    lambda t: (t[0], t[0] + timedelta(days=t[1]), None if t[2] is None else t[0] + timedelta(days=t[2])))
facts = st.builds(Facts, commune=st.sampled_from([COMMUNE, OTHER_COMMUNE]), village=st.sampled_from(["Tổ 1", "Tổ 2"]),
                  poverty=st.sampled_from(["none", "poor", "near_poor"]),
                  flags=st.fixed_dictionaries({f: st.integers(0, 1) for f in FLAGS}),
                  episodes=st.lists(episode, max_size=2))
rules = st.fixed_dictionaries({}, optional={
    "quarantine": st.one_of(days.map(lambda d: {"quarantine_on": d.isoformat()}),
                            st.tuples(days, st.integers(0, 10)).map(lambda t: {
                                "quarantine_from": t[0].isoformat(),
                                "quarantine_to": (t[0] + timedelta(days=t[1])).isoformat()})),
    "commune_codes": st.lists(st.sampled_from([COMMUNE, OTHER_COMMUNE]), min_size=1, unique=True),
    "villages": st.lists(st.sampled_from(["Tổ 1", "tổ 2"]), min_size=1, unique=True),
    "poverty_statuses": st.lists(st.sampled_from(["poor", "near_poor"]), min_size=1, unique=True),
    "vulnerable": st.lists(st.sampled_from(FLAGS), min_size=1, unique=True),
})


def oracle(households: list[Facts], rule: dict) -> set[int]:
    if "quarantine" in rule:
        q = rule["quarantine"]
        start = date.fromisoformat(q.get("quarantine_on") or q["quarantine_from"])
        end = date.fromisoformat(q.get("quarantine_on") or q["quarantine_to"])
    selected = set()
    for index, h in enumerate(households):
        if h.merged_into is not None:
            continue
        episodes = [e for j, other in enumerate(households) if j == index or other.merged_into == index
                    for e in other.episodes]
        if "quarantine" in rule and not any(s <= end and (ended or expected) >= start
                                            for s, expected, ended in episodes):
            continue
        if "commune_codes" in rule and h.commune not in rule["commune_codes"]:
            continue
        if "villages" in rule and h.village.casefold() not in {v.casefold() for v in rule["villages"]}:
            continue
        if "poverty_statuses" in rule and h.poverty not in rule["poverty_statuses"]:
            continue
        if "vulnerable" in rule and not any(h.flags[f] for f in rule["vulnerable"]):
            continue
        selected.add(index)
    return selected


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(households=st.lists(facts, min_size=1, max_size=8), merges=st.lists(st.tuples(st.integers(0, 7),
       st.integers(0, 7)), max_size=2), rule=rules)
def test_the_round_selects_what_the_rule_says_and_issues_each_once(households, merges, rule):
    app = Relief(Settings.from_env("relief", {"DATA_DIR": tempfile.mkdtemp()}))
    try:
        feed = Feed(app)
        ids: list[UUID] = []
        for h in households:
            ids.append(feed.register(h.commune, h.village, poverty=h.poverty, **h.flags))
            for start, expected, ended in h.episodes:
                episode_id = feed.quarantine(ids[-1], start, expected)
                if ended is not None:
                    feed.end(ids[-1], episode_id, ended)
        for survivor, duplicate in merges:  # only between live households, one merge per duplicate
            if survivor < len(households) and duplicate < len(households) and survivor != duplicate and \
                    households[survivor].merged_into is None and households[duplicate].merged_into is None and \
                    not any(h.merged_into == duplicate for h in households):
                feed.merge(ids[survivor], ids[duplicate])
                households[duplicate].merged_into = survivor
        campaign = open_campaign(app)
        give(app, campaign, {"rice": 1000})
        eligibility = {k: v for k, v in rule.items() if k != "quarantine"} | rule.get("quarantine", {})
        eligibility.setdefault("commune_codes", [COMMUNE, OTHER_COMMUNE])
        round_ = app.draft_round("x", campaign, "r", date(2021, 7, 25), {"items": {"rice": 1}}, eligibility)
        expected = {ids[i] for i in oracle(households, rule)}
        assert {c.household_id for c in app.preview(round_.id).candidates} == expected
        app.issue(round_.id, "x")
        _, rows = app.eligibility_model.entitlements(round_.id, limit=100)
        assert sorted(r["household_id"] for r in rows) == sorted(map(str, expected))
        assert app.preview(round_.id).candidates == []  # a top-up would add nobody
    finally:
        app.close()
