"""Wait for a condition instead of sleeping for a guessed time.

The time-out only stops a test that would otherwise hang: it is generous on purpose, so a
slow or loaded machine makes a test slower, never red.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable

GUARD_S = 30.0


async def wait_until(
    condition: Callable[[], bool | Awaitable[bool]], what: str, timeout_s: float = GUARD_S
) -> None:
    """Return as soon as `condition()` is true; fail naming `what` if it never becomes so."""
    deadline = time.monotonic() + timeout_s
    while True:
        result = condition()
        if inspect.isawaitable(result):
            result = await result
        if result:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"waited {timeout_s:.0f} s for {what}")
        await asyncio.sleep(0.01)
