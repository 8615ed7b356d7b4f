"""Where the auditor reads from, and what each source can prove.

- an export file or `GET /ledger/export` (http/https): the full proof. Every entry's canonical
  bytes, leaf hashes and signed checkpoints, so leaves, roots, signatures and business rules are
  all recomputed.
- `nats://host:port` (stream LEDGER, DistributionRecorded/Reversed): the events carry no
  recorded_at or evidence hash, so leaves cannot be recomputed and there are no checkpoints;
  only sequence and business rules are checked. Use it to compare the bus with the export.
- relief events, `--relief nats://...` (stream RELIEF) or `--relief-events file.jsonl` with one
  `{"type": "<EventType>", "data": {<contract payload>}}` per line: entitlements, cancellations
  and donations, needed for the rules that look outside the ledger.
"""

import asyncio
import gc
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

import orjson

from contracts.base import ContractEvent, registry
from contracts.ledger import DistributionRecorded, DistributionReversed


class SourceError(Exception):
    """The source could not be read (not a verification failure)."""


@contextmanager
def paused_gc():
    """Parsed events and lines make no reference cycles, but a million of them trigger full
    collections that cost more than the parsing itself (measured: 5x on relief events). Whatever
    survives is frozen, or the first collection after would walk it all anyway; refcounting still
    frees it."""
    collecting = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        if collecting:
            gc.enable()


def export_lines(source: str) -> Iterator[bytes]:
    """Raw JSON lines of an export (file or http(s) URL), blank lines skipped."""
    if source.startswith(("http://", "https://")):
        yield from _http_lines(source)
    elif source.startswith("nats://"):
        yield from _ledger_from_nats(source)
    else:
        with _export_file(source).open("rb") as file:
            for line in file:
                if line.strip():
                    yield line


CHUNK_BYTES = 1 << 22


def whole_lines(chunks: Iterable[bytes]) -> Iterator[tuple[bytes, int]]:
    """(buffer, end) with buffer[:end] whole lines, from chunks cut anywhere; a last line
    without its newline gets one."""
    pending: list[bytes] = []
    for chunk in chunks:
        cut = chunk.rfind(b"\n") + 1
        if not cut:
            pending.append(chunk)
            continue
        buffer = b"".join((*pending, chunk)) if pending else chunk
        cut += len(buffer) - len(chunk)
        pending = [buffer[cut:]]
        yield buffer, cut
    if rest := b"".join(pending):
        yield rest + b"\n", len(rest) + 1


def joined(lines: Iterable[bytes], size: int = CHUNK_BYTES) -> Iterator[bytes]:
    """Lines, with or without their newline, joined into chunks of about `size` bytes."""
    batch, held = [], 0
    for line in lines:
        batch.append(line if line.endswith(b"\n") else line + b"\n")
        held += len(line)
        if held >= size:
            yield b"".join(batch)
            batch, held = [], 0
    if batch:
        yield b"".join(batch)


def export_chunks(source: str, size: int = CHUNK_BYTES) -> Iterator[bytes]:
    """The export as byte chunks cut anywhere (what Verifier.run_chunks reads): a file in blocks,
    an HTTP body as it arrives, the LEDGER stream's entries as lines."""
    if source.startswith(("http://", "https://")):
        yield from _http_body(source)
    elif source.startswith("nats://"):
        yield from (line + b"\n" for line in _ledger_from_nats(source))
    else:
        with _export_file(source).open("rb") as file:
            yield from iter(lambda: file.read(size), b"")


def _export_file(source: str) -> Path:
    path = Path(source)
    if not path.is_file():
        raise SourceError(f"không tìm thấy tệp / no such file: {source}")
    return path


def _http_lines(url: str) -> Iterator[bytes]:
    for buffer, end in whole_lines(_http_body(url)):
        yield from (line for line in buffer[:end].splitlines() if line.strip())


def _http_body(url: str) -> Iterator[bytes]:
    import httpx

    if "/ledger/export" not in url:
        url = url.rstrip("/") + "/ledger/export"
    try:
        with httpx.stream("GET", url, timeout=60) as response:
            response.raise_for_status()
            yield from response.iter_bytes()
    except httpx.HTTPError as error:
        raise SourceError(f"không đọc được / cannot read {url}: {error}") from error


