"""relief-audit: kiểm tra sổ phân phối cứu trợ / check the relief distribution ledger.

Exit codes: 0 everything holds, 1 a check failed (the first bad entry is named), 2 the source
or an argument could not be read.
"""

import os
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Annotated

import orjson
import typer
from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from services.ledger.audit import receipt as receipts
from services.ledger.audit import report as reports
from services.ledger.audit.sources import SourceError, export_chunks, export_lines, relief_events
from services.ledger.audit.verify import ReliefFacts, Verifier
from services.ledger.export_format import unb64

app = typer.Typer(add_completion=False, no_args_is_help=True, help=__doc__)
out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)

Source = Annotated[str, typer.Option("--source", "-s", help="export.jsonl, http(s)://ledger-host (GET /ledger/export) or nats://host:port (stream LEDGER)")]
Relief = Annotated[str | None, typer.Option("--relief", help="nats://host:port: relief's events (stream RELIEF)")]
ReliefFile = Annotated[str | None, typer.Option("--relief-events", help='JSON lines {"type": EventType, "data": payload}')]
PublicKey = Annotated[str | None, typer.Option("--public-key", help="pinned Ed25519 public key: base64, or a file holding it")]


def _public_key(value: str | None) -> bytes | None:
    if value is None:
        return None
    text = Path(value).read_text().strip() if os.path.isfile(value) else value.strip()
    try:
        raw = unb64(text)
    except ValueError:
        raw = b""
    if len(raw) != 32:
        raise SourceError("khoá công khai phải là 32 byte base64 / public key must be 32 bytes, base64")
    return raw


def _with_progress(chunks: Iterable[bytes], source: str, show: bool) -> Iterator[bytes]:
    if not show:
        yield from chunks
        return
    total = os.path.getsize(source) if os.path.isfile(source) else None
    columns = [SpinnerColumn(), TextColumn("Đang kiểm / verifying"), BarColumn(), DownloadColumn(),
               TimeElapsedColumn()]
    with Progress(*columns, console=err, transient=True) as progress:
        task = progress.add_task("verify", total=total)
        for chunk in chunks:
            yield chunk
            progress.update(task, advance=len(chunk))


def _facts(relief: str | None, relief_file: str | None) -> ReliefFacts | None:
    return ReliefFacts(relief_events(relief, relief_file)) if relief or relief_file else None


def _fail_source(error: Exception) -> None:
    err.print(f"[red]LỖI NGUỒN / SOURCE ERROR[/]: {error}")
    raise typer.Exit(2)


@app.command()
def verify(
    source: Source,
    relief: Relief = None,
    relief_events_file: ReliefFile = None,
    public_key: PublicKey = None,
    checkpoint: Annotated[list[Path] | None, typer.Option("--checkpoint", help="a checkpoint (or receipt) seen earlier: the log must extend it")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print the outcome as JSON")] = False,
    progress: Annotated[bool, typer.Option(help="progress bar on stderr")] = True,
) -> None:
    """Kiểm tra toàn bộ sổ / recompute leaves, roots, signatures and the business rules."""
    try:
        pinned = [_pinned(path) for path in checkpoint or []]
        verifier = Verifier(_facts(relief, relief_events_file), _public_key(public_key), pinned)
        outcome = verifier.run_chunks(_with_progress(export_chunks(source), source, progress and err.is_terminal))
    except (SourceError, OSError, ValueError) as error:
        _fail_source(error)
    if as_json:
        out.print_json(orjson.dumps(outcome.as_dict()).decode())
    else:
        for warning in outcome.warnings:
            err.print(f"[yellow]CẢNH BÁO / WARNING[/]: {warning}")
        if outcome.failure:
            out.print(outcome.failure.line())
        else:
            scope = "đầy đủ / full proof" if outcome.full_proof else "chỉ quy tắc / rules only (no hashes from this source)"
            out.print(f"OK entries={outcome.entries} checkpoints={outcome.checkpoints} root={outcome.root_hash} | "
                      f"ĐẠT: mọi kiểm tra đều đúng | PASSED: every check holds ({scope})")
    raise typer.Exit(0 if outcome.failure is None else 1)


def _pinned(path: Path) -> dict:
    data = orjson.loads(path.read_bytes())
    return data["checkpoint"] if "checkpoint" in data else data


@app.command()
def report(
    source: Source,
    relief: Relief = None,
    relief_events_file: ReliefFile = None,
    fmt: Annotated[reports.Format, typer.Option("--format", "-f")] = reports.Format.text,
    output: Annotated[Path | None, typer.Option("--out", "-o", help="write here instead of stdout")] = None,
    min_seconds: Annotated[float, typer.Option(help="fastest plausible time (s) between one volunteer's deliveries at two households")] = 60.0,
    price: Annotated[list[str] | None, typer.Option(help="ITEM=VND: value goods (repeatable); default values cash only")] = None,
) -> None:
    """Báo cáo công khai / coverage, fairness, timing and unusual patterns."""
    try:
        events = relief_events(relief, relief_events_file) if relief or relief_events_file else []
        prices = {code: int(vnd) for code, vnd in (p.split("=", 1) for p in price or [])}
        figures = reports.compute(export_lines(source), events, min_seconds=min_seconds, prices=prices)
    except (SourceError, OSError, ValueError) as error:
        _fail_source(error)
    text = reports.render(figures, fmt)
    if output:
        output.write_text(text, encoding="utf-8")
        err.print(f"Đã ghi / written: {output}")
    else:
        sys.stdout.write(text)


@app.command("verify-receipt")
def verify_receipt(
    receipt: Annotated[Path, typer.Argument(help="receipt.json (biên nhận)")],
    public_key: PublicKey = None,
) -> None:
    """Kiểm tra biên nhận của một hộ, không cần mạng / check one receipt offline."""
    try:
        data = orjson.loads(receipt.read_bytes())
        failure = receipts.check(data, _public_key(public_key))
    except (SourceError, OSError, ValueError) as error:
        _fail_source(error)
    if failure:
        out.print(failure.line())
        raise typer.Exit(1)
    out.print(f"OK seq={data['entry']['seq']} tree_size={data['checkpoint']['tree_size']} | "
              f"ĐẠT: biên nhận nằm trong sổ đã ký | PASSED: the entry is in the signed log")


@app.command()
def consistency(
    ledger: Annotated[str, typer.Option("--ledger", help="http(s)://ledger-host: GET /ledger/consistency")],
    checkpoint: Annotated[Path, typer.Option("--checkpoint", help="a checkpoint (or receipt) seen earlier")],
    public_key: PublicKey = None,
) -> None:
    """Sổ hiện tại có nối tiếp điểm kiểm cũ? / does the ledger's latest checkpoint extend one seen
    earlier? (a consistency proof, without downloading the export)"""
    try:
        old = _pinned(checkpoint)
        served = receipts.fetch(ledger, "/ledger/consistency", {"from": old["tree_size"]})
        # without a pinned key, the ledger's own key will do only if it signed the old checkpoint
        key = _public_key(public_key or receipts.fetch(ledger, "/ledger/public-key")["public_key"])
        failure = receipts.check_consistency(old, served, key)
    except (SourceError, OSError, ValueError, KeyError) as error:
        _fail_source(error)
    if failure:
        out.print(failure.line())
        raise typer.Exit(1)
    out.print(f"OK from={old['tree_size']} to={served['to']} | ĐẠT: sổ nối tiếp điểm kiểm cũ | "
              f"PASSED: the latest checkpoint extends the one seen earlier")


def main() -> None:
    app()


if __name__ == "__main__":
    main()
