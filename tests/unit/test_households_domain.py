"""The household rules: identity numbers, places, members, quarantine, merging, once-only heads."""

import unicodedata
from datetime import date
from pathlib import Path
from uuid import uuid5

import orjson
import pytest
from eventsourcing.persistence import IntegrityError

from services.common.settings import Settings
from services.households.application import Households, to_contract
from services.households.domain import (CannotMerge, DecisionAlreadyRecorded, EpisodeAlreadyEnded, EpisodeNotFound,
                                        NAMESPACE, HeadAlreadyRegistered, HeadCannotBeRemoved, HeadCitizenId, Household,
                                        HouseholdMergedAway, InvalidCitizenId, InvalidPhone, InvalidValue, LegalBasis,
                                        Member, MemberNotFound, UnknownCommune, check_cccd, check_commune,
                                        check_phone)
from services.households.readmodel import fold

WARD = "00070"  # Phường Hoàn Kiếm, Hà Nội (list in force since 1 July 2025)
BASIS = LegalBasis("public_task", "Chỉ thị 16/CT-TTg")


def register(cccd: str = "001070000001", name: str = "Nguyễn Văn An", members: list[Member] | None = None,
             **details) -> Household:
    fields = dict(commune_code=WARD, village="Thôn Đông", address="Số 1 Lê Lợi", phone="0912345678",
                  poverty_status="poor", legal_basis=BASIS, actor="cán bộ A") | details
    return Household.register(head=Member.new(name, "head", 1970, cccd), members=members or [], **fields)


@pytest.fixture
def app(tmp_path: Path) -> Households:
    application = Households(Settings(service="households", data_dir=tmp_path))
    yield application
    application.close()


# ---- values ---------------------------------------------------------------------

@pytest.mark.parametrize("value", ["001070000001", " 079199012345 "])
def test_cccd_is_exactly_twelve_digits(value):
    assert check_cccd(value) == value.strip()


@pytest.mark.parametrize("value", ["00107000001", "0010700000012", "00107000000a", "００１０７００００００１", ""])
def test_cccd_of_another_length_or_with_other_characters_is_refused(value):
    with pytest.raises(InvalidCitizenId) as refused:
        check_cccd(value, "head.cccd")
    assert refused.value.field == "head.cccd"
    assert refused.value.status_code == 422


@pytest.mark.parametrize("given, stored", [
    ("0912345678", "0912345678"), ("+84 912 345 678", "0912345678"), ("84912345678", "0912345678"),
    ("091.234.5678", "0912345678"), ("(024) 3825 1234", "02438251234"), ("0356-123-456", "0356123456"),
])
def test_vietnamese_phone_numbers_are_stored_in_domestic_form(given, stored):
    assert check_phone(given) == stored


@pytest.mark.parametrize("value", ["12345", "0112345678", "09123456789", "+1 202 555 0100", "abc"])
def test_other_phone_numbers_are_refused(value):
    with pytest.raises(InvalidPhone):
        check_phone(value)


def test_a_current_ward_code_is_accepted_and_padded_to_five_digits():
    assert check_commune("70") == "00070"
    assert check_commune("00070") == "00070"


@pytest.mark.parametrize("value", ["99999", "26734", "abcde", "123456", ""])
def test_a_code_outside_the_current_ward_list_is_refused_naming_commune_code(value):
    with pytest.raises(UnknownCommune) as refused:
        check_commune(value)
    assert refused.value.field == "commune_code"


@pytest.mark.parametrize("text, folded", [
    ("Nguyễn Văn An", "nguyen van an"),
    ("ĐẶNG THỊ ĐÀO", "dang thi dao"),
    ("Tổ dân phố 3, Đường Lê Lợi", "to dan pho 3 duong le loi"),
    (unicodedata.normalize("NFD", "Huỳnh Thị Hạnh"), "huynh thi hanh"),  # decomposed input
    ("Ðoàn", "doan"),  # Icelandic eth typed for Đ
])
def test_folding_drops_diacritics_case_and_maps_d_stroke_to_d(text, folded):
    assert fold(text) == folded


# ---- registration and corrections -------------------------------------------------

def test_registration_keeps_the_head_as_a_member_and_counts_vulnerability():
    household = register(members=[Member.new("Trần Thị Bình", "spouse", 1940, elderly=True, chronic_illness=True)])
    assert household.head.name == "Nguyễn Văn An"
    assert household.head.relation == "head"
    assert len(household.member_list) == 2
    registered = to_contract(household.collect_events()[0])
    assert registered.member_count == 2
    assert registered.vulnerability.elderly == 1 and registered.vulnerability.chronic_illness == 1


