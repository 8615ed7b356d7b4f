"""Distribution rounds: eligibility, issue, shortfall, priority, earmarks, top-up, cancel, ledger.

Over relief's own event store (SQLite and PostgreSQL), with the real funds side (campaign,
donations, stock)."""

import threading
import uuid
from datetime import date, datetime, timezone

import pytest
from eventsourcing.persistence import IntegrityError, Tracking

from contracts import DistributionRecorded, DistributionReversed
from services.common.store import UnitOfWork
from services.relief import distribution
from services.relief.distribution import LEDGER_HANDLERS, to_contract
from services.relief.rounds import (AlreadyServed, Entitlement, RoundNotDraft, Shortfall, entitlement_id,
                                    package_for)
from services.relief.application import Relief
from tests.unit.test_relief_rounds_support import COMMUNE, OTHER_COMMUNE, Feed, available, give, open_campaign

ON = date(2021, 7, 25)
RICE = {"items": {"rice": 10}}


@pytest.fixture
def app(settings_for):
    application = Relief(settings_for("relief"))
    yield application
    application.close()


@pytest.fixture
def feed(app):
    return Feed(app)


@pytest.fixture
def campaign(app):
    return open_campaign(app)


def draft(app, campaign, package=None, **rule):
    rule.setdefault("commune_codes", [COMMUNE])
    return app.draft_round("can-bo", campaign, "Đợt 1", ON, package or RICE, rule)


def entitled(app, round_id) -> dict:
    """household id -> status, from the read model."""
    _, rows = app.eligibility_model.entitlements(round_id, limit=10_000)
    return {uuid.UUID(r["household_id"]): r["status"] for r in rows if not r["earmarked_donation_id"]}


def test_each_eligibility_kind_selects_exactly_its_households(app, feed, campaign):
    a = feed.register(village="Thôn 1", poverty="poor")
    b = feed.register(village="Thôn 2", elderly=1)
    c = feed.register(commune=OTHER_COMMUNE)  # another commune
    d = feed.register(village="thôn  1")  # same village, other spelling
    feed.quarantine(a, date(2021, 7, 20), date(2021, 8, 3))
    ended = feed.quarantine(b, date(2021, 7, 1), date(2021, 7, 14))
    feed.end(b, ended, date(2021, 7, 10))
    feed.quarantine(c)
    give(app, campaign, {"rice": 1000})

    def selected(**rule):
        return {x.household_id for x in app.plan(draft(app, campaign, **rule), topping_up=False).candidates}

    assert selected(quarantine_on="2021-07-25") == {a}
    assert selected(quarantine_on="2021-07-12") == set()  # b's quarantine ended on the 10th
    assert selected(quarantine_from="2021-07-05", quarantine_to="2021-07-21") == {a, b}
    assert selected(commune_codes=[COMMUNE, OTHER_COMMUNE], quarantine_on="2021-07-25") == {a, c}
    assert selected(villages=["Thôn 1"]) == {a, d}
    assert selected(poverty_statuses=["poor", "near_poor"]) == {a}
    assert selected(vulnerable=["elderly", "pregnant"]) == {b}
    assert selected() == {a, b, d}


def test_includes_excludes_and_merged_households(app, feed, campaign):
    a, b, survivor, duplicate = (feed.register() for _ in range(4))
    outsider = feed.register(commune=OTHER_COMMUNE)
    for household in (a, b, duplicate):
        feed.quarantine(household)
    feed.merge(survivor, duplicate)  # the duplicate's quarantine counts for the survivor
    give(app, campaign, {"rice": 1000})
    stranger = uuid.uuid4()
    round_ = draft(app, campaign, quarantine_on="2021-07-25",
                   includes=[{"household_id": str(outsider), "reason": "Người già neo đơn"},
                             {"household_id": str(stranger), "reason": "?"}],
                   excludes=[{"household_id": str(b), "reason": "Đã nhận từ xã khác"}])
    plan = app.preview(round_.id)
    assert {c.household_id for c in plan.candidates} == {a, survivor, outsider}
    assert plan.unknown_includes == [{"household_id": str(stranger), "reason": "?"}]
    assert plan.excluded == [{"household_id": str(b), "reason": "Đã nhận từ xã khác"}]
    app.issue(round_.id, "can-bo", on=ON)
    assert set(entitled(app, round_.id)) == {a, survivor, outsider}
    included = app.entitlement(entitlement_id(round_.id, outsider))
    assert included.included_because == "Người già neo đơn"


