"""Blocking store work off the event loop, without letting a cancellation orphan it.

`asyncio.to_thread` keeps running its thread when the awaiting task is cancelled. If the
runtime then closes the application, the thread is left using a closed SQLite connection,
which can crash the interpreter (a segfault, seen in CI). `in_thread` waits for the thread
to end before letting the cancellation through, however many times it is cancelled.
"""

import asyncio
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")


async def in_thread(fn: Callable[..., T], *args: Any) -> T:
    task = asyncio.ensure_future(asyncio.to_thread(fn, *args))
    try:
        return await asyncio.shield(task)
    except asyncio.CancelledError:
        while not task.done():
            try:
                await asyncio.wait([task])
            except asyncio.CancelledError:
                continue
        raise
