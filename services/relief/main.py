"""The relief service: what it publishes, what it consumes, and its HTTP app."""

from fastapi import FastAPI

from contracts import (ContractEvent, DonationReceived, DistributionRecorded, DistributionReversed, EntitlementCancelled,
                       EntitlementIssued)
from services.common.runtime import ServiceSpec, Subscription
from services.common.settings import Settings
from services.common.store import UnitOfWork
from services.common.web import create_app
from services.relief import distribution, funds
from services.relief.api_distribution import router as distribution_router
from services.relief.api_eligibility import router as eligibility_router
from services.relief.api_funds import router as funds_router
from services.relief.api_reports import router as reports_router
from services.relief.application import HOUSEHOLD_HANDLERS, Relief
from services.relief.campaigns import Donation
from services.relief.rounds import Entitlement
from services.relief.transfers import follow_transfers

PUBLISHES: list[type[ContractEvent]] = [DonationReceived, EntitlementIssued, EntitlementCancelled]


def to_contract(domain_event) -> ContractEvent | None:
    return funds.to_contract(domain_event) or distribution.to_contract(domain_event)


def both(event_type: type):
    """One ledger event updates stock (funds) and the entitlement (distribution)."""
    handlers = [h for h in (funds.LEDGER_HANDLERS.get(event_type),
                            distribution.LEDGER_HANDLERS.get(event_type)) if h]

    def handle(uow: UnitOfWork, event) -> None:
        for handler in handlers:
            handler(uow, event)
    return handle


HOUSEHOLDS = Subscription(durable="relief-households", stream="HOUSEHOLDS",
                          handlers=HOUSEHOLD_HANDLERS, filter_subject="households.>")
LEDGER = Subscription(durable="relief-ledger", stream="LEDGER", filter_subject="ledger.>",
                      handlers={DistributionRecorded: both(DistributionRecorded),
                                DistributionReversed: both(DistributionReversed)})

spec = ServiceSpec(name="relief", build_application=Relief, to_contract=to_contract,
                   published_from=(Donation.Recorded, Entitlement.Event), subscriptions=[HOUSEHOLDS, LEDGER],
                   background=[distribution.follow_eligibility, follow_transfers])


def create(settings: Settings | None = None) -> FastAPI:
    return create_app(spec, [eligibility_router, funds_router, distribution_router, reports_router], settings,
                      title="Relief / Cứu trợ")
