"""Household lookup latency at 100k and 1M households, and CSV import rate.

Households are registered through the application (events in the store), the lookup
read model is projected from the notification log, then queries of the kinds commune
staff type are timed one by one: a head's name without diacritics, a name prefix, a
phone, a CCCD, and commune + village + poverty filters. Target: p99 <= 10 ms at 1M.
"""

import random
import tempfile
import time
from pathlib import Path

from fastapi.testclient import TestClient

from bench.common import percentiles, write
from services.common.auth import token_for
from services.common.settings import Settings
from services.households.application import Households
from services.households.fake import Faker, load, write_csv
from services.households.main import create
from services.households.readmodel import fold, lookup_of

TARGET_P99_MS = 10.0
QUERIES_PER_KIND = 400


def query_mix(n: int, seed: int) -> dict[str, list[dict]]:
    """Queries about households that exist: the first ones the same Faker produced."""
    sample = list(Faker(seed).households(min(n, 4 * QUERIES_PER_KIND)))
    rng = random.Random(1)
    picks = [rng.choice(sample) for _ in range(QUERIES_PER_KIND)]
    return {
        "full_name_no_diacritics": [{"q": fold(h.head["name"])} for h in picks],
        "name_prefix": [{"q": " ".join(fold(h.head["name"]).split()[:2])} for h in picks],
        "phone": [{"phone": h.phone} for h in picks if h.phone],
        "cccd_in_q": [{"q": h.head["cccd"]} for h in picks],
        "commune_village_poverty": [{"commune_code": h.commune_code, "village": h.village,
                                     "poverty_status": h.poverty_status} for h in picks],
        "name_in_commune": [{"q": fold(h.head["name"]).split()[-1], "commune_code": h.commune_code}
                            for h in picks],
    }


def lookup_latency(n: int, workdir: Path, seed: int = 7) -> dict:
    app = Households(Settings.from_env("households", {"DATA_DIR": str(workdir)}))
    started = time.perf_counter()
    load(app, n, seed=seed, batch=5000)
    registered = time.perf_counter() - started
    lookup = lookup_of(app)
    started = time.perf_counter()
    lookup.catch_up()
    projected = time.perf_counter() - started
    kinds, everything = {}, []
    for kind, queries in query_mix(n, seed).items():
        samples = []
        for params in queries:
            t0 = time.perf_counter()
            found = lookup.search(**params)
            samples.append((time.perf_counter() - t0) * 1000)
            assert found["total"] >= 1, (kind, params)  # every query is about a real household
        kinds[kind] = percentiles(samples)
        everything += samples
    app.close()
    overall = percentiles(everything)
    return {"households": n, "register_per_s": round(n / registered), "project_per_s": round(n / projected),
            "overall": overall, "by_kind": kinds, "target_p99_ms": TARGET_P99_MS,
            "meets_target": overall["p99_ms"] <= TARGET_P99_MS}


def import_rate(n: int, workdir: Path) -> dict:
    csv_path = write_csv(workdir / "import.csv", n, seed=11)
    settings = Settings.from_env("households", {"DATA_DIR": str(workdir / "var"), "NATS_URL": "nats://127.0.0.1:1"})
    admin = {"Authorization": f"Bearer {token_for(settings.keys_dir)}"}  # imports need a signed-in user
    with TestClient(create(settings), headers=admin) as client:
        data = csv_path.read_bytes()
        started = time.perf_counter()
        first = client.post("/households/import?wait=true", files={"file": ("import.csv", data, "text/csv")})
        elapsed = time.perf_counter() - started
        started = time.perf_counter()
        again = client.post("/households/import?wait=true", files={"file": ("import.csv", data, "text/csv")})
        again_elapsed = time.perf_counter() - started
    report, repeat = first.json(), again.json()
    assert report["created"] == n and repeat["created"] == 0, (report, repeat)
    return {"households": n, "rows": report["rows"], "seconds": round(elapsed, 2),
            "rows_per_s": round(report["rows"] / elapsed), "households_per_s": round(n / elapsed),
            "reimport_seconds": round(again_elapsed, 2), "reimport_created": repeat["created"]}


def main(sizes: list[int], import_households: int) -> None:
    results = []
    for n in sizes:
        with tempfile.TemporaryDirectory() as tmp:
            results.append(lookup_latency(n, Path(tmp)))
        print(f"lookup at {n}: {results[-1]['overall']}")
    write("households_lookup", {"benchmark": "households lookup latency", "runs": results})
    with tempfile.TemporaryDirectory() as tmp:
        write("households_import", {"benchmark": "households CSV import", **import_rate(import_households, Path(tmp))})
