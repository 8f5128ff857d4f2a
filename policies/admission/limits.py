"""Tenant rate limits: what is limited, what an admission holds, what a refusal says.

Four limits per tenant, each optional:
- requests per minute and tokens per minute: GCRA (generic cell rate algorithm), a
  sliding measure that stores one timestamp per limit.  Unlike a fixed window it never
  lets 2x the limit through around a window edge, and unlike a sliding log it costs O(1)
  memory; a token reservation is a weighted cell, so reconciling it later is simply
  moving the timestamp back or forth;
- concurrent streams: leases with an expiry, renewed while the stream is open, so a
  replica that dies leaks no slot for longer than one lease;
- daily tokens: a counter per UTC day (kept for every tenant, limited or not, so that
  it doubles as the usage record);
- daily and monthly spend in USD: counters of micro-dollars per UTC day and month.

Admission reserves `estimated input + max_tokens` tokens, and what they would cost on the
dearest model of the chain; `release` hands back the lease and corrects both
reservations to the real usage and cost, on every way a stream can end.
Both backends (Redis, in-process) implement `LimiterBackend` with the same arithmetic.
"""

from __future__ import annotations

import datetime as dt
import math
import time
from dataclasses import dataclass, field
from typing import Protocol

from providers.base import MICRO, Usage

PERIOD_MS = 60_000
DAY_MS = 86_400_000


@dataclass(frozen=True, slots=True)
class Limits:
    requests_per_minute: int | None = None
    tokens_per_minute: int | None = None
    concurrent_streams: int | None = None
    daily_tokens: int | None = None
    daily_usd: float | None = None
    monthly_usd: float | None = None

    @property
    def unlimited(self) -> bool:
        return not any(
            (
                self.requests_per_minute,
                self.tokens_per_minute,
                self.concurrent_streams,
                self.daily_tokens,
                self.daily_usd,
                self.monthly_usd,
            )
        )

    @property
    def spend_limited(self) -> bool:
        return bool(self.daily_usd or self.monthly_usd)

    def micro_usd(self) -> tuple[int, int]:
        """The daily and monthly budgets in micro-dollars (0: none)."""
        return round((self.daily_usd or 0) * MICRO), round((self.monthly_usd or 0) * MICRO)


@dataclass(frozen=True, slots=True)
class Quota:
    """The `RateLimit-*` view of the tightest per-minute limit after a decision."""

    limit: int
    remaining: int
    reset_s: int

    def headers(self) -> dict[str, str]:
        return {
            "RateLimit-Limit": str(self.limit),
            "RateLimit-Remaining": str(self.remaining),
            "RateLimit-Reset": str(self.reset_s),
        }


@dataclass(slots=True)
class Admission:
    """A granted request: hand it back to `release` exactly once."""

    tenant: str
    limits: Limits
    lease_id: str
    reserved_tokens: int
    day: int
    quota: Quota | None
    backend: LimiterBackend
    released: bool = False
    reserved_micro_usd: int = 0
    month: int = 0  # the UTC month the spend counts in, as yyyymm


@dataclass(frozen=True, slots=True)
class Refusal:
    limit_name: str  # a `Limits` field: requests_per_minute ... daily_usd, monthly_usd
    retry_after_s: float
    quota: Quota | None


@dataclass(slots=True)
class Decision:
    allowed: bool
    admission: Admission | None = None
    refusal: Refusal | None = None


