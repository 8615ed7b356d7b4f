"""Serve an app with uvicorn, with query strings kept out of the access log (a lookup such as
`?cccd=...` or `?phone=...` would otherwise write personal data to it).

Loopback by default; BIND_HOST=0.0.0.0 in a container, where the network is the container's own.
"""

import gc
import logging
import os

import uvicorn


class PathOnly(logging.Filter):
    """uvicorn.access records carry (client, method, path with query, http version, status)."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and len(args) == 5 and isinstance(args[2], str) and "?" in args[2]:
            record.args = (args[0], args[1], args[2].split("?", 1)[0] + "?…", *args[3:])
        return True


# A hot path (the ledger's writer, a relay) allocates a few hundred short-lived objects per event:
# at the default (700, 10, 10) the cyclic collector runs a young collection every few events and
# a full one, over every cached aggregate, every few thousand: 10-18% of the ledger writer's time
# (docs/ledger.md "Throughput"). Reference counting frees nearly all of it anyway; the rarer
# collections still find cycles (exceptions with tracebacks), within a few MB.
GC_THRESHOLDS = (50_000, 50, 100)


def collect_less() -> None:
    """For a long-running process, once started: what is loaded now lives as long as the process."""
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


def serve(app, port: int, host: str | None = None) -> None:
    config = uvicorn.Config(app, host=host or os.environ.get("BIND_HOST", "127.0.0.1"), port=port)
    server = uvicorn.Server(config)  # uvicorn configures logging here: add the filter after
    logging.getLogger("uvicorn.access").addFilter(PathOnly())
    collect_less()
    server.run()
