"""HTTP: distribution rounds, entitlements, top-ups and who is not served yet.

Errors: 422 names the field, 404 an unknown round or entitlement, 409 carries the record in
the way (the shortfall per item, the round already issued, the delivery that was made)."""

from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Depends, Query, status

from services.common.auth import Principal
from services.common.web import application
from services.relief.access import SIGNED_IN, Officer, Reader, officer_of
from services.relief.application import Relief
from services.relief.distribution import Plan, gift_id
from services.relief.distribution_schemas import CancelIn, CommuneCode, RoundIn, RoundPatch
from services.relief.rounds import Candidate, Entitlement, IssueResult, Round

router = APIRouter(tags=["distribution"], dependencies=SIGNED_IN)  # who may: services/relief/access.py
App = Annotated[Relief, Depends(application)]
PREVIEW_LIST = 1_000  # households listed in a preview; the counts and totals cover all


Prioritise = Annotated[bool, Query(description="Stock short: issue by priority (poverty, vulnerability) "
                                               "as far as stock covers; the rest wait")]


@router.post("/rounds", status_code=status.HTTP_201_CREATED, summary="Draft a distribution round (đợt phân phối)")
def draft_round(body: RoundIn, app: App, who: Officer) -> dict:
    actor = officer_of(app, who, body.campaign_id)
    return round_view(app.draft_round(actor, body.campaign_id, body.name, body.planned_on, body.package.to_domain(),
                                      body.eligibility.to_domain()))


@router.get("/rounds", summary="Rounds, newest planned first")
def list_rounds(app: App, _: Reader, campaign_id: UUID | None = None) -> dict:
    return {"rounds": app.eligibility_model.rounds(campaign_id)}


@router.get("/rounds/{round_id}", summary="One round: package, eligibility, issue and top-ups")
def get_round(round_id: UUID, app: App, _: Reader) -> dict:
    return round_view(app.round(round_id))


@router.patch("/rounds/{round_id}", summary="Edit a draft round (409 once issued)")
def edit_round(round_id: UUID, body: RoundPatch, app: App, who: Officer) -> dict:
    return round_view(app.edit_round(round_id, round_officer(app, who, round_id), **body.changes()))


@router.get("/rounds/{round_id}/preview", summary="Who is eligible, package totals and shortfall against stock "
            "(once issued: who a top-up would add)")
def preview(round_id: UUID, app: App, _: Reader) -> dict:
    return plan_view(app, app.preview(round_id))


@router.post("/rounds/{round_id}/issue", summary="Issue one entitlement (suất) per eligible household")
def issue(round_id: UUID, app: App, who: Officer, prioritise: Prioritise = False) -> dict:
    return issue_view(app, app.issue(round_id, round_officer(app, who, round_id), prioritise=prioritise))


@router.get("/rounds/{round_id}/top-up/preview", summary="Households eligible now but without a suất")
def top_up_preview(round_id: UUID, app: App, _: Reader) -> dict:
    return plan_view(app, app.preview(round_id, topping_up=True))


@router.post("/rounds/{round_id}/top-up", summary="Issue to households that became eligible after the round")
def top_up(round_id: UUID, app: App, who: Officer, prioritise: Prioritise = False) -> dict:
    return issue_view(app, app.top_up(round_id, round_officer(app, who, round_id), prioritise=prioritise))


@router.get("/rounds/{round_id}/entitlements", summary="A round's entitlements (by commune, village, status)")
def entitlements(round_id: UUID, app: App, _: Reader, commune_code: CommuneCode | None = None,
                 village: Annotated[str | None, Query(max_length=100)] = None,
                 status_: Annotated[str | None, Query(alias="status", pattern="^(issued|served|cancelled)$")] = None,
                 page: Annotated[int, Query(ge=1, le=100_000)] = 1,
                 page_size: Annotated[int, Query(ge=1, le=1000)] = 100) -> dict:
    app.round(round_id)
    total, rows = app.eligibility_model.entitlements(round_id, commune_code, village, status_, page_size,
                                                     (page - 1) * page_size)
    return {"round_id": str(round_id), "total": total, "page": page, "page_size": page_size, "entitlements": rows}


