"""HTTP API of the households service. Writes answer from the aggregate; reads of the
lookup model first catch it up, so a client always reads its own writes."""

from datetime import date
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Depends, File, Query, Request, Response, UploadFile, status
from fastapi.concurrency import run_in_threadpool

from contracts.households import PovertyStatus
from services.common.auth import Principal, Role, require
from services.common.errors import Invalid, NotFound
from services.common.web import application
from services.households.access import (Reason, Reader, Staff, check_import, register_conflict, scope, view_for,
                                        writable)
from services.households.access_log import reads, record_read
from services.households.application import Households
from services.households.deliveries import history_id
from services.households.deliveries import view as delivery_view
from services.households.domain import LegalBasis, Member
from services.households.importer import ImportJob
from services.households.readmodel import Lookup, lookup_of
from services.households.schemas import (Cccd, CommuneCode, CorrectionIn, DismissIn, EndQuarantineIn,
                                         MemberCorrectionIn, MemberIn, MergeIn, Phone, QuarantineIn, RegistrationIn)
from services.households.views import history_entry, jsonable, masked, redacted

router = APIRouter(prefix="/households", tags=["households"])
MAX_UPLOAD = 50 * 1024 * 1024

App = Annotated[Households, Depends(application)]
CATCH_UP_ON_READ = 10_000  # more behind than this (a rebuild): answer now, the background loop goes on


def current_lookup(app: App) -> Lookup:
    lookup = lookup_of(app)
    lookup.catch_up(limit=CATCH_UP_ON_READ)
    return lookup


Current = Annotated[Lookup, Depends(current_lookup)]


def _member(data: MemberIn | dict, prefix: str = "") -> Member:
    fields = data if isinstance(data, dict) else data.model_dump(mode="json")
    return Member.new(prefix=prefix, **fields)


@router.post("", status_code=status.HTTP_201_CREATED, summary="Register a household (409 if its head is registered)")
def register(body: RegistrationIn, app: App, who: Staff) -> dict:
    who.check_commune(body.commune_code, "nơi đăng ký hộ", "where the household is registered")
    head = Member.new(relation="head", prefix="head.", **body.head.model_dump(mode="json"))
    members = [_member(m, f"members.{i}.") for i, m in enumerate(body.members)]
    with register_conflict(who):
        household = app.register(
            who.username, head=head, members=members, commune_code=body.commune_code, village=body.village,
            address=body.address, phone=body.phone, poverty_status=body.poverty_status.value,
            legal_basis=LegalBasis(body.legal_basis.ground.value, body.legal_basis.reference))
    return view_for(who, household)


@router.get("", summary="Look households up: name without diacritics, phone, CCCD, place, quarantine, poverty "
                        "(only in your communes; CCCD and phone masked)")
def search(lookup: Current, who: Reader,
           q: Annotated[str | None, Query(max_length=200, description="Names, village, address; or a phone/CCCD")] = None,
           phone: Phone | None = None, cccd: Cccd | None = None, commune_code: CommuneCode | None = None,
           village: Annotated[str | None, Query(max_length=100)] = None,
           in_quarantine_on: date | None = None, poverty_status: PovertyStatus | None = None,
           page: Annotated[int, Query(ge=1, le=10_000)] = 1,
           page_size: Annotated[int, Query(ge=1, le=100)] = 20) -> dict:
    commune_code, communes = scope(who, commune_code)
    found = lookup.search(q=q, phone=phone, cccd=cccd, commune_code=commune_code, village=village,
                          in_quarantine_on=in_quarantine_on,
                          poverty_status=poverty_status.value if poverty_status else None,
                          page=page, page_size=page_size, communes=communes)
    return {**found, "items": [_listed(who, item) for item in found["items"]]}


def _listed(who: Principal, item: dict) -> dict:
    return masked(item) if who.role in (Role.admin, Role.commune_staff) else redacted(item)


@router.get("/duplicates", summary="Suspected duplicate pairs (same head name in the same village, or same phone)")
def duplicates(lookup: Current, who: Annotated[Principal, Depends(require(Role.commune_staff, Role.auditor))],
               commune_code: CommuneCode | None = None,
               page: Annotated[int, Query(ge=1, le=10_000)] = 1,
               page_size: Annotated[int, Query(ge=1, le=100)] = 20) -> dict:
    commune_code, communes = scope(who, commune_code)
    found = lookup.duplicates(commune_code=commune_code, page=page, page_size=page_size, communes=communes)
    items = [{**pair, "households": [_listed(who, h) for h in pair["households"]]} for pair in found["items"]]
    return {**found, "items": items}


@router.post("/duplicates/dismiss", summary="Reviewed: the pair are two real households")
def dismiss(body: DismissIn, app: App, who: Staff) -> dict:
    first, second = body.household_ids
    for household_id in (first, second):
        writable(who, app, household_id)
    app.dismiss_duplicate(first, second, who.username, body.reason)
    return {"dismissed": [str(first), str(second)]}


@router.post("/merge", summary="Merge a reviewed duplicate into the household that stays")
def merge(body: MergeIn, app: App, who: Staff) -> dict:
    for household_id in (body.survivor_id, body.merged_id):
        writable(who, app, household_id)
    return view_for(who, app.merge(body.survivor_id, body.merged_id, who.username, body.reason))


@router.post("/import", summary="Import a CSV or XLSX file (202 + job; ?wait=true for small files)",
             status_code=status.HTTP_202_ACCEPTED)
