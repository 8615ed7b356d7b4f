"""Waiting for something that happens over the bus or in another process: poll, bounded."""

import time


def eventually(check, what="", timeout: float = 30.0, every: float = 0.1, tolerate: tuple = ()):
    """Call `check` until it returns something truthy and return that. After `timeout` seconds,
    fail naming `what` (a text, or a callable giving one). Errors of the `tolerate` types (a
    service still starting, say) count as "not yet"."""
    deadline = time.monotonic() + timeout
    last_error = None
    while True:
        try:
            result = check()
            if result:
                return result
        except tolerate as error:
            last_error = error
        if time.monotonic() > deadline:
            detail = what() if callable(what) else what
            suffix = f" (last error: {last_error!r})" if last_error is not None else ""
            raise AssertionError(f"not within {timeout}s: {detail}{suffix}")
        time.sleep(every)
