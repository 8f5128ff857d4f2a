"""Per-target time limits on one attempt: first token, idle gap between deltas, total.

A time-out cancels the upstream read (closing its connection) and raises
`UpstreamTimeout`, which the retry step may retry while no text was sent.  Time the
client takes to read is not counted: only waits on the upstream are bounded.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator
from contextlib import aclosing

from policies.base import Call, Handler
from providers.base import Delta
from providers.errors import UpstreamTimeout


class Timeouts:
    async def __call__(self, call: Call, call_next: Handler) -> AsyncGenerator[Delta, None]:
        target = call.current_target
        limits = target.timeouts
        loop = asyncio.get_running_loop()
        end_of_attempt = loop.time() + limits.total_s
        gap, what = limits.first_token_s, "first token"
        async with aclosing(call_next(call)) as stream:
            while True:
                wait_until = min(loop.time() + gap, end_of_attempt)
                try:
                    async with asyncio.timeout_at(wait_until):
                        delta = await anext(stream)
                except StopAsyncIteration:
                    return
                except TimeoutError:
                    if wait_until == end_of_attempt:
                        what = "the whole answer"
                    raise UpstreamTimeout(
                        f"The upstream model '{target.model}' timed out waiting for {what}.",
                        provider=target.provider.name,
                    ) from None
                yield delta
                gap, what = limits.idle_s, "the next chunk"
