"""`make bench` / `python -m bench [--only households,ledger,audit] [options]`.

Every benchmark writes bench/results/<name>.json (figures, targets, machine)."""

import argparse

BENCHMARKS = ("households", "ledger", "audit")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--only", default=",".join(BENCHMARKS), help="which benchmarks, comma separated")
    parser.add_argument("--sizes", default="100000,1000000", help="households registered for lookup latency")
    parser.add_argument("--import-households", type=int, default=20000, help="households in the CSV import run")
    parser.add_argument("--deliveries", type=int, default=10000, help="deliveries in the ledger ingest run")
    parser.add_argument("--audit-entries", type=int, default=1_000_000, help="ledger entries for the verify rate")
    args = parser.parse_args()
    chosen = set(args.only.split(","))
    if "households" in chosen:
        from bench import households
        households.main([int(s) for s in args.sizes.split(",")], args.import_households)
    if "ledger" in chosen:
        from bench import ledger_ingest
        ledger_ingest.main(args.deliveries)
    if "audit" in chosen:
        from bench import audit_verify
        audit_verify.main(args.audit_entries)


if __name__ == "__main__":
    main()
