"""Each policy step alone, around a scripted in-process provider (a real Provider)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator

import pytest

from policies.base import Call, Chain, Target, compose
from policies.circuit_breaker import CircuitBreaker
from policies.fallback import Fallback
from policies.retry import Retry
from policies.settings import BreakerSettings, RetrySettings, TimeoutSettings
from policies.timeouts import Timeouts
from providers.base import Delta, Message, ModelRef, StreamEnd, TextDelta, UpstreamRequest, Usage
from providers.errors import (
    TargetCoolingDown,
    UpstreamError,
    UpstreamOverloaded,
    UpstreamQuotaExhausted,
    UpstreamRateLimited,
    UpstreamRejected,
    UpstreamServerError,
    UpstreamTimeout,
)

REQUEST = UpstreamRequest(messages=(Message("user", "hi"),), max_tokens=10)
QUICK = RetrySettings(max_attempts=3, initial_backoff_ms=1, max_backoff_ms=2)


class ScriptedProvider:
    """Fails with the scripted errors in turn, then answers "ok"."""

    def __init__(self, name: str, failures: list[UpstreamError], delay: float = 0) -> None:
        self.name = name
        self.failures = list(failures)
        self.delay = delay
        self.calls = 0

    @property
    def has_credentials(self) -> bool:
        return True

    async def stream(
        self, request: UpstreamRequest, model: ModelRef
    ) -> AsyncGenerator[Delta, None]:
        self.calls += 1
        if self.failures:
            raise self.failures.pop(0)
        await asyncio.sleep(self.delay)
        yield TextDelta("ok")
        yield StreamEnd(model=model.id, stop_reason="end_turn", usage=Usage(1, 1))

    async def aclose(self) -> None:
        return None


def target(provider, model="m", retry=QUICK, **settings) -> Target:
    return Target(model, provider, model, retry=retry, **settings)


async def run(steps, *targets, deadline_s=10.0):
    call = Call.start(REQUEST, Chain("c", tuple(targets), deadline_s))
    deltas = [d async for d in compose(steps)(call)]
    return deltas, call.stats


async def test_retry_succeeds_after_two_failures():
    provider = ScriptedProvider("p", [UpstreamServerError("x"), UpstreamOverloaded("y")])
    deltas, stats = await run([Retry()], target(provider))
    assert deltas[0] == TextDelta("ok")
    assert provider.calls == 3
    assert stats.retries == 2


async def test_retry_gives_up_after_max_attempts():
    provider = ScriptedProvider("p", [UpstreamServerError("x")] * 5)
    with pytest.raises(UpstreamServerError):
        await run([Retry()], target(provider))
    assert provider.calls == 3


async def test_retry_does_not_wait_for_a_retry_after_over_the_cap():
    provider = ScriptedProvider("p", [UpstreamRateLimited("x", retry_after=30)])
    with pytest.raises(UpstreamRateLimited):
        await run([Retry()], target(provider))
    assert provider.calls == 1


async def test_fallback_moves_on_after_retries_and_counts_it():
    bad = ScriptedProvider("bad", [UpstreamOverloaded("x")] * 3)
    good = ScriptedProvider("good", [])
    deltas, stats = await run([Fallback(), Retry()], target(bad, "a"), target(good, "b"))
    assert isinstance(deltas[-1], StreamEnd) and deltas[-1].model == "b"
    assert (bad.calls, good.calls) == (3, 1)
    assert (stats.fallbacks, stats.retries, stats.attempts) == (1, 2, 4)
    assert stats.models_tried == ["a", "b"]
    assert stats.served_by == "b"


async def test_first_token_timeout_raises_upstream_timeout():
    slow = ScriptedProvider("p", [], delay=1)
    limits = TimeoutSettings(first_token_s=0.05)
    with pytest.raises(UpstreamTimeout, match="first token"):
        await run([Timeouts()], target(slow, timeouts=limits))


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


async def test_breaker_opens_after_threshold_and_half_opens_after_cooldown():
    clock = FakeClock()
    breaker = CircuitBreaker(clock)
    provider = ScriptedProvider("p", [UpstreamServerError("x")] * 2)
    t = target(provider, breaker=BreakerSettings(failure_threshold=2, window_s=10, cooldown_s=5))
    for _ in range(2):
        with pytest.raises(UpstreamServerError):
            await run([breaker], t)
    assert breaker.snapshot()["p/m"]["state"] == "open"

    with pytest.raises(TargetCoolingDown):
        await run([breaker], t)
    assert provider.calls == 2

    clock.now += 5
    assert breaker.snapshot()["p/m"]["state"] == "half_open"
    deltas, _ = await run([breaker], t)
    assert deltas[0] == TextDelta("ok")
    assert breaker.snapshot()["p/m"] == {"state": "closed", "recent_failures": 0, "trips": 1}


async def test_breaker_forgets_failures_outside_the_window():
    clock = FakeClock()
    breaker = CircuitBreaker(clock)
    provider = ScriptedProvider("p", [UpstreamServerError("x")] * 2)
    t = target(provider, breaker=BreakerSettings(failure_threshold=2, window_s=10, cooldown_s=5))
    with pytest.raises(UpstreamServerError):
        await run([breaker], t)
    clock.now += 11
    with pytest.raises(UpstreamServerError):
        await run([breaker], t)
    assert breaker.snapshot()["p/m"]["state"] == "closed"


@pytest.mark.parametrize("error", [UpstreamQuotaExhausted("q"), UpstreamRejected("bad request")])
async def test_breaker_ignores_failures_that_are_not_the_targets(error):
    breaker = CircuitBreaker(FakeClock())
    provider = ScriptedProvider("p", [error, error])
    t = target(provider, breaker=BreakerSettings(failure_threshold=1, window_s=10, cooldown_s=5))
    for _ in range(2):
        with pytest.raises(type(error)):
            await run([breaker], t)
    assert breaker.snapshot()["p/m"]["state"] == "closed"
    assert provider.calls == 2
