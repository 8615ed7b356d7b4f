"""The households service: registry, quarantine episodes, lookup and duplicates."""

import asyncio
from contextlib import asynccontextmanager

from fastapi import FastAPI

from services.common.runtime import ServiceSpec, Subscription
from services.common.settings import Settings
from services.common.web import create_app
from services.households.api import router
from services.households.api_auth import router as auth_router
from services.households.access_log import stop_read_log
from services.households.api_disclosure import router as disclosure_router
from services.households.application import Households, to_contract
from services.households.deliveries import LEDGER_HANDLERS
from services.households.domain import Household
from services.households.importer import ImportJobs
from services.households.readmodel import project

LEDGER = Subscription(durable="households-ledger", stream="LEDGER", filter_subject="ledger.>",
                      handlers=LEDGER_HANDLERS)
spec = ServiceSpec(name="households", build_application=Households, to_contract=to_contract,
                   published_from=(Household.Event,), subscriptions=[LEDGER], background=[project])


def create(settings: Settings | None = None) -> FastAPI:
    app = create_app(spec, [auth_router, router, disclosure_router], settings, title="Households (hộ gia đình)")
    jobs = app.state.imports = ImportJobs()
    service_lifespan = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(instance: FastAPI):
        instance.state.keyring.ensure()  # households signs the tokens: a fresh install makes its first key
        async with service_lifespan(instance) as state:
            try:
                yield state
            finally:  # import threads and the access log write through the application: stop them before it closes
                await asyncio.to_thread(jobs.stop)
                await asyncio.to_thread(stop_read_log, instance.state.runtime.application)

    app.router.lifespan_context = lifespan
    return app
