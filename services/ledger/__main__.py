"""python -m services.ledger: serve on 127.0.0.1:LEDGER_PORT (8003)."""

import dataclasses
import os

from services.common.serve import serve
from services.common.settings import Settings
from services.ledger.main import create


def main() -> None:
    settings = Settings.from_env("ledger")
    if "OUTBOX_RELAY" not in os.environ:
        # the relay on the other core: publishing every delivery inline costs the writer a third
        # of its CPU (docs/ledger.md "Throughput"); OUTBOX_RELAY=inline keeps it in this process
        settings = dataclasses.replace(settings, outbox_relay="process")
    app = create(settings)
    serve(app, settings.port)


if __name__ == "__main__":
    main()
