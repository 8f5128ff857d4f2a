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
  it doubles as the usage record).

Admission reserves `estimated input + max_tokens` tokens; `release` hands back the lease
and corrects the reservation to the real usage, on every way a stream can end.
Both backends (Redis, in-process) implement `LimiterBackend` with the same arithmetic.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Protocol

from providers.base import Usage

PERIOD_MS = 60_000
DAY_MS = 86_400_000


@dataclass(frozen=True, slots=True)
class Limits:
    requests_per_minute: int | None = None
    tokens_per_minute: int | None = None
    concurrent_streams: int | None = None
    daily_tokens: int | None = None

    @property
    def unlimited(self) -> bool:
        return not any(
            (
                self.requests_per_minute,
                self.tokens_per_minute,
                self.concurrent_streams,
                self.daily_tokens,
            )
        )


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


@dataclass(frozen=True, slots=True)
class Refusal:
    limit_name: str  # requests_per_minute | tokens_per_minute | concurrent_streams | daily_tokens
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


@dataclass(slots=True)
class ModelUsage:
    input_tokens: int = 0
    output_tokens: int = 0
    requests: int = 0


@dataclass(slots=True)
class DayUsage:
    """One tenant's day: tokens counted against its budget, and usage by model."""

    tokens: int = 0
    models: dict[str, ModelUsage] = field(default_factory=dict)

    @classmethod
    def from_fields(cls, fields: dict[str, int]) -> DayUsage:
        """From the flat `tokens`, `in:<model>`, `out:<model>`, `req:<model>` fields."""
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
        return usage

    def as_dict(self) -> dict[str, object]:
        return {
            "tokens": self.tokens,
            "requests": sum(m.requests for m in self.models.values()),
            "models": {
                name: {
                    "input_tokens": m.input_tokens,
                    "output_tokens": m.output_tokens,
                    "requests": m.requests,
                }
                for name, m in sorted(self.models.items())
            },
        }


class LimiterBackend(Protocol):
    name: str

    async def admit(self, plan: Plan) -> Decision: ...

    async def release(self, admission: Admission, used: Usage, model: str) -> None: ...

    async def renew(self, admissions: list[Admission], lease_ttl_ms: int) -> None: ...

    async def usage(self, tenant: str, day: int) -> DayUsage: ...


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
