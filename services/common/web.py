"""The FastAPI shell every service shares: lifespan, /healthz, /metrics, errors as HTTP."""

import json
import logging
import sqlite3
from contextlib import asynccontextmanager
from typing import Annotated

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from eventsourcing.persistence import InterfaceError, OperationalError

from services.common.auth import KeyRing, SignedIn
from services.common.errors import DomainError, StoreUnavailable
from services.common.metrics import Metrics
from services.common.runtime import ServiceRuntime, ServiceSpec
from services.common.settings import Settings

log = logging.getLogger(__name__)


def create_app(spec: ServiceSpec, routers: list[APIRouter], settings: Settings | None = None,
               title: str | None = None) -> FastAPI:
    settings = settings or Settings.from_env(spec.name)
    metrics = Metrics()

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        runtime = ServiceRuntime(spec, settings)
        app.state.runtime = metrics.runtime = runtime
        await runtime.start()
        try:
            yield
        finally:
            await runtime.stop()

    app = FastAPI(title=title or spec.name, lifespan=lifespan)
    app.state.keyring = KeyRing(settings.keys_dir)
    app.add_middleware(metrics.middleware)
    app.add_api_route("/metrics", metrics.scrape, methods=["GET"], tags=["ops"], include_in_schema=False)

    @app.get("/healthz", tags=["ops"], summary="Readiness: store and NATS connection")
    def healthz(request: Request) -> JSONResponse:
        report = request.app.state.runtime.health()
        return JSONResponse(report, status_code=200 if report["ready"] else 503)

    @app.exception_handler(DomainError)
    async def domain_error(_: Request, error: DomainError) -> JSONResponse:
        return JSONResponse(error.body(), status_code=error.status_code)

    # A store that cannot answer (locked, read-only, PostgreSQL down): nothing was stored, say so.
    for unavailable in (OperationalError, InterfaceError, sqlite3.OperationalError):
        app.add_exception_handler(unavailable, store_unavailable)
    app.add_exception_handler(OverflowError, number_out_of_range)
    app.add_exception_handler(RequestValidationError, invalid_request)

    for router in routers:
        app.include_router(router)
    return app


async def store_unavailable(request: Request, error: Exception) -> JSONResponse:
    # the cause goes to the log only: it may name hosts, databases or files
    log.warning("store unavailable on %s %s: %r", request.method, request.url.path, error)
    return JSONResponse(StoreUnavailable().body(), status_code=503, headers={"Retry-After": "5"})


async def number_out_of_range(request: Request, error: OverflowError) -> JSONResponse:
    """A number the store cannot hold (SQLite and PostgreSQL integers are 64-bit) is bad input."""
    log.info("number out of range on %s %s: %r", request.method, request.url.path, error)
    return JSONResponse({"detail": [{"loc": ["request"], "msg": "number out of range (64-bit at most)",
                                     "msg_vi": "số vượt quá giới hạn (tối đa 64 bit)", "type": "out_of_range"}]},
                        status_code=422)


def application(request: Request):
    """FastAPI dependency: the service's eventsourcing Application."""
    return request.app.state.runtime.application


def actor(who: SignedIn) -> str:
    """FastAPI dependency: who is acting, as recorded in every event (the signed-in user name)."""
    return who.username


Actor = Annotated[str, Depends(actor)]


async def invalid_request(_: Request, error: RequestValidationError) -> Response:
    """FastAPI's own 422, but written with ASCII escapes: input holding a lone surrogate (which
    UTF-8 cannot carry) would otherwise make the error answer itself fail with a 500."""
    body = json.dumps(jsonable_encoder({"detail": error.errors()}), ensure_ascii=True)
    return Response(body, status_code=422, media_type="application/json")
