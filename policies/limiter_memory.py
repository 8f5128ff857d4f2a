"""In-process limiter backend: the same arithmetic as the Redis scripts, per replica.

Used when no `REDIS_URL` is set, and as the fail-open fallback while Redis is down.
Single-threaded asyncio makes each method atomic (no await inside a decision).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from policies.limits import (
    DAY_MS,
    PERIOD_MS,
    Admission,
    Decision,
    Plan,
    quota_from_tat,
    refusal,
)


@dataclass(slots=True)
class _TenantState:
    rpm_tat: float = 0.0
    tpm_tat: float = 0.0
    leases: dict[str, float] = field(default_factory=dict)  # lease id -> expiry (ms)
    day_tokens: dict[int, int] = field(default_factory=dict)


class MemoryLimiter:
    name = "memory"

    def __init__(self) -> None:
        self._tenants: dict[str, _TenantState] = {}

    async def admit(self, plan: Plan) -> Decision:
        now = time.time() * 1000
        state = self._tenants.setdefault(plan.tenant, _TenantState())
        limits = plan.limits
        rpm_new = tpm_new = 0.0
        quota = None
        if limits.requests_per_minute:
            rpm_new = max(state.rpm_tat, now) + PERIOD_MS / limits.requests_per_minute
            if rpm_new - PERIOD_MS > now:
                q = quota_from_tat(limits.requests_per_minute, max(state.rpm_tat, now), now)
                return refusal("requests_per_minute", rpm_new - PERIOD_MS - now, q)
            quota = quota_from_tat(limits.requests_per_minute, rpm_new, now)
        if limits.tokens_per_minute:
            cost = min(plan.cost, limits.tokens_per_minute)
            tpm_new = max(state.tpm_tat, now) + cost * PERIOD_MS / limits.tokens_per_minute
            if tpm_new - PERIOD_MS > now:
                return refusal("tokens_per_minute", tpm_new - PERIOD_MS - now, quota)
        if limits.concurrent_streams:
            state.leases = {k: exp for k, exp in state.leases.items() if exp > now}
            if len(state.leases) >= limits.concurrent_streams:
                return refusal("concurrent_streams", 1000, quota)
        if limits.daily_tokens:
            used = state.day_tokens.get(plan.day, 0)
            if used + plan.cost > limits.daily_tokens:
                return refusal("daily_tokens", (plan.day + 1) * DAY_MS - now, quota)

        if limits.requests_per_minute:
            state.rpm_tat = rpm_new
        if limits.tokens_per_minute:
            state.tpm_tat = tpm_new
            if quota is None:
                quota = quota_from_tat(limits.tokens_per_minute, tpm_new, now)
        if limits.concurrent_streams:
            state.leases[plan.lease_id] = now + plan.lease_ttl_ms
        state.day_tokens = {plan.day: state.day_tokens.get(plan.day, 0) + plan.cost}
        admission = Admission(plan.tenant, limits, plan.lease_id, plan.cost, plan.day, quota, self)
        return Decision(True, admission=admission)

    async def release(self, admission: Admission, actual_tokens: int) -> None:
        state = self._tenants.get(admission.tenant)
        if state is None:
            return
        state.leases.pop(admission.lease_id, None)
        delta = actual_tokens - admission.reserved_tokens
        tpm = admission.limits.tokens_per_minute
        if delta and tpm:
            state.tpm_tat = max(state.tpm_tat + delta * PERIOD_MS / tpm, 0.0)
        if delta and admission.day in state.day_tokens:
            state.day_tokens[admission.day] = max(state.day_tokens[admission.day] + delta, 0)

    async def renew(self, admissions: list[Admission], lease_ttl_ms: int) -> None:
        now = time.time() * 1000
        for admission in admissions:
            state = self._tenants.get(admission.tenant)
            if state is not None and admission.lease_id in state.leases:
                state.leases[admission.lease_id] = now + lease_ttl_ms

    async def tokens_today(self, tenant: str, day: int) -> int:
        state = self._tenants.get(tenant)
        return state.day_tokens.get(day, 0) if state else 0
