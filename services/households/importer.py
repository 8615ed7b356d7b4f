"""Import households from a spreadsheet (CSV or XLSX): one row per person, grouped by
household_ref. See docs/households-import.md for the columns.

Every row is checked and every problem reported (row, column, message); a household
with any problem is skipped whole. Valid households are saved in batches. Re-importing
a file adds nothing: a head CCCD already registered counts as "already present".
"""

import csv
import io
import threading
import time
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any
from uuid import UUID, uuid4

from services.common.errors import Invalid
from services.households.domain import (FLAGS, Household, LegalBasis, Member, check_birth_year, check_cccd,
                                        check_choice, check_commune, check_phone, check_text, LegalGround)
from services.households.readmodel import fold
from contracts.households import PovertyStatus

BATCH = 500
MAX_ERRORS = 1000
ALIASES = {
    "household_ref": ["ma ho", "ma ho gia dinh", "so ho", "household"],
    "relation": ["quan he", "quan he voi chu ho"],
    "full_name": ["name", "ho ten", "ho va ten"],
    "birth_year": ["nam sinh"],
    "cccd": ["so cccd", "can cuoc", "can cuoc cong dan", "so dinh danh"],
    "phone": ["dien thoai", "so dien thoai", "sdt"],
    "commune_code": ["ma xa", "ma phuong xa", "ma xa phuong"],
    "village": ["thon", "thon to", "thon to dan pho", "to dan pho", "thon xom"],
    "address": ["dia chi"],
    "poverty_status": ["ho ngheo", "dien ho", "phan loai ho"],
    "elderly": ["nguoi cao tuoi", "cao tuoi"],
    "child_under_6": ["tre duoi 6 tuoi", "tre em duoi 6 tuoi", "duoi 6 tuoi"],
    "pregnant": ["mang thai", "phu nu mang thai"],
    "disabled": ["khuyet tat", "nguoi khuyet tat"],
    "chronic_illness": ["benh man tinh", "benh nen"],
    "legal_basis": ["co so phap ly", "can cu phap ly"],
    "legal_reference": ["van ban", "so van ban", "can cu"],
}
HEADERS = {fold(alias): column for column, aliases in ALIASES.items() for alias in [column, *aliases]}
REQUIRED = ("household_ref", "full_name", "cccd", "commune_code", "village")
RELATIONS = {"chu ho": "head", "vo": "spouse", "chong": "spouse", "vo chong": "spouse", "con": "child",
             "con trai": "child", "con gai": "child", "con de": "child", "bo": "parent", "me": "parent",
             "cha": "parent", "bo me": "parent", "chau": "grandchild", "anh": "sibling", "chi": "sibling",
             "em": "sibling", "anh chi em": "sibling", "khac": "other"}
POVERTY = {"": "none", "khong": "none", "binh thuong": "none", "can ngheo": "near_poor", "ho can ngheo": "near_poor",
           "ngheo": "poor", "ho ngheo": "poor", "bao tro xa hoi": "social_protection", "btxh": "social_protection"}
GROUNDS = {"dong y": "consent", "nghia vu phap ly": "legal_obligation", "loi ich song con": "vital_interest",
           "nhiem vu cong": "public_task"}
YES = {"x", "1", "co", "c", "yes", "y", "true"}
NO = {"", "0", "khong", "k", "no", "n", "false"}


@dataclass
class RowError:
    row: int
    column: str
    message: str
    message_en: str


@dataclass
class Group:
    ref: str
    rows: list[tuple[int, dict[str, str]]] = field(default_factory=list)


class FileProblem(Exception):
    def __init__(self, error: RowError):
        super().__init__(error.message_en)
        self.error = error


# ---- reading ----------------------------------------------------------------------

def read_rows(filename: str, data: bytes) -> list[tuple[int, dict[str, str]]]:
    """(row number as the spreadsheet shows it, {column: text}) for each non-empty row."""
    if data[:2] == b"PK" or filename.lower().endswith((".xlsx", ".xlsm")):
        table = _xlsx_table(data)
    else:
        table = _csv_table(data)
    if not table:
        raise FileProblem(RowError(1, "", "Tệp trống", "The file is empty"))
    header, *body = table
    columns = [HEADERS.get(fold(str(h or "")).strip(), None) for h in header]
    missing = [c for c in REQUIRED if c not in columns]
    if missing:
        raise FileProblem(RowError(1, ", ".join(missing), "Thiếu cột bắt buộc: " + ", ".join(missing),
                                   "Missing required columns: " + ", ".join(missing)))
    rows = []
    for number, cells in enumerate(body, start=2):
        values = {c: _cell_text(c, v) for c, v in zip(columns, cells) if c is not None}
        if any(values.values()):
            rows.append((number, values))
    return rows


def _csv_table(data: bytes) -> list[list[str]]:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = data.decode("cp1258", errors="replace")  # Windows Vietnamese
    first = text.split("\n", 1)[0]
    delimiter = max([",", ";", "\t"], key=first.count)
    return list(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter))


