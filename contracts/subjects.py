"""Subject names and JetStream streams, in one place.

Subjects read `<service>.<aggregate>.<event>.v<schema version>`, so a consumer can
filter on one version and a new major version can run beside the old one.
"""

STREAMS: dict[str, list[str]] = {
    "HOUSEHOLDS": ["households.>"],
    "RELIEF": ["relief.>"],
    "LEDGER": ["ledger.>"],
}
DEAD_LETTER_STREAM = "DEADLETTER"
DEAD_LETTER_PREFIX = "deadletter"


def dead_letter_subject(consumer: str, subject: str) -> str:
    """Where a message that failed `max_deliver` times at `consumer` is parked."""
    return f"{DEAD_LETTER_PREFIX}.{consumer}.{subject}"


def stream_of(subject: str) -> str:
    """The stream that stores `subject` (each service publishes under its own prefix)."""
    prefix = subject.split(".", 1)[0]
    for name, subjects in STREAMS.items():
        if f"{prefix}.>" in subjects:
            return name
    raise KeyError(f"no stream stores {subject}")