def test_package_scales_by_members_with_a_cap_and_by_flags():
    package = {"items": {"rice": 10, "cash": 500_000}, "per_member": {"milk": 2}, "member_cap": 4,
               "per_flag": {"child_under_6": {"milk": 3}, "pregnant": {"vitamin": 1}}}
    assert package_for(package, 6, {"child_under_6": 2}) == {"cash": 500_000, "milk": 14, "rice": 10}
    assert package_for(package, 1, {"pregnant": 1}) == {"cash": 500_000, "milk": 2, "rice": 10, "vitamin": 1}


def test_issue_matches_the_eligible_set_once_and_the_store_refuses_a_second(app, feed, campaign, monkeypatch):
    monkeypatch.setattr(distribution, "BATCH", 3)  # several transactions
    households = [feed.register(members=m) for m in (1, 2, 3, 4, 5, 6, 7)]
    for household in households[:6]:
        feed.quarantine(household)
    give(app, campaign, {"rice": 1000, "cash": 10_000_000})
    round_ = draft(app, campaign, {"items": {"cash": 100_000}, "per_member": {"rice": 5}, "member_cap": 5},
                   quarantine_on="2021-07-25")
    result = app.issue(round_.id, "can-bo", on=ON)
    assert len(result.issued) == 6 and entitled(app, round_.id) == dict.fromkeys(households[:6], "issued")
    assert available(app, campaign) == {"rice": 1000 - 5 * (1 + 2 + 3 + 4 + 5 + 5),
                                              "cash": 10_000_000 - 6 * 100_000}
    assert app.round(round_.id).issued["count"] == 6
    with pytest.raises(RoundNotDraft):
        app.issue(round_.id, "can-bo", on=ON)
    again = Entitlement(**{**_kwargs(app.entitlement(entitlement_id(round_.id, households[0])))})
    with pytest.raises(IntegrityError):  # not a check: the unique (id, version) key
        app.save(again)


def _kwargs(e: Entitlement) -> dict:
    return dict(id=e.id, round_id=e.round_id, campaign_id=e.campaign_id, household_id=e.household_id,
                commune_code=e.commune_code, village=e.village, lines=e.lines, units=e.units,
                eligible_since=e.eligible_since, issued_on=e.issued_on, actor="x")


def test_a_shortfall_issues_nothing_and_says_how_short_per_item(app, feed, campaign):
    for _ in range(3):
        feed.quarantine(feed.register())
    give(app, campaign, {"rice": 25, "cooking_oil": 10})
    round_ = draft(app, campaign, {"items": {"rice": 10, "cooking_oil": 1}}, quarantine_on="2021-07-25")
    with pytest.raises(Shortfall) as refused:
        app.issue(round_.id, "can-bo", on=ON)
    assert refused.value.details["shortfall"] == {"rice": 5}
    assert refused.value.details["needs"] == {"cooking_oil": 3, "rice": 30}
    assert entitled(app, round_.id) == {} and app.round(round_.id).status == "draft"
    assert available(app, campaign) == {"rice": 25, "cooking_oil": 10}
    app.edit_round(round_.id, "can-bo", package={"items": {"rice": 8, "cooking_oil": 1}})  # reduce the package
    assert len(app.issue(round_.id, "can-bo", on=ON).issued) == 3


