"""Keep the organisation under its own upstream quota (per provider, all tenants).

Each attempt at a provider takes a request-rate token (aiolimiter's leaky bucket) and a
concurrency slot, waiting at most `max_wait_s` for both; then it fails with
`UpstreamQuotaExhausted`, which lets the fallback step try another provider.  The quota
is per replica: with N replicas, configure 1/N of the organisation's quota.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Mapping
from contextlib import aclosing
from dataclasses import dataclass

from aiolimiter import AsyncLimiter

from policies.base import Call, Handler
from policies.settings import UpstreamQuotaSettings
from providers.base import Delta
from providers.errors import UpstreamQuotaExhausted


@dataclass(slots=True)
class _Gate:
    rate: AsyncLimiter | None
    slots: asyncio.Semaphore | None
    max_wait_s: float


class UpstreamQuota:
    def __init__(self, quotas: Mapping[str, UpstreamQuotaSettings]) -> None:
        self._gates = {
            provider: _Gate(
                AsyncLimiter(q.requests_per_minute, 60) if q.requests_per_minute else None,
                asyncio.Semaphore(q.concurrent_requests) if q.concurrent_requests else None,
                q.max_wait_s,
            )
            for provider, q in quotas.items()
        }

    async def __call__(self, call: Call, call_next: Handler) -> AsyncGenerator[Delta, None]:
        provider = call.current_target.provider.name
        gate = self._gates.get(provider)
        if gate is None:
            async with aclosing(call_next(call)) as stream:
                async for delta in stream:
                    yield delta
            return
        holding_slot = False
        try:
            async with asyncio.timeout(gate.max_wait_s):
                if gate.rate is not None:
                    await gate.rate.acquire()
                if gate.slots is not None:
                    await gate.slots.acquire()
                    holding_slot = True
        except TimeoutError:
            raise UpstreamQuotaExhausted(
                f"The gateway's quota at provider '{provider}' is used up; try again shortly.",
                provider=provider,
                retry_after=gate.max_wait_s or 1.0,
            ) from None
        try:
            async with aclosing(call_next(call)) as stream:
                async for delta in stream:
                    yield delta
        finally:
            if holding_slot and gate.slots is not None:
                gate.slots.release()
