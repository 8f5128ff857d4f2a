"""Admission of a request against its tenant's limits, and the 429 it gets when refused."""

from __future__ import annotations

import math

from gateway.auth import Tenant
from policies.limiter import Limiter
from policies.limits import Admission
from providers.errors import RateLimited


async def admit(limiter: Limiter, tenant: Tenant, cost: int) -> Admission:
    """Reserve the request against the tenant's limits, or raise `RateLimited` (with the
    `RateLimit-*` headers of the tightest per-minute limit)."""
    decision = await limiter.admit(tenant.id, tenant.limits, cost)
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
