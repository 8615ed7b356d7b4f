"""Write the JSON Schema of every contract event to contracts/schemas/, or check the files.

    python -m contracts.export            # (re)write contracts/schemas/<Event>.v<N>.json
    python -m contracts.export --check    # exit 1 if the files differ from the code

The committed files are the contract consumers rely on. Writing refuses to overwrite a
file with a breaking change (see contracts.compat): bump the event's schema version
instead, which writes a new file beside the old one.
"""

import argparse
import json
import sys
from pathlib import Path

from contracts.base import ContractEvent, registry
from contracts.compat import breaking_changes

SCHEMAS_DIR = Path(__file__).parent / "schemas"
JSON_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"  # what pydantic emits


def version_of(cls: type[ContractEvent]) -> int:
    return cls.model_fields["schema_version"].default


def file_name(cls: type[ContractEvent]) -> str:
    return f"{cls.type_name()}.v{version_of(cls)}.json"


def schema_of(cls: type[ContractEvent]) -> dict:
    """The event's JSON Schema as consumers validate it, with its subject."""
    return {"$schema": JSON_SCHEMA_DIALECT, **cls.model_json_schema(), "x-subject": cls.subject}


def render(schema: dict) -> str:
    return json.dumps(schema, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def expected() -> dict[str, str]:
    """File name -> content, for every registered event."""
    return {file_name(cls): render(schema_of(cls)) for cls in registry.values()}


def check(directory: Path = SCHEMAS_DIR) -> list[str]:
    """What differs between the files in `directory` and the code; empty when in step."""
    wanted = expected()
    problems = []
    for name, text in sorted(wanted.items()):
        path = directory / name
        if not path.exists():
            problems.append(f"{name}: missing (run python -m contracts.export)")
        elif path.read_text(encoding="utf-8") != text:
            problems.append(f"{name}: differs from the code (run python -m contracts.export)")
    for path in sorted(directory.glob("*.json")):
        if path.name not in wanted:
            problems.append(f"{path.name}: no registered event has this name and version "
                            "(keep publishing it, or delete the file to retire it on purpose)")
    return problems


def write(directory: Path = SCHEMAS_DIR) -> tuple[list[str], list[str]]:
    """Write every schema; returns (written file names, refusals for breaking changes)."""
    directory.mkdir(parents=True, exist_ok=True)
    written, refused = [], []
    for name, text in sorted(expected().items()):
        path = directory / name
        old = path.read_text(encoding="utf-8") if path.exists() else None
        if old == text:
            continue
        if old is not None:
            breaks = breaking_changes(json.loads(old), json.loads(text))
            if breaks:
                refused += [f"{name}: {b}" for b in breaks]
                continue
        path.write_text(text, encoding="utf-8")
        written.append(name)
    return written, refused


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="relief-contracts", description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only compare; exit 1 on any difference")
    parser.add_argument("--dir", type=Path, default=SCHEMAS_DIR, help="schema folder")
    args = parser.parse_args(argv)
    if args.check:
        problems = check(args.dir)
        for problem in problems:
            print(problem, file=sys.stderr)
        return 1 if problems else 0
    written, refused = write(args.dir)
    for name in written:
        print(f"wrote {args.dir / name}")
    for line in refused:
        print(f"refused (breaking; bump schema_version and subject): {line}", file=sys.stderr)
    return 1 if refused else 0


if __name__ == "__main__":
    sys.exit(main())
