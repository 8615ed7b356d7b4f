"""HTTP: volunteers record deliveries; anyone reads checkpoints, proofs and the export.

Access (docs/ledger.md "Access"): /ledger/* is public, no sign-in. Everything under
deliveries_router needs a token (401): deliveries by volunteers (and admins) whose communes hold
the entitlement's commune, checked by the writer where the entitlement is loaded, so one item of
a batch can be refused (403) while the others are recorded; reversals by relief officers in scope
(and admins); auditors read only. The volunteer recorded is the token's user id.

Writes wait for the group-committing writer (async, so thousands can queue without threads);
reads first catch the Merkle log up, so a client reads its own writes."""

import asyncio
from typing import Annotated, Any
from uuid import UUID

import orjson
from fastapi import APIRouter, Depends, Header, Path, Query, Request, Response
from fastapi.responses import StreamingResponse

from services.common.auth import Forbidden, Principal, Role, SignedIn, principal, require
from services.common.errors import Invalid, NotFound
from services.common.settings import package_version
from services.ledger.application import Ledger
from services.ledger.deliveries import Outcome
from services.ledger.export_format import FORMAT
from services.ledger.schemas import BatchDeliveryIn, BatchIn, DeliveryIn, ReversalIn

Volunteer = Annotated[Principal, Depends(require(Role.volunteer))]
Officer = Annotated[Principal, Depends(require(Role.relief_officer))]


async def ledger_of(request: Request) -> Ledger:
    """Async, unlike services.common.web.application: no thread hop per request."""
    return request.app.state.runtime.application


App = Annotated[Ledger, Depends(ledger_of)]
Seq = Annotated[int, Path(ge=1, le=2**63 - 1)]  # SQLite's integers end there
IdempotencyKey = Annotated[str, Header(min_length=1, max_length=200,
                                       description="The client's key for this delivery: retry with the same one")]

deliveries_router = APIRouter(tags=["deliveries"], dependencies=[Depends(principal)])
ledger_router = APIRouter(prefix="/ledger", tags=["ledger"])

OUTCOMES: dict[int | str, dict[str, Any]] = {
    200: {"description": "The same key and body again: the first result, unchanged"},
    201: {"description": "Recorded: seq, leaf hash and a receipt with its inclusion proof"},
    401: {"description": "No valid sign-in token"},
    403: {"description": "Not your role, not your commune, or another user's id in the body"},
    404: {"description": "The ledger has not heard of this entitlement (or entry)"},
    409: {"description": "Already served (who, when, seq), cancelled, or not reversible"},
    422: {"description": "Same key, different body; or items/cash beyond the entitlement (field named)"},
}


def json(body: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(body), status_code=status, media_type="application/json")


async def _record(app: Ledger, commands: list) -> list:
    return await asyncio.wrap_future(app.writer.submit(commands))


async def _record_each(app: Ledger, items: list[BatchDeliveryIn], who: Principal) -> list[Outcome]:
    """Items naming another volunteer are refused here, those of other communes by the writer."""
    commands, refused = [], {}
    for i, item in enumerate(items):
        try:
            commands.append(item.recorded_by(who).command(item.idempotency_key, who))
        except Forbidden as error:
            refused[i] = Outcome(error.status_code, error.body())
    recorded = iter(await _record(app, commands) if commands else [])
    return [refused[i] if i in refused else next(recorded) for i in range(len(items))]


@deliveries_router.post("/deliveries", status_code=201, responses=OUTCOMES,
                        summary="Record a delivery at the door (once per entitlement)")
async def record_delivery(body: DeliveryIn, app: App, idempotency_key: IdempotencyKey, who: Volunteer) -> Response:
    [outcome] = await _record(app, [body.recorded_by(who).command(idempotency_key, who)])
    return json(outcome.body, outcome.status)


@deliveries_router.post("/deliveries/batch", summary="Deliveries recorded offline: one result each, in order "
                        "(an item out of your communes gets its own 403)")
async def record_batch(body: BatchIn, app: App, who: Volunteer) -> Response:
    outcomes = await _record_each(app, body.deliveries, who)
    return json({"results": [{"idempotency_key": item.idempotency_key, "status": o.status, "body": o.body}
                             for item, o in zip(body.deliveries, outcomes)]})