@router.get("/rounds/{round_id}/not-served", summary="Eligible but not served, per commune and village, with waiting days")
def not_served(round_id: UUID, app: App, _: Reader, commune_code: CommuneCode | None = None,
               village: Annotated[str | None, Query(max_length=100)] = None) -> dict:
    return app.not_served(round_id, commune_code, village)


@router.get("/entitlements/{entitlement_id}", summary="One entitlement (suất) and its state")
def get_entitlement(entitlement_id: UUID, app: App, _: Reader) -> dict:
    return entitlement_view(app.entitlement(entitlement_id))


@router.post("/entitlements/{entitlement_id}/cancel", summary="Cancel an entitlement; its stock is released")
def cancel(entitlement_id: UUID, body: CancelIn, app: App, who: Officer) -> dict:
    actor = officer_of(app, who, app.entitlement(entitlement_id).campaign_id)
    return entitlement_view(app.cancel_entitlement(entitlement_id, body.reason.value, body.note, actor))


def round_officer(app: Relief, who: Principal, round_id: UUID) -> str:
    """The round (404 if unknown) must belong to a campaign of `who`'s committees."""
    return officer_of(app, who, app.round(round_id).campaign_id)


# -- views

def round_view(round_: Round) -> dict[str, Any]:
    return {"id": str(round_.id), "campaign_id": str(round_.campaign_id), "name": round_.name,
            "planned_on": round_.planned_on.isoformat(), "status": round_.status, "package": round_.package,
            "eligibility": round_.eligibility, "created_by": round_.created_by, "issued": round_.issued,
            "top_ups": round_.top_ups, "version": round_.version}


def entitlement_view(e: Entitlement) -> dict[str, Any]:
    return {"id": str(e.id), "round_id": str(e.round_id), "campaign_id": str(e.campaign_id),
            "household_id": str(e.household_id), "commune_code": e.commune_code, "village": e.village,
            "lines": e.lines, "units": e.units, "eligible_since": e.eligible_since.isoformat(),
            "issued_on": e.issued_on.isoformat(), "issued_by": e.issued_by,
            "earmarked_donation_id": str(e.earmarked_donation_id) if e.earmarked_donation_id else None,
            "included_because": e.included_because, "status": e.status, "served": e.served,
            "cancelled": e.cancelled, "version": e.version}


def candidate_view(c: Candidate, package: dict[str, int] | None = None) -> dict[str, Any]:
    view = {"household_id": str(c.household_id), "commune_code": c.commune_code, "village": c.village,
            "eligible_since": c.eligible_since.isoformat()}
    if c.included_because:
        view["included_because"] = c.included_because
    if package is not None:
        view["package"] = package
    return view


def plan_view(app: Relief, plan: Plan) -> dict[str, Any]:
    by_place: dict[tuple[str, str], int] = {}
    for c in plan.candidates:
        by_place[(c.commune_code, c.village)] = by_place.get((c.commune_code, c.village), 0) + 1
    levels = app.stock_levels(plan.round.campaign_id) or {}
    return {
        "round_id": str(plan.round.id), "status": plan.round.status, "eligible": len(plan.candidates),
        "by_place": [{"commune_code": k[0], "village": k[1], "households": n} for k, n in sorted(by_place.items())],
        "needs": plan.needs, "stock": {code: level.free for code, level in levels.items()},
        "shortfall": plan.shortfall, "covered": not plan.shortfall,
        "earmarked": [{"donation_id": str(gift_id(gift)), "households": [str(c.household_id) for c, _ in shares],
                       "lines": [lines for _, lines in shares]} for gift, shares in plan.gifts],
        "excluded": plan.excluded, "unknown_includes": plan.unknown_includes,
        "households": [candidate_view(c, plan.packages[c.household_id]) for c in plan.candidates[:PREVIEW_LIST]],
    }


def issue_view(app: Relief, result: IssueResult) -> dict[str, Any]:
    return {"round_id": str(result.round_id), "issued": len(result.issued), "skipped": result.skipped,
            "entitlement_ids": [str(i) for i in result.issued[:PREVIEW_LIST]],
            "waiting": [candidate_view(c) for c in result.waiting], "shortfall": result.shortfall,
            "round": round_view(app.round(result.round_id))}