def _ledger_from_nats(url: str) -> Iterator[bytes]:
    """Entries rebuilt from LEDGER events, as export lines without a header or checkpoints.
    The same entry_seq twice (a re-publish after the duplicate window) is kept once."""
    events = asyncio.run(read_stream(url, "LEDGER"))
    by_seq: dict[int, ContractEvent] = {}
    for event in events:
        if isinstance(event, (DistributionRecorded, DistributionReversed)):
            by_seq.setdefault(event.entry_seq, event)
    yield orjson.dumps({"kind": "header", "format": "nats-events", "public_key": None, "key_id": None})
    for seq in sorted(by_seq):
        yield orjson.dumps({"kind": "entry", "seq": seq, "entry": _entry_from_event(by_seq[seq]),
                            "leaf_hash": by_seq[seq].leaf_hash})


def _entry_from_event(event: DistributionRecorded | DistributionReversed) -> dict:
    data = event.model_dump(mode="json")
    entry = {"seq": event.entry_seq, "entitlement_id": str(event.source_id), "round_id": data["round_id"],
             "household_id": data["household_id"], "commune_code": event.commune_code,
             "items": data["items"], "cash_vnd": event.cash_vnd}
    if isinstance(event, DistributionReversed):
        entry |= {"kind": "reversal", "reverses_seq": event.reverses_seq, "reason": data["reason"],
                  "reversed_by": event.reversed_by, "recorded_at": data["occurred_at"]}
    else:
        entry |= {"kind": "delivery", "volunteer_id": event.volunteer_id, "device_id": event.device_id,
                  "delivered_at": data["delivered_at"], "recorded_at": data["occurred_at"]}
    return entry


def relief_events(relief: str | None = None, relief_file: str | None = None) -> list[ContractEvent]:
    """Relief's contract events, from a NATS URL (stream RELIEF) or a JSON-lines file."""
    events: list[ContractEvent] = []
    if relief:
        events += asyncio.run(read_stream(relief, "RELIEF"))
    if relief_file:
        path = Path(relief_file)
        if not path.is_file():
            raise SourceError(f"không tìm thấy tệp / no such file: {relief_file}")
        with paused_gc(), path.open("rb") as file:
            events += _relief_lines(file, relief_file)
    return events


def _relief_lines(file, name: str) -> list[ContractEvent]:
    events = []
    for number, line in enumerate(file, 1):
        if not line.strip():
            continue
        try:
            record = orjson.loads(line)
            events.append(registry[record["type"]].model_validate(record["data"]))
        except Exception as error:  # noqa: BLE001 - any bad line is the file's fault
            raise SourceError(f"{name}:{number}: sự kiện không hợp lệ / bad event: {error}") from error
    return events


async def read_stream(url: str, stream: str, idle_seconds: float = 2.0) -> list[ContractEvent]:
    """Every message of `stream` from the start, decoded by its Event-Type header; unknown
    types are skipped (a newer producer). Stops at the stream's last sequence."""
    import nats
    from nats.js.api import DeliverPolicy

    try:
        nc = await nats.connect(servers=url.split(","), connect_timeout=5, max_reconnect_attempts=1)
    except Exception as error:  # noqa: BLE001
        raise SourceError(f"không kết nối được NATS / cannot reach NATS at {url}: {error}") from error
    events: list[ContractEvent] = []
    try:
        js = nc.jetstream()
        info = await js.stream_info(stream)
        if info.state.messages == 0:
            return events
        last = info.state.last_seq
        sub = await js.subscribe(f"{stream.lower()}.>", stream=stream, ordered_consumer=True,
                                 deliver_policy=DeliverPolicy.ALL)
        while True:
            msg = await sub.next_msg(timeout=idle_seconds)
            kind = (msg.headers or {}).get("Event-Type")
            if kind in registry:
                events.append(registry[kind].model_validate_json(msg.data))
            if msg.metadata.sequence.stream >= last:
                break
        await sub.unsubscribe()
    except SourceError:
        raise
    except Exception as error:  # noqa: BLE001
        raise SourceError(f"không đọc được luồng / cannot read stream {stream}: {error!r}") from error
    finally:
        await nc.close()
    return events