async def import_file(request: Request, response: Response, app: App, who: Staff,
                      file: Annotated[UploadFile, File(description="CSV (UTF-8) or XLSX, one row per person")],
                      wait: bool = False,
                      legal_basis: Annotated[str | None, Query(description="Default for rows without one")] = None,
                      legal_reference: Annotated[str | None, Query(max_length=300)] = None) -> dict:
    data = await file.read(MAX_UPLOAD + 1)
    if len(data) > MAX_UPLOAD:
        raise Invalid("file", "Tệp quá lớn (tối đa 50 MB); hãy chia nhỏ", "File too large (50 MB at most); split it")
    await run_in_threadpool(check_import, who, file.filename or "upload", data)
    defaults = {k: v for k, v in {"legal_basis": legal_basis, "legal_reference": legal_reference}.items() if v}
    job = ImportJob(filename=file.filename or "upload", actor=who.username, defaults=defaults)
    jobs = request.app.state.imports
    if wait:
        await run_in_threadpool(jobs.start, job, app, data, True)
        response.status_code = status.HTTP_200_OK
    else:
        jobs.start(job, app, data, False)
        response.headers["Location"] = f"/households/import/{job.id}"
    return job.report()


@router.get("/import/{job_id}", summary="Progress and row errors of an import")
def import_status(job_id: UUID, request: Request, who: Staff) -> dict:
    job = request.app.state.imports.get(job_id)
    if job is None or (job.actor != who.username and who.role != Role.admin):
        raise NotFound("Không tìm thấy lượt nhập", "Import job not found", job_id=str(job_id))
    return job.report()


@router.get("/{household_id}", summary="One household; a merged id answers with the household it merged into")
def get_household(household_id: UUID, app: App, who: Reader, reason: Reason) -> dict:
    household = app.resolve(household_id)
    who.check_commune(household.commune_code)
    record_read(app, household.id, who, "detail", reason)
    return view_for(who, household, resolved_from=household_id if household.id != household_id else None)


@router.get("/{household_id}/history", summary="Who changed what, and when")
def history(household_id: UUID, app: App, reason: Reason,
            who: Annotated[Principal, Depends(require(Role.commune_staff, Role.auditor))]) -> dict:
    events = app.history(household_id)
    who.check_commune(app.household(household_id).commune_code)
    survivor = app.resolve(household_id)
    record_read(app, household_id, who, "history", reason)
    entries = [history_entry(e) for e in events]
    return {"household_id": str(household_id), "events": entries if _full(who) else redacted(entries),
            "resolved_to": str(survivor.id) if survivor.id != household_id else None}


def _full(who: Principal) -> bool:
    return who.role in (Role.admin, Role.commune_staff)


@router.get("/{household_id}/access-log", summary="Who read this household's record, when and why (admin)")
def access_log(household_id: UUID, app: App, who: Annotated[Principal, Depends(require(Role.admin))]) -> dict:
    app.household(household_id)
    return {"household_id": str(household_id), "reads": reads(app, household_id)}


@router.get("/{household_id}/deliveries", summary="What the household received, as the ledger recorded it")
def deliveries(household_id: UUID, app: App, who: Reader) -> dict:
    household = app.resolve(household_id)
    who.check_commune(household.commune_code)
    ids = [household.id, *household.merged_from]
    entries = [entry for hid in ids for entry in delivery_view(app.get_or_none(history_id(hid)))]
    return {"household_id": str(household.id), "deliveries": sorted(entries, key=lambda e: e["entry_seq"])}


@router.post("/{household_id}/corrections", summary="Correct details (only the fields sent)")
def correct(household_id: UUID, body: CorrectionIn, app: App, who: Staff) -> dict:
    writable(who, app, household_id)
    changes = body.changes()
    if "commune_code" in changes:
        who.check_commune(changes["commune_code"], "nơi chuyển hộ đến", "where the household would move")
    if "legal_basis" in changes:
        changes["legal_basis"] = LegalBasis(changes["legal_basis"].ground.value, changes["legal_basis"].reference)
    with register_conflict(who):
        return view_for(who, app.correct(household_id, who.username, body.reason, **changes))


@router.post("/{household_id}/members", status_code=status.HTTP_201_CREATED, summary="Add a member")
def add_member(household_id: UUID, body: MemberIn, app: App, who: Staff) -> dict:
    writable(who, app, household_id)
    return view_for(who, app.add_member(household_id, _member(body), who.username))


@router.patch("/{household_id}/members/{member_id}", summary="Correct a member (name, birth year, CCCD, flags)")
def correct_member(household_id: UUID, member_id: UUID, body: MemberCorrectionIn, app: App, who: Staff) -> dict:
    writable(who, app, household_id)
    return view_for(who, app.correct_member(household_id, member_id, who.username, **body.changes()))


@router.delete("/{household_id}/members/{member_id}", summary="Remove a member (moved away, died)")
def remove_member(household_id: UUID, member_id: UUID, app: App, who: Staff,
                  reason: Annotated[str | None, Query(max_length=500)] = None) -> dict:
    writable(who, app, household_id)
    return view_for(who, app.remove_member(household_id, member_id, who.username, reason))


@router.post("/{household_id}/quarantines", status_code=status.HTTP_201_CREATED,
             summary="Start a quarantine episode (decision number, start, expected end)")
def start_quarantine(household_id: UUID, body: QuarantineIn, app: App, who: Staff) -> dict:
    writable(who, app, household_id)
    household, episode = app.start_quarantine(household_id, who.username, **body.model_dump(mode="python"))
    return {"episode": jsonable(episode), "household": view_for(who, household)}


@router.post("/{household_id}/quarantines/{episode_id}/end", summary="End a quarantine episode")
def end_quarantine(household_id: UUID, episode_id: UUID, body: EndQuarantineIn, app: App, who: Staff) -> dict:
    writable(who, app, household_id)
    household, episode = app.end_quarantine(household_id, episode_id, body.ended_on, who.username)
    return {"episode": jsonable(episode), "household": view_for(who, household)}

