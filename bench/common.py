"""What every benchmark records beside its figures."""

import json
import os
import platform
import statistics
import time
from pathlib import Path

import orjson

RESULTS = Path(__file__).parent / "results"


def machine() -> dict:
    return {"python": platform.python_version(), "platform": platform.platform(),
            "cpus": os.cpu_count(), "when": time.strftime("%Y-%m-%dT%H:%M:%S%z")}


def percentiles(samples_ms: list[float]) -> dict[str, float]:
    ordered = sorted(samples_ms)
    cuts = statistics.quantiles(ordered, n=100, method="inclusive")
    return {"n": len(ordered), "p50_ms": round(cuts[49], 3), "p90_ms": round(cuts[89], 3),
            "p99_ms": round(cuts[98], 3), "max_ms": round(ordered[-1], 3)}


def write(name: str, result: dict) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_bytes(orjson.dumps({"machine": machine(), **result}, option=orjson.OPT_INDENT_2))
    print(json.dumps(result, indent=2, ensure_ascii=False))
    return path
