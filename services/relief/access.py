"""Who may call what in relief (issue 5 "Access"; the table is in docs/relief-funds.md).

- Public, no sign-in: the disclosure (công khai) in JSON, CSV and the printable page.
- Everything else needs a token (401 without one); the routers carry that as a dependency.
- Writes (campaigns, donations, stock, rounds, entitlements): relief officers, for the committees
  they are assigned to, and admins. A committee is its campaign's unit code: a commune campaign's
  5-digit code, a province campaign's 2-digit code, must be in the officer's communes, or the
  officer holds "*". A province assignment does not reach the communes' own committees.
- Reads: relief officers and auditors (any committee), admins; the daily and not-served reports
  of a commune also to its commune staff and volunteers, who act on them.
"""

from typing import Annotated
from uuid import UUID

from fastapi import Depends

from services.common.auth import Forbidden, Principal, Role, principal, require
from services.relief.campaigns import Campaign, CommitteeLevel, check_unit, unit_name

SIGNED_IN = [Depends(principal)]  # router-level: 401 before anything else without a valid token

Officer = Annotated[Principal, Depends(require(Role.relief_officer))]
Reader = Annotated[Principal, Depends(require(Role.relief_officer, Role.auditor))]
CommuneReader = Annotated[Principal, Depends(require(Role.relief_officer, Role.auditor, Role.commune_staff,
                                                     Role.volunteer))]
OFFICE_ROLES = (Role.admin, Role.relief_officer, Role.auditor)


def check_committee(who: Principal, level: str, unit_code: str) -> None:
    """403 unless `who` is assigned to the committee of `level` and `unit_code` (already normalised)."""
    if who.covers(unit_code):
        return
    unit = "xã/phường" if level == CommitteeLevel.commune else "tỉnh/thành phố"
    raise Forbidden(f"Bạn không được giao phụ trách Ủy ban MTTQ {unit} {unit_name(level, unit_code)} "
                    f"(mã {unit_code}).",
                    f"{who.username} ({who.role}) is not assigned to the {level} committee {unit_code}.",
                    level=level, unit_code=unit_code, role=who.role, your_communes=sorted(who.communes))


def check_new_campaign(who: Principal, level: str, unit_code: str) -> None:
    """A campaign about to be opened: 422 for a code not in the list, then 403 out of scope."""
    check_committee(who, level, check_unit(level, unit_code))


def check_campaign(who: Principal, campaign: Campaign) -> str:
    """403 unless `who` acts for the campaign's committee; returns the name recorded as actor."""
    check_committee(who, campaign.level, campaign.unit_code)
    return who.username


def officer_of(app, who: Principal, campaign_id: UUID) -> str:
    """The campaign (404 if unknown) must be of `who`'s committees; returns the actor's name."""
    return check_campaign(who, app.campaign(campaign_id))


def check_commune_reader(who: Principal, commune_code: str) -> None:
    """Office roles read every commune's report; commune staff and volunteers only their own."""
    if who.role not in OFFICE_ROLES:
        who.check_commune(commune_code, "báo cáo của xã/phường này", "this commune's report")