def _xlsx_table(data: bytes) -> list[list[Any]]:
    from openpyxl import load_workbook

    try:
        workbook = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except Exception as error:  # noqa: BLE001 - any unreadable workbook is the user's file problem
        raise FileProblem(RowError(1, "", "Không đọc được tệp Excel (.xlsx)",
                                   f"Cannot read the Excel (.xlsx) file: {type(error).__name__}")) from None
    try:
        return [list(row) for row in workbook.worksheets[0].iter_rows(values_only=True)]
    finally:
        workbook.close()


def _cell_text(column: str, value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, int) and column == "cccd":
        return f"{value:012d}" if value < 10**11 else str(value)  # Excel drops the leading zero
    if isinstance(value, int) and column == "phone":
        return f"0{value}" if len(str(value)) in (9, 10) else str(value)
    if isinstance(value, datetime | date):
        return value.isoformat()[:10]
    return str(value).strip()


# ---- checking ---------------------------------------------------------------------

def group_rows(rows: list[tuple[int, dict[str, str]]], errors: list[RowError]) -> list[Group]:
    groups: dict[str, Group] = {}
    for number, values in rows:
        ref = values.get("household_ref", "")
        if not ref:
            errors.append(RowError(number, "household_ref", "Thiếu mã hộ", "household_ref is empty"))
            continue
        groups.setdefault(ref, Group(ref)).rows.append((number, values))
    return list(groups.values())


def check_group(group: Group, defaults: dict[str, str], actor: str) -> tuple[Household | None, list[RowError]]:
    """The household a group describes, or the errors that stop it."""
    errors: list[RowError] = []
    heads = [r for r in group.rows if _relation(r[1].get("relation", "")) == "head"]
    head_row = heads[0] if heads else group.rows[0]
    for number, _ in heads[1:]:
        errors.append(RowError(number, "relation", "Mỗi hộ chỉ có một chủ hộ", "A household has exactly one head"))
    people: list[Member] = []
    for number, values in [head_row, *(r for r in group.rows if r is not head_row)]:
        is_head = number == head_row[0]
        member = _member(number, values, is_head, errors)
        if member is not None:
            people.append(member)
    number, values = head_row
    details = {}
    for column, check in (("commune_code", check_commune), ("village", lambda v: check_text(v, "village", max_length=100)),
                          ("address", lambda v: check_text(v, "address", required=False, max_length=300)),
                          ("phone", lambda v: check_phone(v) if v else None),
                          ("poverty_status", lambda v: check_choice(PovertyStatus, _code(POVERTY, v), "x"))):
        details[column] = _checked(number, column, values.get(column, ""), check, errors)
    ground = values.get("legal_basis") or defaults.get("legal_basis", "")
    reference = values.get("legal_reference") or defaults.get("legal_reference", "")
    ground = _checked(number, "legal_basis", ground,
                      lambda v: check_choice(LegalGround, _code(GROUNDS, v), "x"), errors)
    reference = _checked(number, "legal_reference", reference, lambda v: check_text(v, "x", max_length=300), errors)
    if errors:
        return None, errors
    try:
        household = Household.register(head=people[0], members=people[1:], legal_basis=LegalBasis(ground, reference),
                                       actor=actor, **details)
    except Invalid as error:
        column = error.field.rsplit(".", 1)[-1]
        return None, [RowError(number, column, error.message_vi, error.message_en)]
    return household, []


def _member(number: int, values: dict[str, str], is_head: bool, errors: list[RowError]) -> Member | None:
    before = len(errors)
    relation = "head" if is_head else (_relation(values.get("relation", "")) or "other")
    if relation not in {"head", "spouse", "child", "parent", "grandchild", "sibling", "other"}:
        errors.append(RowError(number, "relation", "Quan hệ với chủ hộ không hợp lệ", "Unknown relation to the head"))
    name = _checked(number, "full_name", values.get("full_name", ""), lambda v: check_text(v, "x", max_length=100), errors)
    year = _checked(number, "birth_year", values.get("birth_year", ""), lambda v: check_birth_year(v) if v else None, errors)
    cccd = values.get("cccd", "")
    if is_head and not cccd:
        errors.append(RowError(number, "cccd", "Chủ hộ phải có số CCCD", "The head's CCCD is required"))
    cccd = _checked(number, "cccd", cccd, lambda v: check_cccd(v) if v else None, errors)
    flags = {}
    for flag in FLAGS:
        text = values.get(flag, "").strip()
        raw = fold(text) if fold(text) else text
        if raw not in YES | NO:
            errors.append(RowError(number, flag, "Ghi 'x' nếu có, để trống nếu không", "Use 'x' for yes, blank for no"))
        flags[flag] = raw in YES
    if len(errors) > before:
        return None
    return Member(member_id=uuid4(), name=name, relation=relation, birth_year=year, cccd=cccd, **flags)


def _relation(text: str) -> str:
    return _code(RELATIONS, text)


