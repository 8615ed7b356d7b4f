"""python -m services.ledger: serve on 127.0.0.1:LEDGER_PORT (8003)."""

import dataclasses
import gc
import os

from services.common.serve import serve
from services.common.settings import Settings
from services.ledger.main import create

# Each delivery allocates a few hundred short-lived objects (events, dicts, pydantic models): at
# the default 700 the cyclic collector runs a young collection every few deliveries and a full one
# (over every cached entitlement and idempotency record) every few thousand: about a sixth of the
# writer's time in docs/ledger.md "Throughput". Reference counting frees nearly all of it anyway.
GC_YOUNG_THRESHOLD = 10_000


def main() -> None:
    settings = Settings.from_env("ledger")
    if "OUTBOX_RELAY" not in os.environ:
        # the relay on the other core: publishing every delivery inline costs the writer a third
        # of its CPU (docs/ledger.md "Throughput"); OUTBOX_RELAY=inline keeps it in this process
        settings = dataclasses.replace(settings, outbox_relay="process")
    app = create(settings)
    gc.freeze()  # modules and settings live as long as the process: full collections skip them
    gc.set_threshold(GC_YOUNG_THRESHOLD, 10, 10)
    serve(app, settings.port)


if __name__ == "__main__":
    main()