def test_a_second_head_among_members_is_refused():
    with pytest.raises(InvalidValue) as refused:
        register(members=[Member.new("Lê Văn C", "head")])
    assert refused.value.field == "members.0.relation"


def test_two_people_of_one_household_cannot_share_a_cccd():
    with pytest.raises(InvalidValue):
        register(members=[Member.new("Lê Văn C", "child", 2000, "001070000001")])


def test_correction_records_only_what_changed_and_who_changed_it():
    household = register()
    assert household.correct("cán bộ B", "sai thôn", village="Thôn Đông", poverty_status="near_poor") is True
    corrected = household.collect_events()[-1]
    assert corrected.changes == {"poverty_status": "near_poor"}
    assert corrected.actor == "cán bộ B"
    assert household.correct("cán bộ B", village="Thôn Đông") is False


def test_correction_is_checked_like_registration():
    household = register()
    with pytest.raises(UnknownCommune):
        household.correct("x", commune_code="99999")
    with pytest.raises(InvalidCitizenId):
        household.correct("x", head_cccd="123")


# ---- members ----------------------------------------------------------------------

def test_members_are_added_corrected_and_removed_but_never_the_head():
    household = register()
    child = Member.new("Nguyễn Văn Bé", "child", 2023, child_under_6=True)
    household.add_member(child, "x")
    assert household.correct_member(child.member_id, "x", pregnant=False, disabled=True) is True
    assert household.members[child.member_id].disabled
    with pytest.raises(HeadCannotBeRemoved):
        household.remove_member(household.head_id, "x")
    household.remove_member(child.member_id, "x", "chuyển đi")
    assert list(household.members) == [household.head_id]
    with pytest.raises(MemberNotFound):
        household.remove_member(child.member_id, "x")


def test_a_second_head_cannot_be_added():
    with pytest.raises(InvalidValue):
        register().add_member(Member.new("Lê Văn C", "head"), "x")


# ---- quarantine -------------------------------------------------------------------

def test_quarantine_expected_end_before_start_is_refused_naming_the_field():
    with pytest.raises(InvalidValue) as refused:
        register().start_quarantine("f1_home_quarantine", "123/QĐ-UBND", date(2021, 7, 10), date(2021, 7, 9), "x")
    assert refused.value.field == "expected_end_on"


def test_quarantine_covers_its_days_until_it_ends():
    household = register()
    episode = household.start_quarantine("f0_home_treatment", "12/QĐ", date(2021, 7, 1), date(2021, 7, 14), "x")
    assert household.in_quarantine_on(date(2021, 7, 1)) and household.in_quarantine_on(date(2021, 7, 14))
    assert not household.in_quarantine_on(date(2021, 6, 30))
    with pytest.raises(InvalidValue) as refused:
        household.end_quarantine(episode.episode_id, date(2021, 6, 30), "x")
    assert refused.value.field == "ended_on"
    household.end_quarantine(episode.episode_id, date(2021, 7, 7), "x")
    assert household.in_quarantine_on(date(2021, 7, 7)) and not household.in_quarantine_on(date(2021, 7, 8))
    with pytest.raises(EpisodeAlreadyEnded):
        household.end_quarantine(episode.episode_id, date(2021, 7, 8), "x")


def test_one_decision_is_recorded_once_and_unknown_episodes_are_not_found():
    household = register()
    household.start_quarantine("lockdown_area", "5/QĐ", date(2021, 7, 1), date(2021, 7, 14), "x")
    with pytest.raises(DecisionAlreadyRecorded):
        household.start_quarantine("lockdown_area", "5/QĐ", date(2021, 7, 1), date(2021, 7, 14), "x")
    with pytest.raises(EpisodeNotFound):
        household.end_quarantine(Member.new("x", "other").member_id, date(2021, 7, 2), "x")


def test_published_events_carry_nothing_personal():
    household = register(members=[Member.new("Trần Thị Bình", "spouse", 1980, "001180000002", pregnant=True)])
    household.start_quarantine("f0_home_treatment", "9/QĐ", date(2021, 7, 1), date(2021, 7, 14), "x")
    household.correct("x", phone="0987654321", head_name="Nguyễn Văn Ân", poverty_status="near_poor")
    events = household.collect_events()
    contracts = [to_contract(e) for e in events]
    assert all(contract is not None for contract in contracts)
    payload = orjson.dumps([c.model_dump(mode="json") for c in contracts]).decode()
    for personal in ("Nguyễn", "Trần", "001070000001", "001180000002", "0912345678", "0987654321", "f0_", "9/QĐ"):
        assert personal not in payload
    assert [c.source_version for c in contracts] == [1, 2, 3]
    assert to_contract(events[0]).event_id == contracts[0].event_id  # derived from (id, version): stable
    assert len({c.event_id for c in contracts}) == 3