def _code(words: dict[str, str], text: str) -> str:
    """A Vietnamese word from the list, or the English code itself ("Near poor" -> near_poor)."""
    key = fold(text)
    return words.get(key, key.replace(" ", "_"))


def _checked(number: int, column: str, value: str, check: Any, errors: list[RowError]) -> Any:
    try:
        return check(value)
    except Invalid as error:
        errors.append(RowError(number, column, error.message_vi, error.message_en))
        return None


# ---- running ----------------------------------------------------------------------

@dataclass
class ImportJob:
    filename: str
    actor: str
    defaults: dict[str, str]
    id: UUID = field(default_factory=uuid4)
    status: str = "queued"
    rows: int = 0
    households: int = 0
    checked: int = 0
    processed: int = 0
    created: int = 0
    already_present: int = 0
    skipped: int = 0
    errors: list[RowError] = field(default_factory=list)
    error_count: int = 0
    started_at: float = field(default_factory=time.time)
    finished_at: float | None = None

    def report(self) -> dict[str, Any]:
        return {
            "job_id": str(self.id), "filename": self.filename, "status": self.status, "rows": self.rows,
            "households": self.households, "checked": self.checked, "processed": self.processed, "created": self.created,
            "already_present": self.already_present, "skipped": self.skipped, "error_count": self.error_count,
            "errors": [vars(e) for e in self.errors],
            "started_at": datetime.fromtimestamp(self.started_at).astimezone().isoformat(),
            "finished_at": datetime.fromtimestamp(self.finished_at).astimezone().isoformat()
            if self.finished_at else None,
        }

    def _error(self, error: RowError) -> None:
        self.error_count += 1
        if len(self.errors) < MAX_ERRORS:
            self.errors.append(error)

    def run(self, app: Any, data: bytes, stopping: threading.Event | None = None) -> None:
        try:
            self.status = "validating"
            try:
                rows = read_rows(self.filename, data)
            except FileProblem as problem:
                self._error(problem.error)
                self.status = "failed"
                return
            self.rows = len(rows)
            errors: list[RowError] = []
            groups = group_rows(rows, errors)
            self.households = len(groups)
            valid: list[Household] = []
            heads: dict[str, int] = {}
            for group in groups:
                household, group_errors = check_group(group, self.defaults, self.actor)
                if household is not None and household.head.cccd in heads:
                    household, group_errors = None, [RowError(
                        group.rows[0][0], "cccd", f"CCCD chủ hộ trùng với hộ ở dòng {heads[household.head.cccd]}",
                        f"Same head CCCD as the household on row {heads[household.head.cccd]}")]
                if household is None:
                    self.skipped += 1
                    errors += group_errors
                else:
                    heads[household.head.cccd] = group.rows[0][0]
                    valid.append(household)
                self.checked += 1
            for error in sorted(errors, key=lambda e: e.row):
                self._error(error)
            self.processed = self.skipped
            self.status = "saving"
            for start in range(0, len(valid), BATCH):
                if stopping is not None and stopping.is_set():
                    self.status = "interrupted"
                    self._error(RowError(0, "", "Dịch vụ dừng giữa chừng; hãy nhập lại tệp (không tạo trùng)",
                                         "The service stopped midway; import the file again (nothing is added twice)"))
                    return
                chunk = valid[start:start + BATCH]
                outcomes = app.save_new(chunk, self.actor)
                self.already_present += sum(o is not None for o in outcomes)
                self.created += sum(o is None for o in outcomes)
                self.processed += len(chunk)
            self.status = "done"
        except Exception as error:  # noqa: BLE001 - report, never crash the worker silently
            self.status = "failed"
            self._error(RowError(0, "", "Lỗi hệ thống khi nhập; có thể nhập lại tệp (không tạo trùng)",
                                 f"Import stopped by a system error ({type(error).__name__}); re-importing is safe"))
        finally:
            self.finished_at = time.time()


class ImportJobs:
    """Jobs of this process (in memory: after a restart, re-import the file; it is idempotent)."""

    def __init__(self, keep: int = 100):
        self._jobs: dict[UUID, ImportJob] = {}
        self._keep = keep
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._stopping = threading.Event()

    def start(self, job: ImportJob, app: Any, data: bytes, wait: bool) -> ImportJob:
        with self._lock:
            self._jobs[job.id] = job
            for old in list(self._jobs)[:-self._keep]:
                del self._jobs[old]
        if wait:
            job.run(app, data, self._stopping)
        else:
            thread = threading.Thread(target=job.run, args=(app, data, self._stopping), name=f"import-{job.id}",
                                      daemon=True)
            with self._lock:
                self._threads = [t for t in self._threads if t.is_alive()] + [thread]
            thread.start()
        return job

    def stop(self, timeout: float = 60) -> None:
        """The service is closing: running jobs stop after their current batch; wait for them."""
        self._stopping.set()
        for thread in list(self._threads):
            thread.join(timeout)

    def get(self, job_id: UUID) -> ImportJob | None:
        return self._jobs.get(job_id)
