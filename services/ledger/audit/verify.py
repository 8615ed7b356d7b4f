"""`relief-audit verify`: recompute the ledger from its export and stop at the first bad entry.

One streaming pass in O(log n) memory for the tree (plus one small record per open delivery):
every leaf from the canonical entry, the root at each checkpoint, each checkpoint's signature,
sequence numbers, then the business rules. Successive checkpoints are consistent when each
root is recomputed from one and the same stream of leaves; a checkpoint the auditor kept from
earlier (`pinned`) must match the prefix of the same size.
"""

import sys
from bisect import bisect_right
from concurrent.futures import ThreadPoolExecutor
from collections.abc import Iterable
from dataclasses import dataclass, field
from hashlib import sha256

import orjson

from contracts.relief import DonationReceived, EntitlementCancelled, EntitlementIssued
from services.ledger.export_format import FORMAT, checkpoint_signature_valid, iso_utc, unb64
from services.ledger.audit.sources import joined, paused_gc, whole_lines
from services.ledger.merkle import CompactRange

try:  # built by `pip install` where a C compiler and OpenSSL's headers are at hand (setup.py)
    from services.ledger.audit import _fastscan
except ImportError:  # the same checks in Python alone, slower
    _fastscan = None

SORT_KEYS = orjson.OPT_SORT_KEYS
ENTRY_PREFIX = b'{"kind":"entry","seq":'
LEAF_SUFFIX = b',"leaf_hash":"'


def delivery_key(household, items, cash) -> bytes:
    """What a reversal must repeat of its open delivery, kept as a digest: a million open
    deliveries held as their JSON cost more in memory traffic than all the parsing."""
    return sha256(orjson.dumps((household, items, cash))).digest()


@dataclass(frozen=True)
class Failure:
    """The first thing that does not hold. `seq` names the entry (None: the export as a whole)."""

    seq: int | None
    rule: str
    vi: str
    en: str

    def line(self) -> str:
        return f"FAIL seq={'-' if self.seq is None else self.seq} rule={self.rule} | {self.vi} | {self.en}"


@dataclass
class Outcome:
    entries: int = 0
    checkpoints: int = 0
    root_hash: str = ""
    full_proof: bool = True
    failure: Failure | None = None
    warnings: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        failure = self.failure
        return {"ok": failure is None, "entries": self.entries, "checkpoints": self.checkpoints,
                "root_hash": self.root_hash, "full_proof": self.full_proof, "warnings": self.warnings,
                "failure": None if failure is None else {"seq": failure.seq, "rule": failure.rule,
                                                         "vi": failure.vi, "en": failure.en}}


class Entitlement:
    __slots__ = ("round_id", "household_id", "commune_code", "village", "campaign_id", "items", "cash_vnd",
                 "earmark_household", "earmark_commune", "cancelled_at", "eligible_since", "issued_on")

    def __init__(self, event: EntitlementIssued, earmark) -> None:
        self.round_id, self.household_id = str(event.round_id), str(event.household_id)
        self.commune_code, self.village, self.campaign_id = event.commune_code, event.village, str(event.campaign_id)
        self.items = {line.item_code: line.quantity for line in event.items}
        self.cash_vnd = event.cash_vnd
        self.earmark_household = str(earmark.household_id) if earmark and earmark.household_id else None
        self.earmark_commune = earmark.commune_code if earmark else None
        self.cancelled_at: str | None = None
        self.eligible_since, self.issued_on = event.eligible_since, event.issued_on


class ReliefFacts:
    """What relief published: entitlements by id, and stock received per (campaign, item)."""

    def __init__(self, events: Iterable) -> None:
        with paused_gc():
            self._learn(list(events))

    def _learn(self, events: list) -> None:
        earmarks = {str(e.source_id): e.earmark for e in events if isinstance(e, DonationReceived)}
        self.entitlements: dict[str, Entitlement] = {}
        self.stock: dict[tuple[str, str], int] = {}
        self.campaigns_with_donations: set[str] = set()
        by_round_household: dict[tuple[str, str], str] = {}
        issued_version: dict[str, int] = {}
        cancels: list[EntitlementCancelled] = []
        for event in events:
            if isinstance(event, EntitlementIssued):
                ent_id = str(event.source_id)
                if event.source_version >= issued_version.get(ent_id, 0):  # a re-issue replaces the package
                    earmark = earmarks.get(str(event.earmarked_donation_id)) if event.earmarked_donation_id else None
                    self.entitlements[ent_id] = Entitlement(event, earmark)
                    issued_version[ent_id] = event.source_version
                    by_round_household[(str(event.round_id), str(event.household_id))] = ent_id
            elif isinstance(event, DonationReceived):
                campaign = str(event.campaign_id)
                self.campaigns_with_donations.add(campaign)
                for line in event.goods:
                    self.stock[(campaign, line.item_code)] = self.stock.get((campaign, line.item_code), 0) + line.quantity
                self.stock[(campaign, "cash_vnd")] = self.stock.get((campaign, "cash_vnd"), 0) + event.cash_vnd
            elif isinstance(event, EntitlementCancelled):
                cancels.append(event)
        for event in cancels:  # the streams need not interleave in order: versions decide
            ent_id = str(event.source_id)
            if ent_id not in self.entitlements:
                ent_id = by_round_household.get((str(event.round_id), str(event.household_id)), ent_id)
            ent = self.entitlements.get(ent_id)
            if ent is not None and event.source_version > issued_version[ent_id]:
                ent.cancelled_at = iso_utc(event.occurred_at)


