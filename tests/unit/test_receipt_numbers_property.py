"""Property: for any interleaving of donations to several campaigns (from several threads at once,
with idempotent retries of the same key, some of them racing each other), each campaign's receipt
numbers are exactly 1..n: no gap, no repeat, one per distinct donation; a retry answers with the
first receipt; the receipt book, the donations and the totals agree.

Conservation of stock under any sequence of operations is already a property test:
tests/unit/test_relief_funds_domain.py::test_conservation_holds_after_any_sequence_of_operations."""

import tempfile
import threading
from collections import defaultdict
from datetime import date, timedelta
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.common.settings import Settings
from services.relief.application import Relief

TODAY = date.today()
CAMPAIGNS = 3

# (campaign, idempotency key or None, amount); a key's body is fixed by (campaign, key), so a repeat is a retry
donation = st.tuples(st.integers(0, CAMPAIGNS - 1), st.one_of(st.none(), st.integers(0, 5)), st.integers(1, 10**9))


def open_campaign(app: Relief, index: int):
    return app.open_campaign("Lan", level="commune", unit_code=("00070", "00073", "00004")[index], name=f"Chung tay {index}",
                             purpose="Hỗ trợ hộ cách ly", legal_basis="decree_93_2021", call_document="Thư kêu gọi 01",
                             opens_on=TODAY - timedelta(days=30), closes_on=TODAY + timedelta(days=30),
                             accounts=[{"kind": "treasury", "number": f"3713.0.{index}", "bank_name": None}])


def amount_of(key: int | None, amount: int) -> int:
    return amount if key is None else 1_000 * (key + 1)


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(donations=st.lists(donation, min_size=1, max_size=24), threads=st.integers(1, 4))
def test_receipt_numbers_are_gapless_per_campaign_whatever_the_interleaving(donations, threads):
    with tempfile.TemporaryDirectory() as folder:
        app = Relief(Settings(service="relief", data_dir=Path(folder)))
        try:
            campaigns = [open_campaign(app, i).id for i in range(CAMPAIGNS)]
            results: list[tuple[int, int | None, int, int, bool]] = []  # campaign, key, amount, receipt, created
            lock = threading.Lock()
            start = threading.Barrier(threads)
            errors: list[BaseException] = []

            def run(share):
                start.wait()
                for campaign, key, amount in share:
                    try:
                        recorded, created = app.record_donation(
                            campaigns[campaign], "Lan", idempotency_key=None if key is None else f"key-{key}",
                            donor={"kind": "individual", "name": "Nguyễn Văn A", "contact": None,
                                   "public_consent": False},
                            received_on=TODAY, channel="cash", cash_vnd=amount_of(key, amount), goods=[],
                            earmark=None, funding_source=None, note=None)
                    except BaseException as error:  # noqa: BLE001 - reported below
                        errors.append(error)
                        return
                    with lock:
                        results.append((campaign, key, amount_of(key, amount), recorded.receipt_number, created))

            shares = [donations[i::threads] for i in range(threads)]
            workers = [threading.Thread(target=run, args=(share,)) for share in shares]
            for worker in workers:
                worker.start()
            for worker in workers:
                worker.join()
            assert not errors, errors

            for index, campaign_id in enumerate(campaigns):
                mine = [r for r in results if r[0] == index]
                created = [r for r in mine if r[4]]
                distinct = sum(1 for r in mine if r[1] is None) + len({r[1] for r in mine if r[1] is not None})
                numbers = sorted(r[3] for r in created)
                assert numbers == list(range(1, distinct + 1))  # 1..n, no gap, no repeat
                first_of_key: dict[int, int] = {}
                for _, key, _, receipt, _ in created:
                    if key is not None:
                        assert key not in first_of_key, "a key created two donations"
                        first_of_key[key] = receipt
                for _, key, _, receipt, _ in mine:
                    if key is not None:
                        assert receipt == first_of_key[key]  # a retry answers with the first receipt
                book = app.receipt_book(campaign_id)
                assert book.last_number == distinct
                stored, total = app.donations(campaign_id, 0, 100)
                assert total == distinct and [d.receipt_number for d in stored] == list(range(1, distinct + 1))
                amounts = defaultdict(int)
                for _, _, amount, receipt, _ in created:
                    amounts[receipt] = amount
                assert {d.receipt_number: d.cash_vnd for d in stored} == dict(amounts)
                assert book.totals["donations"]["cash_vnd"] == sum(amounts.values())
        finally:
            app.close()