def test_a_correction_of_names_only_is_not_published():
    household = register()
    household.collect_events()
    household.correct("x", head_name="Nguyễn Văn Ân", phone="0987654321")
    assert to_contract(household.collect_events()[0]) is None


# ---- merging ----------------------------------------------------------------------

def test_merge_records_both_sides_and_refuses_further_commands_on_the_merged():
    survivor, duplicate = register(), register("001070000002")
    duplicate.merge_into(survivor, "cán bộ A", "trùng")
    assert duplicate.merged_into == survivor.id
    assert survivor.merged_from == [duplicate.id]
    with pytest.raises(HouseholdMergedAway) as refused:
        duplicate.correct("x", village="Thôn Tây")
    assert refused.value.details["survivor_id"] == str(survivor.id)
    with pytest.raises(HouseholdMergedAway):
        duplicate.merge_into(survivor, "x")
    with pytest.raises(CannotMerge):
        survivor.merge_into(survivor, "x")


# ---- once-only head CCCD, in the store -----------------------------------------------

def test_the_store_refuses_a_second_claim_of_a_head_cccd(app):
    first, second = register(), register(name="Người khác")
    app.save(first, HeadCitizenId.claim("001070000001", app.claim_secret, first.id, "a"))
    with pytest.raises(IntegrityError):  # no lookup before: the unique key decides
        app.save(second, HeadCitizenId.claim("001070000001", app.claim_secret, second.id, "b"))
    assert app.get_or_none(second.id) is None  # nothing of the loser was stored



def test_a_claim_id_does_not_give_away_the_cccd_without_the_key():
    """Claim ids are stored in clear: without the secret, trying every CCCD finds nothing."""
    cccd = "001070000001"
    assert HeadCitizenId.id_for(cccd, b"one key") == HeadCitizenId.id_for(cccd, b"one key")
    assert HeadCitizenId.id_for(cccd, b"one key") != HeadCitizenId.id_for(cccd, b"another key")
    assert HeadCitizenId.id_for(cccd, b"one key") != uuid5(NAMESPACE, f"head-cccd:{cccd}")

def test_registering_a_registered_head_conflicts_with_the_existing_household(app):
    first = app.register("a", head=Member.new("Nguyễn Văn An", "head", 1970, "001070000001"), members=[],
                         commune_code=WARD, village="Thôn Đông", address="", phone=None, poverty_status="none",
                         legal_basis=BASIS)
    with pytest.raises(HeadAlreadyRegistered) as refused:
        app.register("b", head=Member.new("Nguyen Van An", "head", 1970, "001070000001"), members=[],
                     commune_code=WARD, village="Thôn Tây", address="", phone=None, poverty_status="none",
                     legal_basis=BASIS)
    assert refused.value.status_code == 409
    assert refused.value.details["household"]["id"] == str(first.id)


def test_a_batch_with_one_registered_head_saves_the_others(app):
    existing = register()
    app.save_new([existing], "a")
    batch = [register("001070000011"), register(), register("001070000012")]
    assert app.save_new(batch, "a") == [None, existing.id, None]
    assert app.get_or_none(batch[0].id) and app.get_or_none(batch[2].id)
    assert app.get_or_none(batch[1].id) is None


def test_correcting_a_head_cccd_moves_the_claim(app):
    household = register()
    app.save_new([household], "a")
    other = register("001070000009")
    app.save_new([other], "a")
    with pytest.raises(HeadAlreadyRegistered):
        app.correct(household.id, "a", head_cccd="001070000009")
    app.correct(household.id, "a", head_cccd="001070000002")
    assert app.claim_holder("001070000002") == household.id
    assert app.claim_holder("001070000001") is None
    newcomer = register("001070000001", name="Người mới")
    assert app.save_new([newcomer], "a") == [None]  # the freed CCCD can head a household again
    assert app.claim_holder("001070000001") == newcomer.id


def test_a_merged_household_resolves_to_its_survivor(app):
    survivor, duplicate = register(), register("001070000002")
    app.save_new([survivor, duplicate], "a")
    app.merge(survivor.id, duplicate.id, "a", "trùng")
    assert app.resolve(duplicate.id).id == survivor.id
    assert [type(e).__name__ for e in app.history(duplicate.id)] == ["Registered", "MergedInto"]
