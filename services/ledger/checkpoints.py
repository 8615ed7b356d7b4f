"""Signed checkpoints on a timer: every LEDGER_CHECKPOINT_SECONDS, if the tree grew, the writer
signs one (it also signs after LEDGER_CHECKPOINT_EVERY entries and whenever a receipt needs one)."""

import asyncio
import logging

from services.ledger.deliveries import SignCheckpoint

log = logging.getLogger(__name__)


async def checkpoint_timer(app) -> None:
    """Background loop for ServiceSpec.background."""
    while True:
        await asyncio.sleep(app.config.checkpoint_seconds)
        try:
            await asyncio.wrap_future(app.writer.submit([SignCheckpoint()]))
        except asyncio.CancelledError:
            raise
        except Exception:  # noqa: BLE001 - the store is away for a moment: next tick
            log.exception("signing a checkpoint failed; trying again later")
