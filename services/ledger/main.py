"""The ledger service: what it publishes, what it consumes, and its HTTP app."""

from datetime import datetime
from uuid import NAMESPACE_URL, uuid5

from fastapi import FastAPI

from contracts import ContractEvent, DistributionRecorded, DistributionReversed
from services.common.runtime import ServiceSpec, Subscription
from services.common.settings import Settings
from services.common.web import create_app
from services.ledger.api import deliveries_router, ledger_router
from services.ledger.application import RELIEF_HANDLERS, Ledger, LedgerConfig, LedgerStore
from services.ledger.checkpoints import checkpoint_timer
from services.ledger.domain import EntryAppended
from services.ledger.log import ENTRY_TOPIC

PUBLISHES: list[type[ContractEvent]] = [DistributionRecorded, DistributionReversed]
EVENT_IDS = uuid5(NAMESPACE_URL, "mttq-relief/ledger/events")


def to_contract(domain_event) -> ContractEvent | None:
    if not isinstance(domain_event, EntryAppended):
        return None
    entry = domain_event.entry
    common = dict(
        event_id=uuid5(EVENT_IDS, str(entry["seq"])), occurred_at=domain_event.timestamp,
        source_id=entry["entitlement_id"], source_version=domain_event.entitlement_version,
        entry_seq=entry["seq"], leaf_hash=domain_event.leaf_hash, round_id=entry["round_id"],
        household_id=entry["household_id"], commune_code=entry["commune_code"], items=entry["items"],
        cash_vnd=entry["cash_vnd"])
    if entry["kind"] == "reversal":
        return DistributionReversed(**common, reverses_seq=entry["reverses_seq"], reason=entry["reason"],
                                    reversed_by=entry["reversed_by"])
    return DistributionRecorded(**common, volunteer_id=entry["volunteer_id"], device_id=entry["device_id"],
                                delivered_at=datetime.fromisoformat(entry["delivered_at"]))


RELIEF = Subscription(durable="ledger-relief", stream="RELIEF", filter_subject="relief.entitlement.>",
                      handlers=RELIEF_HANDLERS)


def make_spec(config: LedgerConfig | None = None) -> ServiceSpec:
    return ServiceSpec(name="ledger", build_application=lambda settings: Ledger(settings, config),
                       to_contract=to_contract, published_from=(EntryAppended,), published_topics=(ENTRY_TOPIC,),
                       relay_application=LedgerStore,  # the relay needs the store, not the Merkle log
                       subscriptions=[RELIEF],
                       background=[checkpoint_timer])


spec = make_spec()


def create(settings: Settings | None = None, config: LedgerConfig | None = None) -> FastAPI:
    return create_app(make_spec(config) if config else spec, [deliveries_router, ledger_router], settings,
                      title="Ledger / Sổ cái")
