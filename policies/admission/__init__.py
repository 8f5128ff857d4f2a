"""Admission: whether a tenant's request may start, under the tenant's rate limits.

Not a policy step: it runs once per request, in the handler, before any step, and the
request's release (whatever way it ends) settles what it really used.  `limits` says
what is limited and what an admission holds; `limiter` decides, through Redis
(`redis_backend`) or in-process (`memory_backend`).
"""

from __future__ import annotations

import datetime as dt
import math
import time

from policies.admission.limiter import Limiter
from policies.admission.limits import Admission, Limits
from providers.errors import RateLimited


async def admit(
    limiter: Limiter, tenant: str, limits: Limits, cost: int, cost_micro_usd: int = 0
) -> Admission:
    """Reserve the request (`cost` tokens, and at most `cost_micro_usd` of spend) against
    the tenant's limits, or raise `RateLimited` (with the `RateLimit-*` headers of the
    tightest per-minute limit)."""
    decision = await limiter.admit(tenant, limits, cost, cost_micro_usd)
    if decision.admission is not None:
        return decision.admission
    assert decision.refusal is not None
    refusal = decision.refusal
    wait_s = max(1, math.ceil(refusal.retry_after_s))
    if refusal.limit_name in ("daily_usd", "monthly_usd"):
        budget = getattr(limits, refusal.limit_name)
        resets = dt.datetime.fromtimestamp(time.time() + wait_s, dt.UTC)
        message = (
            f"Spend budget exceeded: {refusal.limit_name} ({budget:g} USD). It resets at "
            f"{resets:%Y-%m-%dT%H:%M}Z, in {wait_s} s."
        )
    else:
        message = f"Rate limit exceeded: {refusal.limit_name.replace('_', ' ')}. "
        message += f"Retry after {wait_s} s."
    raise RateLimited(
        message,
        retry_after=refusal.retry_after_s,
        limit=refusal.limit_name,
        headers=refusal.quota.headers() if refusal.quota is not None else None,
    )
