"""In-process limiter backend: the same arithmetic as the Redis scripts, per replica.

Used when no `REDIS_URL` is set, and as the fail-open fallback while Redis is down.
Single-threaded asyncio makes each method atomic (no await inside a decision).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from policies.admission.limits import (
    DAY_MS,
    PERIOD_MS,
    Admission,
    DayUsage,
    Decision,
    Plan,
    quota_from_tat,
    refusal,
)
from providers.base import Usage


@dataclass(slots=True)
class _TenantState:
    rpm_tat: float = 0.0
    tpm_tat: float = 0.0
    leases: dict[str, float] = field(default_factory=dict)  # lease id -> expiry (ms)
    unsettled: set[str] = field(default_factory=set)  # lease ids admitted, not yet released
    days: dict[int, dict[str, int]] = field(default_factory=dict)  # as the Redis day hash
    months: dict[int, int] = field(default_factory=dict)  # yyyymm -> micro-dollars spent


class MemoryLimiter:
    name = "memory"

    def __init__(
        self, usage_retention_days: int = 35, clock: Callable[[], float] = time.time
    ) -> None:
        self._tenants: dict[str, _TenantState] = {}
        self._retention_days = usage_retention_days
        self._clock = clock  # seconds since the epoch, as Redis's TIME

    async def admit(self, plan: Plan) -> Decision:
        now = self._clock() * 1000
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
            used = state.days.get(plan.day, {}).get("tokens", 0)
            if used + plan.cost > limits.daily_tokens:
                return refusal("daily_tokens", (plan.day + 1) * DAY_MS - now, quota)
        daily_usd, monthly_usd = limits.micro_usd()
        spend = plan.cost_micro_usd
        if daily_usd and state.days.get(plan.day, {}).get("usd", 0) + spend > daily_usd:
            return refusal("daily_usd", (plan.day + 1) * DAY_MS - now, quota)
        if monthly_usd and state.months.get(plan.month, 0) + spend > monthly_usd:
            return refusal("monthly_usd", max(plan.month_end_ms - now, 1000), quota)

        if limits.requests_per_minute:
            state.rpm_tat = rpm_new
        if limits.tokens_per_minute:
            state.tpm_tat = tpm_new
            if quota is None:
                quota = quota_from_tat(limits.tokens_per_minute, tpm_new, now)
        if limits.concurrent_streams:
            state.leases[plan.lease_id] = now + plan.lease_ttl_ms
        if plan.day not in state.days:
            self._forget_old_days(state, plan.day)
        day = state.days.setdefault(plan.day, {})
        day["tokens"] = day.get("tokens", 0) + plan.cost
        if spend:
            day["usd"] = day.get("usd", 0) + spend
            state.months[plan.month] = state.months.get(plan.month, 0) + spend
        state.unsettled.add(plan.lease_id)
        admission = plan.granted(quota, self)
        return Decision(True, admission=admission)

    async def release(
        self, admission: Admission, used: Usage, model: str, micro_usd: int = 0
    ) -> None:
        state = self._tenants.get(admission.tenant)
        if state is None or admission.lease_id not in state.unsettled:
            return  # settled already: like the Redis script, count each admission once
        state.unsettled.discard(admission.lease_id)
        state.leases.pop(admission.lease_id, None)
        delta = used.input_tokens + used.output_tokens - admission.reserved_tokens
        tpm = admission.limits.tokens_per_minute
        if delta and tpm:
            state.tpm_tat = max(state.tpm_tat + delta * PERIOD_MS / tpm, 0.0)
        day = state.days.get(admission.day)
        if day is not None:
            day["tokens"] = max(day.get("tokens", 0) + delta, 0)
            for field_name, value in (
                (f"in:{model}", used.input_tokens),
                (f"out:{model}", used.output_tokens),
                (f"req:{model}", 1),
                (f"usd:{model}", micro_usd),
            ):
                day[field_name] = day.get(field_name, 0) + value
            spend_delta = micro_usd - admission.reserved_micro_usd
            day["usd"] = max(day.get("usd", 0) + spend_delta, 0)
            if admission.month in state.months:
                state.months[admission.month] = max(state.months[admission.month] + spend_delta, 0)

    async def renew(self, admissions: list[Admission], lease_ttl_ms: int) -> None:
        now = self._clock() * 1000
        for admission in admissions:
            state = self._tenants.get(admission.tenant)
            if state is not None and admission.lease_id in state.leases:
                state.leases[admission.lease_id] = now + lease_ttl_ms

    async def usage(self, tenant: str, day: int) -> DayUsage:
        state = self._tenants.get(tenant)
        return DayUsage.from_fields(state.days.get(day, {}) if state else {})

    def _forget_old_days(self, state: _TenantState, today: int) -> None:
        for day in [d for d in state.days if d < today - self._retention_days]:
            del state.days[day]