def test_priority_issue_serves_the_poorest_first_and_reports_who_waits(app, feed, campaign):
    poor, near_poor, elderly, plain = (feed.register(poverty="poor"), feed.register(poverty="near_poor"),
                                       feed.register(elderly=2), feed.register())
    for household in (plain, elderly, near_poor, poor):
        feed.quarantine(household)
    give(app, campaign, {"rice": 25})
    round_ = draft(app, campaign, quarantine_on="2021-07-25")
    result = app.issue(round_.id, "can-bo", prioritise=True, on=ON)
    assert set(entitled(app, round_.id)) == {poor, near_poor}
    assert [c.household_id for c in result.waiting] == [elderly, plain] and result.shortfall == {"rice": 15}
    assert app.not_served(round_.id, on=ON)["by_place"] == [
        {"commune_code": COMMUNE, "village": "Thôn 1", "entitled": 2, "not_entitled": 2, "longest_wait_days": 5}]
    give(app, campaign, {"rice": 100})  # stock came: the top-up serves who waited
    assert {app.entitlement(i).household_id for i in app.top_up(round_.id, "can-bo", on=ON).issued} == {elderly, plain}


def test_earmarked_gifts_go_to_their_household_or_commune_only_and_once(app, feed, campaign):
    named, neighbour = feed.register(), feed.register()
    commune_a, commune_b1, commune_b2 = feed.register(), feed.register(OTHER_COMMUNE), feed.register(OTHER_COMMUNE)
    for household in (neighbour, commune_a, commune_b1, commune_b2):
        feed.quarantine(household)
    give(app, campaign, {"rice": 1000})
    for_named = give(app, campaign, {"cash": 2_000_000}, earmark={"household_id": named})
    for_commune = give(app, campaign, {"rice": 7}, earmark={"commune_code": OTHER_COMMUNE})
    round_ = draft(app, campaign, commune_codes=[COMMUNE, OTHER_COMMUNE], quarantine_on="2021-07-25")
    preview = app.preview(round_.id)
    assert preview.needs == {"rice": 40}  # the round's package only: gifts come from their own lots
    result = app.issue(round_.id, "can-bo", on=ON)
    gifts = {(e.household_id, e.earmarked_donation_id, tuple(e.lines.items()))
             for e in map(app.entitlement, result.issued) if e.earmarked_donation_id}
    first_b, second_b = sorted((commune_b1, commune_b2), key=str)  # equal priority: by id
    assert gifts == {(named, for_named, (("cash", 2_000_000),)), (first_b, for_commune, (("rice", 4),)),
                     (second_b, for_commune, (("rice", 3),))}
    assert app.entitlement(entitlement_id(round_.id, named, for_named)).lines == {"cash": 2_000_000}
    assert named not in entitled(app, round_.id)  # the gift only: not in quarantine, no round package
    levels = app.stock_levels(campaign)
    assert (levels["cash"].available, levels["rice"].earmarked, levels["rice"].available) == (0, 0, 1007 - 47)
    second = draft(app, campaign, commune_codes=[COMMUNE, OTHER_COMMUNE], quarantine_on="2021-07-25")
    issued = [app.entitlement(i) for i in app.issue(second.id, "can-bo", on=ON).issued]
    assert not any(e.earmarked_donation_id for e in issued)  # a gift is used by one round only


