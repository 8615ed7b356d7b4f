"""Who may read and change which households, and how much of a record they see.

- commune_staff: register, correct and look up in their communes; full records there.
- volunteer, relief_officer: look up in their communes, masked (no CCCD, phone or health detail).
- auditor: reads everywhere, masked; writes nothing.
- admin: everything.
Lists always mask CCCD and phone numbers; the full record is for staff of its commune and admins.
"""

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any
from uuid import UUID

from fastapi import Depends, Header, Query

from services.common.auth import Forbidden, Principal, Role, require
from services.households.application import Households
from services.households.domain import HeadAlreadyRegistered, Household, check_commune
from services.households.importer import read_rows
from services.households.views import household_view, masked, redacted

Reader = Annotated[Principal, Depends(require(*Role))]
Staff = Annotated[Principal, Depends(require(Role.commune_staff))]
MAX_REPORTED_ROWS = 20


def access_reason(x_access_reason: Annotated[str | None, Header(max_length=500)] = None,
                  reason: Annotated[str | None, Query(max_length=500, description="Why you read this record")] = None
                  ) -> str | None:
    """Why a record is read: `?reason=` or the `X-Access-Reason` header (UTF-8 welcome)."""
    if reason:
        return reason
    if x_access_reason:
        try:  # HTTP headers arrive as Latin-1: give UTF-8 text back its Vietnamese letters
            return x_access_reason.encode("latin-1").decode("utf-8")
        except (UnicodeEncodeError, UnicodeDecodeError):
            return x_access_reason
    return None


Reason = Annotated[str | None, Depends(access_reason)]


def sees_everything(who: Principal, commune_code: str) -> bool:
    return who.role == Role.admin or (who.role == Role.commune_staff and who.covers(commune_code))


def view_for(who: Principal, household: Household, **extra: Any) -> dict[str, Any]:
    view = household_view(household, **extra)
    return view if sees_everything(who, household.commune_code) else redacted(view)


def writable(who: Principal, app: Households, household_id: UUID) -> None:
    """403 unless the household is in one of the writer's communes (404 if there is none)."""
    who.check_commune(app.household(household_id).commune_code)


def scope(who: Principal, commune_code: str | None) -> tuple[str | None, list[str] | None]:
    """(commune to filter on, communes to confine to) for a lookup by `who`."""
    if who.everywhere:
        return commune_code, None
    if commune_code:
        who.check_commune(commune_code, "xã/phường đang tra cứu", "the commune looked up")
        return commune_code, None
    communes = sorted(who.communes)
    return (communes[0], None) if len(communes) == 1 else (None, communes)


@contextmanager
def register_conflict(who: Principal) -> Iterator[None]:
    """A head registered elsewhere: show the existing household masked, or only its id outside one's communes."""
    try:
        yield
    except HeadAlreadyRegistered as conflict:
        existing = conflict.details.get("household") or {}
        if who.covers(existing.get("commune_code")):
            conflict.details["household"] = masked(existing)
        else:
            conflict.details["household"] = {k: existing.get(k) for k in ("id", "commune_code", "commune_name")}
        raise


def check_import(who: Principal, filename: str, data: bytes) -> None:
    """403 naming the rows if a file registers households outside the importer's communes."""
    if who.everywhere:
        return
    try:
        rows = read_rows(filename, data)
    except Exception:  # noqa: BLE001 - the import job reports what is wrong with the file
        return
    outside = []
    for number, values in rows:
        try:
            code = check_commune(values.get("commune_code") or "")
        except Exception:  # noqa: BLE001 - blank or bad codes are the job's row errors
            continue
        if not who.covers(code):
            outside.append({"row": number, "commune_code": code})
    if outside:
        raise Forbidden("Tệp có hộ ở xã/phường bạn không phụ trách; hãy bỏ các dòng đó",
                        "The file has households in communes you are not assigned to; remove those rows",
                        rows=outside[:MAX_REPORTED_ROWS], outside=len(outside), your_communes=sorted(who.communes))
