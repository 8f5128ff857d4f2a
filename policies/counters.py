"""Process-wide totals of what the policy chain did, for metrics to read."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from policies.base import CallStats


@dataclass(slots=True)
class ResilienceCounters:
    requests: int = 0
    attempts: int = 0
    retries: int = 0
    fallbacks: int = 0
    continuations: int = 0

    def record(self, stats: CallStats) -> None:
        self.requests += 1
        self.attempts += stats.attempts
        self.retries += stats.retries
        self.fallbacks += stats.fallbacks
        self.continuations += stats.continuations

    def as_dict(self) -> dict[str, int]:
        return asdict(self)