class Verifier:
    def __init__(self, relief: ReliefFacts | None = None, public_key: bytes | None = None,
                 pinned: Iterable[dict] = (), compiled: bool = True) -> None:
        self.relief = relief
        self.pinned_key = public_key
        self.public_key: bytes | None = None
        self.pinned = {cp["tree_size"]: cp for cp in pinned}
        self.pinned_sizes = sorted(size for size in self.pinned if isinstance(size, int))
        self.compiled = compiled
        self.hook = None if relief is None else self._on_delivery
        self.compact = CompactRange()
        self.outcome = Outcome()
        self.header_seen = False
        # entitlement -> (seq, delivery_key of household, items, cash) of its open delivery
        self.active: dict[str, tuple[int, bytes]] = {}
        self.reversed: dict[int, int] = {}  # reversed seq -> reversing seq
        self.delivered: dict[tuple[str, str], int] = {}  # (campaign, item or cash_vnd) -> net delivered
        self.last_checkpoint_size = 0

    def run(self, lines: Iterable[bytes]) -> Outcome:
        """Every line of an export, one bytes object each, with or without its newline."""
        return self.run_chunks(joined(lines))

    def run_chunks(self, chunks: Iterable[bytes]) -> Outcome:
        """The export as byte chunks cut anywhere (a file read in blocks, an HTTP body). With the
        compiled scanner, one thread hashes the next buffer while this one applies the last."""
        with paused_gc():
            if _fastscan is None or not self.compiled:
                any(self._lines(buffer, end) for buffer, end in whole_lines(chunks))
            else:
                with ThreadPoolExecutor(1, thread_name_prefix="verify-hash") as hashing:
                    self._pipelined(whole_lines(chunks), hashing)
        return self.finish()

    def _pipelined(self, buffers: Iterable[tuple[bytes, int]], hashing: ThreadPoolExecutor) -> None:
        ahead = None
        for buffer, end in buffers:
            job = (buffer, end, hashing.submit(_fastscan.prepare, buffer, end))
            if ahead is not None and self._lines(ahead[0], ahead[1], ahead[2].result()):
                job[2].cancel()
                return
            ahead = job
        if ahead is not None:
            self._lines(ahead[0], ahead[1], ahead[2].result())

    def _lines(self, buffer: bytes, end: int, prepared=None) -> bool:
        """The whole lines of buffer[:end]; True once something fails. The compiled scanner takes
        every line it can, and gives back the first it does not take, which Python then judges."""
        if prepared is None:
            return self._python_lines(buffer, end)
        i, count, compact = 0, len(prepared), self.compact
        while i < count:
            if self.header_seen and self.outcome.full_proof:
                i, compact.size, failed = _fastscan.apply(prepared, i, compact._peaks, compact.size,  # noqa: SLF001
                                                          self.active, self.hook, self._scan_limit())
                if failed or i >= count:
                    return failed
            start, stop = prepared.span(i)
            i += 1
            line = buffer[start:stop]
            if line.strip() and self._line(line) is not None:
                return True
        return False

    def _python_lines(self, buffer: bytes, end: int) -> bool:
        pos = 0
        while pos < end:
            eol = buffer.index(b"\n", pos) + 1
            line, pos = buffer[pos:eol], eol
            if line.strip() and self._line(line) is not None:
                return True
        return False

    def _scan_limit(self) -> int:
        """The scanner stops before an entry completing a pinned checkpoint: Python checks it."""
        later = bisect_right(self.pinned_sizes, self.compact.size)
        return self.pinned_sizes[later] - 1 if later < len(self.pinned_sizes) else sys.maxsize

    def _on_delivery(self, seq: int, body: bytes) -> Failure | None:
        """The relief rules of a delivery the scanner took (it needs the parsed entry)."""
        entry = orjson.loads(body)
        return self._relief_rules(seq, entry) or self._count(seq, entry, 1)

    def _line(self, line: bytes) -> Failure | None:
        """One line: the common one (a valid delivery of a full export) is taken here, where it
        can only be accepted; anything else goes through feed(), which names what is wrong."""
        taken = self._fast_entry(line) if self.fast else None
        if taken is None:
            return self.feed(line)
        seq, digest, entry = taken
        ent_id = entry.get("entitlement_id")
        if not (entry.get("kind") == "delivery" and type(ent_id) is str and ent_id not in self.active
                and "household_id" in entry and "items" in entry and "cash_vnd" in entry):
            return self.feed(line)
        self.compact.append(digest)
        if self.relief is not None and (failure := self._relief_rules(seq, entry)):
            return failure
        self.active[ent_id] = (seq, delivery_key(entry["household_id"], entry["items"], entry["cash_vnd"]))
        return self._count(seq, entry, 1)

    @property
    def fast(self) -> bool:
        return self.header_seen and self.outcome.full_proof and not self.pinned

    def _fast_entry(self, line: bytes) -> tuple[int, bytes, dict] | None:
        """The common line, an entry as the ledger writes it (its canonical bytes verbatim): hash
        those bytes as they are and parse only them, no re-serialising. Anything else: None."""
        if not line.startswith(ENTRY_PREFIX):
            return None
        mark, end = line.find(b',"entry":', 22), line.rfind(LEAF_SUFFIX)
        expected = self.compact.size + 1
        if mark < 0 or end < mark or line[22:mark] != b"%d" % expected or line[end + 78:].strip() != b'"}':
            return None
        body = line[mark + 9:end]
        digest = sha256(b"\x00" + body).digest()
        if digest.hex().encode() != line[end + 14:end + 78]:
            return None  # perhaps non-canonical bytes of a true entry: the parsing path decides
        try:
            entry = orjson.loads(body)
        except orjson.JSONDecodeError:
            return None
        return (expected, digest, entry) if type(entry) is dict and entry.get("seq") == expected else None

    def feed(self, line: bytes) -> Failure | None:
        if self.outcome.failure is not None:
            return self.outcome.failure
        try:
            record = orjson.loads(line)
        except orjson.JSONDecodeError:
            return self._fail(self.compact.size + 1, "bad_line", "dòng không đọc được", "unreadable line")
        return self.take(record)

    def take(self, record) -> Failure | None:
        """One parsed export line."""
        kind = record.get("kind") if type(record) is dict else None
        if kind == "entry":
            return self._entry(record)
        if kind == "checkpoint":
            return self._checkpoint(record)
        if kind == "header":
            return self._header(record)
        if kind == "refusal":  # a refused duplicate: outside the tree, context for the report only
            return None
        return self._fail(self.compact.size + 1, "bad_line", f"loại dòng lạ: {kind}", f"unknown line kind: {kind}")

    def finish(self) -> Outcome:
        out = self.outcome
        out.entries = self.compact.size
        out.root_hash = self.compact.root().hex()
        if out.failure is None:
            if not self.header_seen:
                self._fail(None, "header", "thiếu dòng đầu (header)", "export has no header line")
            elif missing := sorted(size for size in self.pinned if size > self.compact.size):
                self._fail(missing[0], "pinned_checkpoint",
                           f"sổ ngắn hơn điểm kiểm đã ký trước đó ({missing[0]} mục)",
                           f"log is shorter than a checkpoint signed earlier (tree size {missing[0]})")
        if out.failure is not None:
            pass
        elif out.full_proof and out.checkpoints == 0:
            out.warnings.append("no signed checkpoint in the export / không có điểm kiểm nào được ký")
        elif out.full_proof and self.last_checkpoint_size < self.compact.size:
            out.warnings.append(f"entries {self.last_checkpoint_size + 1}..{self.compact.size} are not yet covered "
                                f"by a signed checkpoint / chưa có điểm kiểm ký cho các mục này")
        return out

    def _fail(self, seq, rule: str, vi: str, en: str) -> Failure:
        self.outcome.failure = Failure(seq, rule, vi, en)
        return self.outcome.failure

    def _header(self, record: dict) -> Failure | None:
        if self.header_seen or self.compact.size:
            return self._fail(self.compact.size + 1, "header", "dòng đầu lặp lại", "header repeated inside the log")
        self.header_seen = True
        if record.get("format") == "nats-events":
            self.outcome.full_proof = False
            return None
        if record.get("format") != FORMAT:
            return self._fail(None, "header", f"định dạng lạ: {record.get('format')}", f"unknown format: {record.get('format')}")
        try:
            self.public_key = unb64(record["public_key"])
        except (KeyError, ValueError, TypeError):
            return self._fail(None, "public_key", "khoá công khai không hợp lệ", "invalid public key in header")
        if self.pinned_key is not None and self.public_key != self.pinned_key:
            return self._fail(None, "public_key", "khoá công khai khác khoá đã ghim",
                              "header public key differs from the pinned key")
        for cp in self.pinned.values():
            if not checkpoint_signature_valid(cp, self.public_key):
                return self._fail(cp.get("tree_size"), "pinned_checkpoint",
                                  "điểm kiểm đã ghim không được ký bằng khoá của sổ",
                                  "the pinned checkpoint is not signed by this log's key")
        return None

    def _entry(self, record: dict) -> Failure | None:
        expected = self.compact.size + 1
        seq = record.get("seq")
        if not self.header_seen:
            return self._fail(expected, "header", "mục xuất hiện trước dòng đầu", "entry before the header")
        if seq != expected:
            return self._fail(expected, "seq", f"thiếu hoặc sai thứ tự: cần mục {expected}, gặp {seq}",
                              f"missing or out of order: expected entry {expected}, found {seq}")
        entry = record.get("entry")
        if not isinstance(entry, dict) or entry.get("seq") != seq:
            return self._fail(seq, "seq", "số thứ tự trong mục không khớp", "entry's own seq differs from its line")
        digest = sha256(b"\x00" + orjson.dumps(entry, option=SORT_KEYS)).digest()
        if self.outcome.full_proof:
            if digest.hex() != record.get("leaf_hash"):
                return self._fail(seq, "leaf_hash", "nội dung mục không khớp mã băm lá (mục đã bị sửa)",
                                  "entry bytes do not match its leaf hash (entry was altered)")
        self.compact.append(digest)
        if self.pinned and seq in self.pinned and self.pinned[seq]["root_hash"] != self.compact.root().hex():
            return self._fail(seq, "pinned_checkpoint", f"các mục 1..{seq} khác điểm kiểm đã ghim",
                              f"entries 1..{seq} differ from the pinned checkpoint (the log was rewritten)")
        try:
            return self._rules(seq, entry)
        except (KeyError, TypeError, ValueError) as error:
            return self._fail(seq, "bad_entry", f"mục thiếu trường: {error}", f"malformed entry: {error!r}")

    def _rules(self, seq: int, entry: dict) -> Failure | None:
        ent_id, kind = entry["entitlement_id"], entry["kind"]
        household, items, cash = entry["household_id"], entry["items"], entry["cash_vnd"]
        open_delivery = self.active.get(ent_id)
        if kind == "delivery":
            if open_delivery is not None:
                return self._fail(seq, "double_delivery",
                                  f"suất {ent_id} đã được phát ở mục {open_delivery[0]}",
                                  f"entitlement {ent_id} already delivered at entry {open_delivery[0]}")
            if self.relief is not None and (failure := self._entitlement_rules(seq, entry)):
                return failure
            self.active[ent_id] = (seq, delivery_key(household, items, cash))
            return self._count(seq, entry, 1)
        if kind != "reversal":
            return self._fail(seq, "bad_entry", f"loại mục lạ: {kind}", f"unknown entry kind: {kind}")
        target = entry["reverses_seq"]
        if open_delivery is None or open_delivery[0] != target:
            if target >= seq:
                why = (f"đảo mục {target} chưa tồn tại", f"reverses entry {target}, which does not exist yet")
            elif target in self.reversed:
                why = (f"mục {target} đã bị đảo ở mục {self.reversed[target]}",
                       f"entry {target} was already reversed at entry {self.reversed[target]}")
            else:
                why = (f"mục {target} không phải lần phát đang có hiệu lực của suất {ent_id}",
                       f"entry {target} is not the open delivery of entitlement {ent_id}")
            return self._fail(seq, "reversal_target", *why)
        if open_delivery[1] != delivery_key(household, items, cash):
            return self._fail(seq, "reversal_mismatch", f"bút toán đảo không lặp lại đúng mục {target}",
                              f"reversal does not repeat entry {target}'s household, items and cash")
        del self.active[ent_id]
        self.reversed[target] = seq
        return self._count(seq, entry, -1)

    def _relief_rules(self, seq: int, entry: dict) -> Failure | None:
        try:
            return self._entitlement_rules(seq, entry)
        except (KeyError, TypeError, ValueError) as error:
            return self._fail(seq, "bad_entry", f"mục thiếu trường: {error}", f"malformed entry: {error!r}")

    def _entitlement_rules(self, seq: int, entry: dict) -> Failure | None:
        ent_id = entry["entitlement_id"]
        ent = self.relief.entitlements.get(ent_id)
        if ent is None:
            return self._fail(seq, "unknown_entitlement", f"suất {ent_id} không có trong các suất đã cấp",
                              f"entitlement {ent_id} was never issued")
        if ent.cancelled_at is not None and ent.cancelled_at <= entry["recorded_at"]:
            return self._fail(seq, "cancelled_entitlement", f"suất {ent_id} đã bị huỷ lúc {ent.cancelled_at}",
                              f"entitlement {ent_id} was cancelled at {ent.cancelled_at}")
        household, commune = entry["household_id"], entry["commune_code"]
        if (ent.earmark_household and household != ent.earmark_household) or (
                ent.earmark_commune and commune != ent.earmark_commune):
            named = ent.earmark_household or ent.earmark_commune
            return self._fail(seq, "earmark", f"quà có địa chỉ dành cho {named}, đã phát cho hộ {household}",
                              f"earmarked for {named}, delivered to household {household} ({commune})")
        if (household, entry["round_id"], commune) != (ent.household_id, ent.round_id, ent.commune_code):
            return self._fail(seq, "entitlement_mismatch", "hộ, đợt hoặc xã khác với suất đã cấp",
                              "household, round or commune differs from the issued entitlement")
        for line in entry["items"]:
            allowed = ent.items.get(line["item_code"])
            if allowed is None or line["quantity"] > allowed:
                return self._fail(seq, "over_entitlement",
                                  f"{line['item_code']}: phát {line['quantity']}, suất chỉ có {allowed or 0}",
                                  f"{line['item_code']}: delivered {line['quantity']}, entitled to {allowed or 0}")
        if entry["cash_vnd"] > ent.cash_vnd:
            return self._fail(seq, "over_entitlement", f"tiền mặt {entry['cash_vnd']} vượt suất {ent.cash_vnd}",
                              f"cash {entry['cash_vnd']} VND above the entitled {ent.cash_vnd}")
        return None

    def _count(self, seq: int, entry: dict, sign: int) -> Failure | None:
        relief = self.relief
        if relief is None:
            return None
        ent = relief.entitlements.get(entry["entitlement_id"])
        if ent is None or ent.campaign_id not in relief.campaigns_with_donations:
            return None
        lines = [(line["item_code"], line["quantity"]) for line in entry["items"]]
        lines.append(("cash_vnd", entry["cash_vnd"]))
        for code, quantity in lines:
            key = (ent.campaign_id, code)
            total = self.delivered[key] = self.delivered.get(key, 0) + sign * quantity
            if sign > 0 and quantity and total > relief.stock.get(key, 0):
                return self._fail(seq, "stock", f"{code}: tổng đã phát {total} vượt số đã nhận {relief.stock.get(key, 0)}",
                                  f"{code}: {total} delivered in total, only {relief.stock.get(key, 0)} received")
        return None

    def _checkpoint(self, record: dict) -> Failure | None:
        size = self.compact.size
        tree_size = record.get("tree_size")
        if not self.outcome.full_proof:
            return None
        if tree_size != size:
            return self._fail(tree_size if isinstance(tree_size, int) else size, "checkpoint_position",
                              f"điểm kiểm cỡ {tree_size} đứng sau mục {size}",
                              f"checkpoint for tree size {tree_size} stands after entry {size}")
        if self.public_key is None or not checkpoint_signature_valid(record, self.public_key):
            return self._fail(size, "checkpoint_signature", f"chữ ký điểm kiểm cỡ {size} không hợp lệ",
                              f"checkpoint signature for tree size {size} does not verify with the log's key")
        root = self.compact.root().hex()
        if record.get("root_hash") != root:
            first = self.last_checkpoint_size + 1
            return self._fail(size, "checkpoint_root",
                              f"gốc đã ký ở cỡ {size} không khớp: một mục trong {first}..{size} đã bị sửa",
                              f"signed root at tree size {size} does not match: an entry in {first}..{size} "
                              f"was altered (1..{first - 1} matched the previous checkpoint)")
        self.outcome.checkpoints += 1
        self.last_checkpoint_size = size
        return None

