"""The lookup read model: rebuildable, exactly once, and the same answers on every query path."""

from datetime import date
from pathlib import Path

import pytest

from services.common.settings import Settings
from services.households import readmodel
from services.households.application import Households
from services.households.domain import LegalBasis, Member
from services.households.fake import Faker, load, write_csv
from services.households.importer import group_rows, check_group, read_rows
from services.households.readmodel import Lookup, fold, lookup_of

BASIS = LegalBasis("public_task", "Chỉ thị 16/CT-TTg")
COMMUNES = ["00070", "00073"]


@pytest.fixture
def app(tmp_path: Path) -> Households:
    application = Households(Settings(service="households", data_dir=tmp_path))
    yield application
    application.close()


def register(app, cccd: str, name: str, commune: str = "00070", village: str = "Thôn Đông", **details):
    return app.register("test", head=Member.new(name, "head", 1970, cccd), members=[], commune_code=commune,
                        village=village, address=details.pop("address", ""), phone=details.pop("phone", None),
                        poverty_status=details.pop("poverty_status", "none"), legal_basis=BASIS)


def ids(result: dict) -> list[str]:
    return [item["id"] for item in result["items"]]


def test_a_deleted_lookup_file_is_rebuilt_with_the_same_answers(app, tmp_path):
    load(app, 300, seed=5, communes=COMMUNES)
    lookup = lookup_of(app)
    lookup.catch_up()
    queries = [{"q": "nguyen"}, {"q": "thi", "commune_code": "00073"}, {"poverty_status": "poor"},
               {"commune_code": "00070", "page": 2}]
    before = [lookup.search(**query) for query in queries]
    lookup.close()
    path = tmp_path / "households" / "lookup.sqlite"
    path.unlink()
    rebuilt = Lookup(app, path)
    assert rebuilt.catch_up() == app.recorder.max_notification_id()
    assert [rebuilt.search(**query) for query in queries] == before


def test_a_failed_batch_leaves_neither_rows_nor_position(app, monkeypatch):
    for i in range(5):
        register(app, f"00107000000{i}", f"Người Số {i}")
    lookup = lookup_of(app)
    real_write, calls = Lookup._write, []

    def failing_write(self, db, household):
        calls.append(household.id)
        if len(calls) == 3:
            raise RuntimeError("disk full")
        real_write(self, db, household)

    monkeypatch.setattr(Lookup, "_write", failing_write)
    with pytest.raises(RuntimeError):
        lookup.catch_up()
    assert lookup.position == 0 and lookup.search()["total"] == 0
    monkeypatch.setattr(Lookup, "_write", real_write)
    assert lookup.catch_up() == 10  # five households, five head claims
    assert lookup.catch_up() == 0
    assert lookup.search(q="nguoi so")["total"] == 5  # each once


def test_a_lookup_ahead_of_its_store_starts_again(app, tmp_path):
    register(app, "001070000001", "Nguyễn Văn An")
    lookup_of(app).catch_up()
    fresh = Households(Settings(service="households", data_dir=tmp_path / "other"))
    try:
        # the old file beside a new, empty store: it must not answer for households it never had
        stale = Lookup(fresh, tmp_path / "households" / "lookup.sqlite")
        assert stale.position == 0 and stale.search(q="nguyen")["total"] == 0
    finally:
        fresh.close()


def test_text_search_in_a_commune_agrees_on_both_paths(app, monkeypatch):
    load(app, 400, seed=9, communes=COMMUNES)
    lookup = lookup_of(app)
    lookup.catch_up()
    queries = [{"q": q, "commune_code": c, "page_size": 100} for q in ("nguyen van", "thi", "th", "so 1", "a b")
               for c in COMMUNES]
    scanned = [lookup.search(**query) for query in queries]
    monkeypatch.setattr(readmodel, "SMALL_COMMUNE", 0)  # force the full-text index
    assert [lookup.search(**query) for query in queries] == scanned
    assert any(result["total"] for result in scanned)


def test_exact_head_names_come_first_and_capped_totals_still_page(app, monkeypatch):
    late = [register(app, f"0010700000{i:02d}", f"Trần Văn Bình {i}") for i in range(5)]
    exact = register(app, "001070000099", "Trần Văn Bình")
    lookup = lookup_of(app)
    lookup.catch_up()
    assert ids(lookup.search(q="tran van binh"))[0] == str(exact.id)
    monkeypatch.setattr(readmodel, "TEXT_COUNT_CAP", 3)
    first, second = (lookup.search(q="tran van", page=p, page_size=2) for p in (1, 2))
    assert (first["total"], first["total_is_exact"]) == (3, False)
    third = lookup.search(q="tran van", page=3, page_size=2)
    assert ids(first) + ids(second) + ids(third) == [str(h.id) for h in [*late, exact]]


def test_filters_combine(app):
    a = register(app, "001070000001", "Nguyễn Văn An", poverty_status="poor", phone="0912345678")
    b = register(app, "001070000002", "Nguyễn Văn Ba", village="Xóm Đình", poverty_status="poor")
    c = register(app, "001070000003", "Nguyễn Văn Ca", commune="00073", poverty_status="poor")
    app.start_quarantine(b.id, "x", kind="f1_home_quarantine", decision_number="1", starts_on=date(2021, 8, 1),
                         expected_end_on=date(2021, 8, 14))
    lookup = lookup_of(app)
    lookup.catch_up()
    assert ids(lookup.search(poverty_status="poor", commune_code="00070")) == [str(a.id), str(b.id)]
    assert ids(lookup.search(poverty_status="poor", village="xom dinh")) == [str(b.id)]
    assert ids(lookup.search(q="nguyen", in_quarantine_on=date(2021, 8, 14))) == [str(b.id)]
    assert ids(lookup.search(q="nguyen", phone="0912345678")) == [str(a.id)]
    assert ids(lookup.search(q="ca", poverty_status="poor")) == [str(c.id)]


def test_fake_households_look_real_and_their_csv_imports_cleanly(tmp_path):
    faker = Faker(seed=1)
    households = list(faker.households(200))
    assert len({h.head["cccd"] for h in households}) == 200
    assert any(fold(h.head["name"]) != h.head["name"].lower() for h in households)  # diacritics
    path = write_csv(tmp_path / "ho.csv", 50, seed=2)
    errors = []
    groups = group_rows(read_rows(path.name, path.read_bytes()), errors)
    checked = [check_group(group, {}, "test") for group in groups]
    assert not errors and len(groups) == 50
    assert all(household is not None and not problems for household, problems in checked)


def test_a_corrected_poverty_status_moves_the_household_between_searches(app):
    household = register(app, "001070000001", "Nguyễn Văn An", poverty_status="poor")
    lookup = lookup_of(app)
    lookup.catch_up()
    assert ids(lookup.search(q="nguyen van an", poverty_status="poor")) == [str(household.id)]
    app.correct(household.id, "x", poverty_status="none")
    lookup.catch_up()
    assert ids(lookup.search(q="nguyen van an", poverty_status="poor")) == []
    assert ids(lookup.search(q="nguyen van an", poverty_status="none")) == [str(household.id)]
    app.correct(household.id, "x", poverty_status="social_protection", head_name="Nguyễn Văn Ân")
    lookup.catch_up()
    assert ids(lookup.search(q="nguyen van an", poverty_status="social_protection")) == [str(household.id)]
    assert ids(lookup.search(q="nguyen van an", poverty_status="none")) == []
