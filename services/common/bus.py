"""The NATS connection and the JetStream streams every service relies on."""

import asyncio
import logging
import re

import nats
from nats.aio.client import Client
from nats.js import JetStreamContext
from nats.js.api import StreamConfig
from nats.js.errors import BadRequestError

from contracts import DEAD_LETTER_STREAM, STREAMS

log = logging.getLogger(__name__)
_CREDENTIALS = re.compile(r"//[^@/]+@")


def redacted(url: str) -> str:
    """nats://user:password@host -> nats://***@host, for logs."""
    return _CREDENTIALS.sub("//***@", url)
DUPLICATE_WINDOW_SECONDS = 120.0


class Bus:
    """A NATS connection that keeps trying: services start (not ready) while NATS is down
    and catch up when it comes."""

    def __init__(self, url: str, name: str, replicas: int = 1):
        self.url = url
        self.name = name
        self.replicas = replicas
        self.nc: Client | None = None
        self.js: JetStreamContext | None = None
        self._connected = asyncio.Event()

    @property
    def connected(self) -> bool:
        return self.nc is not None and self.nc.is_connected

    async def connect(self) -> None:
        self.nc = await nats.connect(
            servers=self.url.split(","),
            name=self.name,
            max_reconnect_attempts=-1,
            reconnect_time_wait=0.5,
            connect_timeout=2,
            drain_timeout=5,
            allow_reconnect=True,
            error_cb=self._on_error,
            disconnected_cb=self._on_disconnected,
            reconnected_cb=self._on_reconnected,
        )
        self.js = self.nc.jetstream(timeout=10)
        await ensure_streams(self.js, self.replicas)
        self._connected.set()

    async def _on_error(self, error: Exception) -> None:
        log.warning("NATS %s: %s", redacted(self.url), error)  # nats-py would print a whole traceback

    async def _on_disconnected(self) -> None:
        log.warning("NATS disconnected from %s; reconnecting", redacted(self.url))

    async def _on_reconnected(self) -> None:
        log.info("NATS reconnected to %s", redacted(self.url))

    async def connect_forever(self) -> None:
        """Retry the first connection until it succeeds (later reconnects are nats-py's)."""
        delay = 0.2
        while True:
            try:
                await self.connect()
                return
            except Exception as error:  # noqa: BLE001 - any failure means "not yet"
                log.warning("NATS not reachable at %s (%s); retrying", redacted(self.url), error)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5)

    async def wait_connected(self) -> JetStreamContext:
        await self._connected.wait()
        assert self.js is not None
        return self.js

    async def close(self) -> None:
        if self.nc is not None and not self.nc.is_closed:
            await self.nc.drain()


async def ensure_streams(js: JetStreamContext, replicas: int = 1) -> None:
    """Create every stream named in contracts, or bring an existing one up to date. Idempotent,
    and never lowers an existing stream's replicas (an operator may have raised them)."""
    configs = [
        StreamConfig(name=name, subjects=subjects, duplicate_window=DUPLICATE_WINDOW_SECONDS,
                     num_replicas=replicas)
        for name, subjects in STREAMS.items()
    ]
    configs.append(StreamConfig(name=DEAD_LETTER_STREAM, subjects=["deadletter.>"], num_replicas=replicas))
    for config in configs:
        try:
            await js.add_stream(config)
        except BadRequestError as error:
            if error.err_code != 10058:  # stream name already in use with another config
                raise
            existing = await js.stream_info(config.name)
            config.num_replicas = max(replicas, existing.config.num_replicas or 1)
            await js.update_stream(config)