def test_top_up_picks_up_the_late_and_never_doubles_even_when_two_race(app, feed, campaign):
    first = [feed.register() for _ in range(3)]
    for household in first:
        feed.quarantine(household)
    give(app, campaign, {"rice": 1000})
    round_ = draft(app, campaign, quarantine_on="2021-07-25")
    app.issue(round_.id, "can-bo", on=ON)
    late_registration = feed.register()
    feed.quarantine(late_registration)
    new_quarantine = feed.register()
    assert [c.household_id for c in app.preview(round_.id).candidates] == [late_registration]
    feed.quarantine(new_quarantine, date(2021, 7, 24), date(2021, 8, 7))
    late = {late_registration, new_quarantine}
    assert {c.household_id for c in app.preview(round_.id).candidates} == late

    results = []
    barrier = threading.Barrier(2)

    def top_up():
        barrier.wait()
        results.append(app.top_up(round_.id, "can-bo", on=ON))

    threads = [threading.Thread(target=top_up) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(len(r.issued) for r in results) == 2 and sum(r.skipped for r in results) <= 2
    assert set(entitled(app, round_.id)) == set(first) | late
    assert available(app, campaign) == {"rice": 1000 - 10 * 5}
    assert app.top_up(round_.id, "can-bo", on=ON).issued == []


def test_cancel_releases_stock_and_is_refused_once_served(app, feed, campaign):
    a, b = feed.register(), feed.register()
    give(app, campaign, {"rice": 100})
    round_ = draft(app, campaign)
    app.issue(round_.id, "can-bo", on=ON)
    assert available(app, campaign) == {"rice": 80}
    cancelled = app.cancel_entitlement(entitlement_id(round_.id, a), "issued_in_error", "nhập nhầm", "can-bo")
    assert cancelled.status == "cancelled" and available(app, campaign) == {"rice": 90}
    assert entitled(app, round_.id)[a] == "cancelled"
    assert app.top_up(round_.id, "can-bo", on=ON).issued == []  # a cancelled suất is not re-issued
    served = entitlement_id(round_.id, b)
    _ledger(app, [recorded(served, round_.id, b, 1)])
    with pytest.raises(AlreadyServed) as refused:
        app.cancel_entitlement(served, "other", None, "can-bo")
    assert refused.value.details["served"]["entry_seq"] == 1


def recorded(ent_id, round_id, household_id, seq):
    return DistributionRecorded(event_id=uuid.uuid4(), occurred_at=datetime.now(timezone.utc), source_id=ent_id,
                                source_version=1, entry_seq=seq, leaf_hash="0" * 64, round_id=round_id,
                                household_id=household_id, commune_code=COMMUNE, volunteer_id="tnv-7",
                                device_id="phone-1", delivered_at=datetime(2021, 7, 26, 9, tzinfo=timezone.utc))


def reversed_(ent_id, round_id, household_id, seq, reverses):
    return DistributionReversed(event_id=uuid.uuid4(), occurred_at=datetime.now(timezone.utc), source_id=ent_id,
                                source_version=1, entry_seq=seq, leaf_hash="0" * 64, reverses_seq=reverses,
                                round_id=round_id, household_id=household_id, commune_code=COMMUNE,
                                reason="wrong_household", reversed_by="can-bo")


def _ledger(app, events, position=[0]):  # noqa: B006 - one tracking position per test store
    uow = UnitOfWork(app)
    for event in events:
        LEDGER_HANDLERS[type(event)](uow, event)
    position[0] += 1
    uow.commit(Tracking(f"LEDGER/test-{id(app)}", position[0]))


def test_ledger_events_mark_served_and_reopen_idempotently(app, feed, campaign):
    a = feed.register()
    give(app, campaign, {"rice": 100})
    round_ = draft(app, campaign)
    app.issue(round_.id, "can-bo", on=ON)
    ent = entitlement_id(round_.id, a)
    _ledger(app, [recorded(ent, round_.id, a, 5), recorded(ent, round_.id, a, 5)])
    _ledger(app, [recorded(ent, round_.id, a, 5)])  # redelivered after the dedup window
    served = app.entitlement(ent)
    assert served.version == 2 and served.served == {"entry_seq": 5, "delivered_at": "2021-07-26T09:00:00+00:00",
                                                     "volunteer_id": "tnv-7"}
    assert entitled(app, round_.id)[a] == "served" and app.not_served(round_.id, on=ON)["total"] == 0
    _ledger(app, [reversed_(ent, round_.id, a, 6, 5), reversed_(ent, round_.id, a, 6, 5)])
    assert app.entitlement(ent).status == "issued" and app.entitlement(ent).version == 3
    waiting = app.not_served(round_.id, commune_code=COMMUNE, village="thôn 1", on=ON)
    assert [h["household_id"] for h in waiting["households"]] == [str(a)]
    _ledger(app, [recorded(ent, round_.id, a, 7)])
    assert app.entitlement(ent).served["entry_seq"] == 7


def test_contract_events_carry_ids_places_and_amounts_only(app, feed, campaign):
    a = feed.register(members=2)
    give(app, campaign, {"rice": 100, "cash": 1_000_000})
    round_ = draft(app, campaign, {"items": {"rice": 10, "cash": 300_000}})
    app.issue(round_.id, "can-bo", on=ON)
    events = [to_contract(e) for e in app.repository.event_store.get(entitlement_id(round_.id, a))]
    issued = events[0]
    assert issued.type_name() == "EntitlementIssued" and issued.household_id == a
    assert issued.cash_vnd == 300_000 and [(i.item_code, i.unit, i.quantity) for i in issued.items] == [
        ("rice", "kg", 10)]
    assert issued.eligible_since == ON and issued.issued_on == ON
    app.cancel_entitlement(issued.source_id, "no_longer_eligible", None, "can-bo")
    cancelled = to_contract(list(app.repository.event_store.get(issued.source_id))[-1])
    assert (cancelled.round_id, cancelled.household_id, cancelled.reason) == (round_.id, a, "no_longer_eligible")
    assert to_contract(list(app.repository.event_store.get(round_.id))[0]) is None


def test_the_read_model_rebuilds_to_the_same_answers(app, feed, campaign, settings_for):
    for _ in range(4):
        feed.quarantine(feed.register())
    give(app, campaign, {"rice": 100})
    round_ = draft(app, campaign, quarantine_on="2021-07-25")
    app.issue(round_.id, "can-bo", on=ON)
    before = (entitled(app, round_.id), app.not_served(round_.id, on=ON))
    path = app.eligibility_model.path
    app.close()
    path.unlink()
    again = Relief(settings_for("relief"))
    try:
        assert (entitled(again, round_.id), again.not_served(round_.id, on=ON)) == before
    finally:
        again.close()


def test_a_duplicate_merged_after_issue_keeps_its_suat_and_the_survivor_gets_none(app, feed, campaign):
    survivor, duplicate = feed.register(), feed.register()
    feed.quarantine(duplicate)
    give(app, campaign, {"rice": 100})
    round_ = draft(app, campaign, quarantine_on="2021-07-25")
    app.issue(round_.id, "can-bo", on=ON)
    assert set(entitled(app, round_.id)) == {duplicate}
    feed.merge(survivor, duplicate)  # the survivor now carries the duplicate's quarantine ...
    assert app.preview(round_.id).candidates == []  # ... and its suất: no second one
    assert app.top_up(round_.id, "can-bo", on=ON).issued == []
    fresh = draft(app, campaign, quarantine_on="2021-07-25")
    assert [c.household_id for c in app.preview(fresh.id).candidates] == [survivor]


def test_a_commune_gift_received_after_the_issue_is_shared_by_the_top_up_among_all_there(app, feed, campaign):
    first, second = feed.register(OTHER_COMMUNE), feed.register(OTHER_COMMUNE)
    for household in (first, second):
        feed.quarantine(household)
    give(app, campaign, {"rice": 100})
    round_ = draft(app, campaign, commune_codes=[OTHER_COMMUNE], quarantine_on="2021-07-25")
    app.issue(round_.id, "can-bo", on=ON)
    gift = give(app, campaign, {"cash": 1_000_000}, earmark={"commune_code": OTHER_COMMUNE})
    topped = [app.entitlement(i) for i in app.top_up(round_.id, "can-bo", on=ON).issued]
    assert sorted((e.household_id, e.earmarked_donation_id, e.lines["cash"]) for e in topped) == sorted(
        [(first, gift, 500_000), (second, gift, 500_000)])
    assert app.top_up(round_.id, "can-bo", on=ON).issued == []
