"""Read-your-writes across services (architecture: "Consistency across services").

An id another service returned in a 2xx answer may not have reached this service's
projection yet. Lookups of such ids go through `await_projected`: cheap when the row is
already there (one query), otherwise re-tried for a bounded time before the caller answers
404, so a true 404 is still a 404, only later.
"""

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")

# How long a lookup waits for a projection to catch up; services set it from
# `ServiceSettings.projection_wait_seconds` at start.
_wait_seconds = 5.0


def configure(wait_seconds: float) -> None:
    """Set how long lookups of projected ids wait (0 disables waiting)."""
    global _wait_seconds
    _wait_seconds = wait_seconds


async def await_projected(
    lookup: Callable[[], Awaitable[T | None]], wait_seconds: float | None = None
) -> T | None:
    """`lookup()`'s row, re-trying with backoff until it is found or the wait is over.

    Run it inside the request's transaction: under READ COMMITTED every retry sees what the
    consumer committed meanwhile."""
    found = await lookup()
    if found is not None:
        return found
    deadline = time.monotonic() + (_wait_seconds if wait_seconds is None else wait_seconds)
    delay = 0.02
    while time.monotonic() < deadline:
        await asyncio.sleep(min(delay, max(0.0, deadline - time.monotonic())))
        delay = min(delay * 2, 0.25)
        found = await lookup()
        if found is not None:
            return found
    return None
