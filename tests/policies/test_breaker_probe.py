"""The circuit breaker's half-open probe: one request at a time, and a failed probe opens
the circuit again for a whole cooldown.  Time is an injected clock; the probe in flight
is held open by an event, so nothing here waits for wall-clock time."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator

import pytest

from policies.base import Call, Chain, Target, compose
from policies.circuit_breaker import CircuitBreaker
from policies.settings import BreakerSettings
from providers.base import Delta, Message, ModelRef, StreamEnd, TextDelta, UpstreamRequest, Usage
from providers.errors import TargetCoolingDown, UpstreamServerError
from tests.clock import FakeClock
from tests.waiting import wait_until

REQUEST = UpstreamRequest(messages=(Message("user", "hi"),), max_tokens=10)
COOLDOWN_S = 30.0
SETTINGS = BreakerSettings(failure_threshold=1, window_s=60, cooldown_s=COOLDOWN_S)


class Upstream:
    """A provider that fails while `failing`, else answers; its call number `held` waits
    for `gate` first."""

    name = "p"

    def __init__(self) -> None:
        self.failing = True
        self.gate = asyncio.Event()
        self.held: int | None = None
        self.calls = 0

    @property
    def has_credentials(self) -> bool:
        return True

    async def stream(
        self, request: UpstreamRequest, model: ModelRef
    ) -> AsyncGenerator[Delta, None]:
        self.calls += 1
        if self.calls == self.held:
            await self.gate.wait()
        if self.failing:
            raise UpstreamServerError("scripted 500", provider=self.name, status=500)
        yield TextDelta("ok")
        yield StreamEnd(model=model.id, stop_reason="end_turn", usage=Usage(1, 1))

    async def aclose(self) -> None:
        return None


async def run(breaker: CircuitBreaker, upstream: Upstream) -> list[Delta]:
    target = Target("m", upstream, "m", breaker=SETTINGS)
    call = Call.start(REQUEST, Chain("c", (target,)))
    return [delta async for delta in compose([breaker])(call)]


async def open_circuit(breaker: CircuitBreaker, upstream: Upstream) -> None:
    with pytest.raises(UpstreamServerError):
        await run(breaker, upstream)
    assert breaker.snapshot()["p/m"]["state"] == "open"


async def test_a_failed_probe_opens_the_circuit_again_for_a_full_cooldown() -> None:
    clock = FakeClock()
    breaker = CircuitBreaker(clock.time)
    upstream = Upstream()
    await open_circuit(breaker, upstream)

    clock.advance(COOLDOWN_S)
    assert breaker.snapshot()["p/m"]["state"] == "half_open"
    with pytest.raises(UpstreamServerError):  # the probe reaches the target, and fails
        await run(breaker, upstream)
    assert upstream.calls == 2
    probe_failed_at = clock.now

    assert breaker.snapshot()["p/m"] == {"state": "open", "recent_failures": 0, "trips": 2}
    clock.now = probe_failed_at + COOLDOWN_S - 0.001  # a moment before the new cooldown ends
    with pytest.raises(TargetCoolingDown) as refused:
        await run(breaker, upstream)
    assert refused.value.retry_after == pytest.approx(0.001, abs=1e-5)
    assert upstream.calls == 2  # refused without calling the target

    clock.now = probe_failed_at + COOLDOWN_S
    upstream.failing = False
    assert await run(breaker, upstream) == [
        TextDelta("ok"),
        StreamEnd(model="m", stop_reason="end_turn", usage=Usage(1, 1)),
    ]
    assert breaker.snapshot()["p/m"]["state"] == "closed"


async def test_a_request_during_the_probe_is_refused_not_let_through() -> None:
    clock = FakeClock()
    breaker = CircuitBreaker(clock.time)
    upstream = Upstream()
    await open_circuit(breaker, upstream)
    clock.advance(COOLDOWN_S)
    upstream.failing = False
    upstream.held = 2  # the probe

    probe = asyncio.create_task(run(breaker, upstream))
    await wait_until(lambda: upstream.calls == 2, "the probe to reach the target")

    with pytest.raises(TargetCoolingDown):
        await run(breaker, upstream)
    assert upstream.calls == 2  # the second request never reached the target

    upstream.gate.set()
    assert (await probe)[0] == TextDelta("ok")
    assert breaker.snapshot()["p/m"]["state"] == "closed"
    assert (await run(breaker, upstream))[0] == TextDelta("ok")  # closed: no longer one at a time
    assert upstream.calls == 3