@dataclass(frozen=True, slots=True)
class Plan:
    """One admission request, as both backends receive it."""

    tenant: str
    limits: Limits
    cost: int
    lease_id: str
    lease_ttl_ms: int
    day: int = field(default_factory=lambda: int(time.time() * 1000) // DAY_MS)
    cost_micro_usd: int = 0  # the spend it reserves (worst case)
    month: int = 0  # yyyymm
    month_end_ms: int = 0  # when that month ends (a monthly budget's reset)

    def granted(self, quota: Quota | None, backend: LimiterBackend) -> Admission:
        """The admission a backend hands out for this plan."""
        return Admission(
            self.tenant,
            self.limits,
            self.lease_id,
            self.cost,
            self.day,
            quota,
            backend,
            reserved_micro_usd=self.cost_micro_usd,
            month=self.month,
        )


@dataclass(slots=True)
class ModelUsage:
    input_tokens: int = 0
    output_tokens: int = 0
    requests: int = 0
    micro_usd: int = 0  # what they cost (0 for a model without a price)

    def as_dict(self) -> dict[str, object]:
        report: dict[str, object] = {
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "requests": self.requests,
        }
        if self.micro_usd:
            report["cost_usd"] = self.micro_usd / MICRO
        return report


@dataclass(slots=True)
class DayUsage:
    """One tenant's day: tokens counted against its budget, and usage by model."""

    tokens: int = 0
    models: dict[str, ModelUsage] = field(default_factory=dict)

    @classmethod
    def from_fields(cls, fields: dict[str, int]) -> DayUsage:
        """From the flat `tokens`, `in:<model>`, `out:<model>`, `req:<model>`, `usd:<model>`
        fields (`usd` alone is the day's spend counted against a budget)."""
        usage = cls(tokens=fields.get("tokens", 0))
        for name, value in fields.items():
            kind, _, model = name.partition(":")
            if not model:
                continue
            entry = usage.models.setdefault(model, ModelUsage())
            if kind == "in":
                entry.input_tokens = value
            elif kind == "out":
                entry.output_tokens = value
            elif kind == "req":
                entry.requests = value
            elif kind == "usd":
                entry.micro_usd = value
        return usage

    @property
    def cost_usd(self) -> float:
        return sum(m.micro_usd for m in self.models.values()) / MICRO

    def as_dict(self) -> dict[str, object]:
        """The report; `cost_usd` only where models with a price were used."""
        report: dict[str, object] = {
            "tokens": self.tokens,
            "requests": sum(m.requests for m in self.models.values()),
        }
        if self.cost_usd:
            report["cost_usd"] = round(self.cost_usd, 6)
        report["models"] = {name: m.as_dict() for name, m in sorted(self.models.items())}
        return report


class LimiterBackend(Protocol):
    name: str

    async def admit(self, plan: Plan) -> Decision: ...

    async def release(
        self, admission: Admission, used: Usage, model: str, micro_usd: int = 0
    ) -> None: ...

    async def renew(self, admissions: list[Admission], lease_ttl_ms: int) -> None: ...

    async def usage(self, tenant: str, day: int) -> DayUsage: ...


def month_of(now_s: float) -> tuple[int, int]:
    """The UTC month of `now_s` as yyyymm, and when it ends (ms since the epoch)."""
    moment = dt.datetime.fromtimestamp(now_s, dt.UTC)
    start = dt.datetime(moment.year + moment.month // 12, moment.month % 12 + 1, 1, tzinfo=dt.UTC)
    return moment.year * 100 + moment.month, int(start.timestamp() * 1000)


def quota_from_tat(limit: int, tat_ms: float, now_ms: float) -> Quota:
    """RateLimit-* values of a GCRA limit whose theoretical arrival time is `tat_ms`."""
    interval = PERIOD_MS / limit
    backlog = max(tat_ms - now_ms, 0.0)
    remaining = max(int((PERIOD_MS - backlog) // interval), 0)
    return Quota(limit=limit, remaining=remaining, reset_s=math.ceil(backlog / 1000))


def refusal(limit_name: str, retry_after_ms: float, quota: Quota | None) -> Decision:
    """A refused decision; its quota shows nothing remaining until the retry time, so
    that `RateLimit-Reset` says what `Retry-After` says (whole seconds, at least one)."""
    if quota is not None:
        quota = Quota(quota.limit, 0, max(1, math.ceil(retry_after_ms / 1000)))
    return Decision(False, refusal=Refusal(limit_name, retry_after_ms / 1000, quota))
