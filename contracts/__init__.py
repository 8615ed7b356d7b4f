"""What crosses the bus: integration events, their subjects and streams.

This is the only domain code the services share. Domain events stay private to the
service that raises them; a service maps them to these models when it publishes.
Nothing personal crosses the bus: ids, commune codes, dates and counts only.
"""

from contracts.base import ContractEvent, decode, encode, registry
from contracts.households import (
    HouseholdCorrected,
    HouseholdRegistered,
    HouseholdsMerged,
    MembersChanged,
    QuarantineEnded,
    QuarantineStarted,
)
from contracts.ledger import DistributionRecorded, DistributionReversed, ReversalReason
from contracts.relief import (
    CancellationReason,
    DonationReceived,
    Earmark,
    EntitlementCancelled,
    EntitlementIssued,
    LegalBasis,
    PackageLine,
)
from contracts.subjects import DEAD_LETTER_STREAM, STREAMS, dead_letter_subject, stream_of

__all__ = [
    "CancellationReason",
    "DistributionRecorded",
    "DistributionReversed",
    "DonationReceived",
    "Earmark",
    "EntitlementCancelled",
    "EntitlementIssued",
    "LegalBasis",
    "PackageLine",
    "ReversalReason",
    "ContractEvent",
    "DEAD_LETTER_STREAM",
    "STREAMS",
    "HouseholdCorrected",
    "HouseholdRegistered",
    "HouseholdsMerged",
    "MembersChanged",
    "QuarantineEnded",
    "QuarantineStarted",
    "dead_letter_subject",
    "stream_of",
    "decode",
    "encode",
    "registry",
]
