"""Admission of a request against its tenant's limits, and the 429 it gets when refused."""

from __future__ import annotations

import math

from gateway.auth import Tenant
from policies.limiter import Limiter
from policies.limits import Admission, Quota
from providers.errors import GatewayError, RateLimited


class RateLimitExceeded(RateLimited):
    def __init__(self, message: str, *, retry_after: float, limit: str, quota: Quota | None):
        super().__init__(message, retry_after=retry_after)
        self.limit = limit
        self.quota = quota


async def admit(limiter: Limiter, tenant: Tenant, cost: int) -> Admission:
    """Reserve the request against the tenant's limits, or raise `RateLimitExceeded`."""
    decision = await limiter.admit(tenant.id, tenant.limits, cost)
    if decision.admission is not None:
        return decision.admission
    assert decision.refusal is not None
    refusal = decision.refusal
    raise RateLimitExceeded(
        f"Rate limit exceeded: {refusal.limit_name.replace('_', ' ')}. "
        f"Retry after {max(1, math.ceil(refusal.retry_after_s))} s.",
        retry_after=refusal.retry_after_s,
        limit=refusal.limit_name,
        quota=refusal.quota,
    )


def error_headers(error: GatewayError) -> dict[str, str]:
    """`RateLimit-*` headers for a refusal; nothing for other errors."""
    if isinstance(error, RateLimitExceeded) and error.quota is not None:
        return error.quota.headers()
    return {}
