"""Settings of the resilience steps, as config.yaml spells them (defaults live here).

A chain target may override some of its chain's settings: the `*Overrides` models are
the same fields, each optional, with the same bounds (a test holds them to that), so an
override is validated once, where it is written, and merging it cannot fail.
"""

from __future__ import annotations

from typing import TypeVar

from pydantic import BaseModel, ConfigDict, Field


class _Settings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RetrySettings(_Settings):
    max_attempts: int = Field(default=3, ge=1, le=20, description="attempts per target")
    initial_backoff_ms: float = Field(default=200, ge=0)
    max_backoff_ms: float = Field(default=5000, ge=0)
    max_retry_after_s: float = Field(
        default=10, ge=0, description="an upstream Retry-After longer than this falls over instead"
    )
    deadline_s: float = Field(default=60, gt=0, description="one deadline for the whole request")


class TimeoutSettings(_Settings):
    connect_s: float = Field(default=5, gt=0)
    first_token_s: float = Field(default=30, gt=0)
    idle_s: float = Field(default=30, gt=0)
    total_s: float = Field(default=600, gt=0)


class UpstreamQuotaSettings(_Settings):
    """The organisation's own quota at one provider, shared by every tenant of a replica."""

    requests_per_minute: int | None = Field(default=None, ge=1)
    concurrent_requests: int | None = Field(default=None, ge=1)
    max_wait_s: float = Field(default=5, ge=0, description="then the request gets a 503")


class BreakerSettings(_Settings):
    failure_threshold: int = Field(default=5, ge=1, description="failures within window_s")
    window_s: float = Field(default=30, gt=0)
    cooldown_s: float = Field(default=30, gt=0)


class _Overrides(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    def over(self, base: _SettingsT) -> _SettingsT:
        """`base` with the fields given here in place of its own."""
        return base.model_copy(update=self.model_dump(exclude_none=True))


_SettingsT = TypeVar("_SettingsT", bound=_Settings)


class RetryOverrides(_Overrides):
    max_attempts: int | None = Field(default=None, ge=1, le=20)
    initial_backoff_ms: float | None = Field(default=None, ge=0)
    max_backoff_ms: float | None = Field(default=None, ge=0)
    max_retry_after_s: float | None = Field(default=None, ge=0)
    deadline_s: float | None = Field(default=None, gt=0)


class TimeoutOverrides(_Overrides):
    connect_s: float | None = Field(default=None, gt=0)
    first_token_s: float | None = Field(default=None, gt=0)
    idle_s: float | None = Field(default=None, gt=0)
    total_s: float | None = Field(default=None, gt=0)


class BreakerOverrides(_Overrides):
    failure_threshold: int | None = Field(default=None, ge=1)
    window_s: float | None = Field(default=None, gt=0)
    cooldown_s: float | None = Field(default=None, gt=0)