@deliveries_router.post("/deliveries/{seq}/reversal", status_code=201, responses=OUTCOMES,
                        summary="Reverse a delivery: a new entry that re-opens the entitlement")
async def reverse_delivery(body: ReversalIn, app: App, seq: Seq, who: Officer,
                           idempotency_key: Annotated[str | None, Header(max_length=200)] = None) -> Response:
    [outcome] = await _record(app, [body.recorded_by(who).command(seq, idempotency_key, who)])
    return json(outcome.body, outcome.status)


@deliveries_router.get("/entitlements/{entitlement_id}", summary="An entitlement as the ledger knows it")
def entitlement(entitlement_id: UUID, app: App, _: SignedIn) -> dict:
    found = app.entitlement(entitlement_id)
    if found is None:
        raise NotFound("Sổ cái chưa biết suất này", "The ledger has not heard of this entitlement",
                       entitlement_id=str(entitlement_id))
    state = "cancelled" if found.cancelled else "served" if found.delivery else "open"
    return {"entitlement_id": str(found.id), "round_id": str(found.round_id),
            "household_id": str(found.household_id), "commune_code": found.commune_code,
            "items": found.items, "cash_vnd": found.cash_vnd, "state": state, "delivery": found.delivery}


@ledger_router.get("/info", summary="How many entries the ledger holds, and its latest checkpoint")
def info(app: App) -> dict:
    return {"service": app.settings.service, "version": package_version(), "entries": app.entry_count(),
            "latest_checkpoint": app.merkle.latest_checkpoint(), "group_commit": vars(app.writer.stats)}


@ledger_router.get("/public-key", summary="The Ed25519 key that signs checkpoints")
def public_key(app: App) -> dict:
    return {"format": FORMAT, "algorithm": "Ed25519", "public_key": app.key.public_key, "key_id": app.key.key_id}


@ledger_router.get("/checkpoints", summary="Signed checkpoints, oldest first")
def checkpoints(app: App, after: Annotated[int, Query(ge=0, le=2**63 - 1, description="tree_size to start after")] = 0,
                limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> dict:
    app.merkle.catch_up()
    return {"checkpoints": app.merkle.checkpoints(after, limit)}


@ledger_router.get("/proof/{seq}", summary="Receipt for entry seq: inclusion proof against a checkpoint")
def proof(app: App, seq: Seq,
          tree_size: Annotated[int | None, Query(ge=1, le=2**63 - 1, description="A checkpoint's size; default the first that covers seq")] = None) -> dict:
    app.merkle.catch_up()
    checkpoint = app.merkle.checkpoint_covering(seq) if tree_size is None else app.merkle.checkpoint_at(tree_size)
    if checkpoint is None or checkpoint["tree_size"] < seq:
        raise NotFound("Chưa có điểm kiểm tra phù hợp cho mục này", "No checkpoint covers that entry (yet)",
                       seq=seq, tree_size=tree_size)
    return app.merkle.receipt(seq, checkpoint, app.key.public_key)


@ledger_router.get("/consistency", summary="Proof that the tree at `to` extends the tree at `from`")
def consistency(app: App, first: Annotated[int, Query(alias="from", ge=0)],
                second: Annotated[int | None, Query(alias="to", ge=0, description="Default: the latest checkpoint")] = None) -> dict:
    app.merkle.catch_up()
    if second is None:
        latest = app.merkle.latest_checkpoint()
        second = latest["tree_size"] if latest else 0
    if not first <= second <= app.merkle.size:
        raise Invalid("from", f"Cần 0 <= from <= to <= {app.merkle.size}", f"Need 0 <= from <= to <= {app.merkle.size}")
    return {"from": first, "to": second, "from_root": app.merkle.root(first), "to_root": app.merkle.root(second),
            "from_checkpoint": app.merkle.checkpoint_at(first), "to_checkpoint": app.merkle.checkpoint_at(second),
            "proof": app.merkle.consistency(first, second)}


@ledger_router.get("/export", summary="Every entry and checkpoint as JSON lines (no personal data)")
def export(app: App) -> StreamingResponse:
    app.merkle.catch_up()
    return StreamingResponse(app.merkle.export(app.key.public_key, app.key.key_id), media_type="application/x-ndjson",
                             headers={"Content-Disposition": 'attachment; filename="ledger.jsonl"'})
