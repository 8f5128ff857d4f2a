"""Cooldown per target: after `failure_threshold` failures within `window_s`, skip the
target for `cooldown_s`, then let one request probe it (half-open).

State is per upstream (provider + model), shared by every chain and request of this
process.  Failures are errors with `target_fault` (a 400 for a bad request is the
client's, an exhausted gateway quota is the gateway's, and a client that goes away is
nobody's); success is the first delta of an answer.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import AsyncGenerator, Callable, Iterable
from contextlib import aclosing
from dataclasses import dataclass, field
from typing import Any, Literal

from policies import tracing
from policies.base import Call, Handler, Target
from providers.base import Delta
from providers.errors import TargetCoolingDown, UpstreamError

State = Literal["closed", "open", "half_open"]


@dataclass(slots=True)
class _Circuit:
    state: State = "closed"
    failures: deque[float] = field(default_factory=deque)
    open_until: float = 0.0
    probing: bool = False
    trips: int = 0


class CircuitBreaker:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._circuits: dict[str, _Circuit] = {}

    async def __call__(self, call: Call, call_next: Handler) -> AsyncGenerator[Delta, None]:
        target = call.current_target
        circuit = self._circuits.setdefault(target.key, _Circuit())
        self._admit(target, circuit)
        probe = circuit.state == "half_open"
        answered = False
        try:
            async with aclosing(call_next(call)) as stream:
                async for delta in stream:
                    if not answered:
                        answered = True
                        self._record_success(circuit)
                    yield delta
        except UpstreamError as error:
            if error.target_fault:
                self._record_failure(target, circuit)
            raise
        finally:
            if probe:
                circuit.probing = False

    def watch(self, targets: Iterable[Target]) -> None:
        """Show these targets in `snapshot()` before their first request."""
        for target in targets:
            self._circuits.setdefault(target.key, _Circuit())

    def snapshot(self) -> dict[str, dict[str, Any]]:
        """Per-target state for the health endpoint."""
        now = self._clock()
        return {
            key: {
                "state": _current_state(c, now),
                "recent_failures": len(c.failures),
                "trips": c.trips,
            }
            for key, c in self._circuits.items()
        }

    def _admit(self, target: Target, circuit: _Circuit) -> None:
        now = self._clock()
        circuit.state = _current_state(circuit, now)
        if circuit.state == "open" or (circuit.state == "half_open" and circuit.probing):
            tracing.cooldown_event(target, circuit.state, max(circuit.open_until - now, 0.0))
            raise TargetCoolingDown(
                f"The upstream model '{target.model}' is cooling down after repeated failures.",
                provider=target.provider.name,
                retry_after=max(circuit.open_until - now, 0.0),
            )
        if circuit.state == "half_open":
            circuit.probing = True

    def _record_success(self, circuit: _Circuit) -> None:
        circuit.state = "closed"
        circuit.failures.clear()

    def _record_failure(self, target: Target, circuit: _Circuit) -> None:
        now = self._clock()
        settings = target.breaker
        if circuit.state == "half_open":
            self._open(circuit, now, settings.cooldown_s)
            return
        circuit.failures.append(now)
        while circuit.failures and circuit.failures[0] <= now - settings.window_s:
            circuit.failures.popleft()
        if len(circuit.failures) >= settings.failure_threshold:
            self._open(circuit, now, settings.cooldown_s)

    def _open(self, circuit: _Circuit, now: float, cooldown_s: float) -> None:
        circuit.state = "open"
        circuit.open_until = now + cooldown_s
        circuit.failures.clear()
        circuit.trips += 1


def _current_state(circuit: _Circuit, now: float) -> State:
    if circuit.state == "open" and now >= circuit.open_until:
        return "half_open"
    return circuit.state
