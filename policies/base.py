"""The policy chain: an ordered list of steps around one upstream call.

Each step receives the call and `call_next` (the rest of the chain) and yields deltas,
like an Envoy filter or an aiohttp middleware, so a step can rewrite the request
(date context), call the rest several times (retry, fallback), or stop the chain
(circuit breaker).  The innermost handler calls the chosen target's provider.

Contract between steps: a step may call `call_next` again only if the previous call
has not yielded a `TextDelta` yet (the commit point: text that reached the client
cannot be taken back).  A step never reaches into another step's state; the only shared
thing is the `Call`, whose `stats` record what happened for the gateway to report.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Protocol

from providers.base import Delta, Provider, UpstreamRequest
from providers.errors import GatewayError


@dataclass(frozen=True, slots=True)
class Target:
    """One model of a chain, resolved to its provider instance and its own settings."""

    alias: str
    provider: Provider
    model: str


@dataclass(slots=True)
class CallStats:
    """What the chain did for one request; read by the gateway for `done` and metrics."""

    attempts: int = 0
    retries: int = 0
    fallbacks: int = 0
    models_tried: list[str] = field(default_factory=list)
    errors: list[GatewayError] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Call:
    request: UpstreamRequest
    targets: tuple[Target, ...]
    target: Target | None = None
    stats: CallStats = field(default_factory=CallStats)

    def with_request(self, request: UpstreamRequest) -> Call:
        return replace(self, request=request)

    def with_target(self, target: Target) -> Call:
        return replace(self, target=target)


Handler = Callable[[Call], AsyncIterator[Delta]]


class Step(Protocol):
    def __call__(self, call: Call, call_next: Handler) -> AsyncIterator[Delta]: ...


def call_provider(call: Call) -> AsyncIterator[Delta]:
    """The innermost handler: one attempt at the call's chosen target."""
    target = call.target if call.target is not None else call.targets[0]
    call.stats.attempts += 1
    call.stats.models_tried.append(target.model)
    return target.provider.stream(call.request, target.model)


def compose(steps: Sequence[Step], innermost: Handler = call_provider) -> Handler:
    """Fold the steps, first one outermost, into a single handler."""
    handler = innermost
    for step in reversed(steps):
        handler = _bind(step, handler)
    return handler


def _bind(step: Step, call_next: Handler) -> Handler:
    def handler(call: Call) -> AsyncIterator[Delta]:
        return step(call, call_next)

    return handler
