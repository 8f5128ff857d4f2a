"""Admission: whether a tenant's request may start, under the tenant's rate limits.

Not a policy step: it runs once per request, in the handler, before any step, and the
request's release (whatever way it ends) settles what it really used.  `limits` says
what is limited and what an admission holds; `limiter` decides, through Redis
(`redis_backend`) or in-process (`memory_backend`).
"""

from __future__ import annotations

import math

from policies.admission.limiter import Limiter
from policies.admission.limits import Admission, Limits
from providers.errors import RateLimited


async def admit(limiter: Limiter, tenant: str, limits: Limits, cost: int) -> Admission:
    """Reserve the request against the tenant's limits, or raise `RateLimited` (with the
    `RateLimit-*` headers of the tightest per-minute limit)."""
    decision = await limiter.admit(tenant, limits, cost)
    if decision.admission is not None:
        return decision.admission
    assert decision.refusal is not None
    refusal = decision.refusal
    raise RateLimited(
        f"Rate limit exceeded: {refusal.limit_name.replace('_', ' ')}. "
        f"Retry after {max(1, math.ceil(refusal.retry_after_s))} s.",
        retry_after=refusal.retry_after_s,
        limit=refusal.limit_name,
        headers=refusal.quota.headers() if refusal.quota is not None else None,
    )
