"""The policy chain: an ordered list of steps around one upstream call.

Each step receives the call and `call_next` (the rest of the chain) and yields deltas,
like an Envoy filter or an aiohttp middleware, so a step can rewrite the request
(date context), call the rest several times (retry, fallback), or stop the chain
(circuit breaker).  The innermost handler calls the chosen target's provider.

Contract between steps: a step may call `call_next` again only while the previous call
has not yielded a `TextDelta` (the commit point: text that reached the client cannot be
taken back; mid-stream continuation is the one, opt-in, exception and it only appends).
A step never reaches into another step's state; the only shared thing is the `Call`,
whose `stats` record what happened for the gateway to report.
"""

from __future__ import annotations

import time
from collections.abc import AsyncGenerator, Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal, Protocol

from policies import tracing
from policies.settings import BreakerSettings, RetrySettings, TimeoutSettings
from providers.base import (
    Capabilities,
    Delta,
    ModelRef,
    Price,
    Provider,
    UpstreamRequest,
    Usage,
    features_of,
)
from providers.errors import TargetCannotServe


@dataclass(frozen=True, slots=True)
class Target:
    """One model of a chain, resolved to its provider instance and its own settings."""

    alias: str
    provider: Provider
    model: str
    retry: RetrySettings = field(default_factory=RetrySettings)
    timeouts: TimeoutSettings = field(default_factory=TimeoutSettings)
    breaker: BreakerSettings = field(default_factory=BreakerSettings)
    options: Mapping[str, Any] = field(default_factory=dict)
    capabilities: Capabilities = field(default_factory=Capabilities)
    price: Price | None = None  # USD per million tokens, when configured

    @property
    def key(self) -> str:
        """Identity of the upstream (shared by every chain that names it)."""
        return f"{self.provider.name}/{self.model}"

    def model_ref(self, dropped: set[str]) -> ModelRef:
        """What the provider is told of this target; it reports what it left out in
        `dropped`."""
        return ModelRef(
            self.model, self.options, self.timeouts.connect_s, self.capabilities, dropped
        )


@dataclass(frozen=True, slots=True)
class Chain:
    """An ordered list of targets and the settings that span them."""

    name: str
    targets: tuple[Target, ...]
    deadline_s: float = 60.0
    on_stream_failure: Literal["terminate", "continue"] = "terminate"


def price_of(chain: Chain, model: str | None) -> Price | None:
    """The price of the chain's target that served as `model` (else its first target)."""
    target = next((t for t in chain.targets if t.model == model), chain.targets[0])
    return target.price


def most_expensive(chain: Chain, usage: Usage) -> int:
    """The most `usage` could cost on any of the chain's targets, in micro-dollars: what a
    USD budget reserves, since a fallback may land on the dearest."""
    return max((t.price.micro_usd(usage) for t in chain.targets if t.price), default=0)


@dataclass(slots=True)
class CallStats:
    """What the chain did for one request; read by the gateway for `done` and metrics."""

    attempts: int = 0
    retries: int = 0
    fallbacks: int = 0
    continuations: int = 0
    models_tried: list[str] = field(default_factory=list)
    models_used: list[str] = field(default_factory=list)
    usage: Usage = field(default_factory=Usage)
    micro_usd: int = 0  # what `usage` cost, each attempt's at its own target's price
    priced: bool = False  # whether any attempt's target had a price
    dropped_params: set[str] = field(default_factory=set)  # left out: the model refuses them

    def add_usage(self, usage: Usage, target: Target) -> None:
        """Count an attempt's usage, and its cost at that attempt's own price (a fallback
        or continuation may cross models of different prices)."""
        self.usage.add(usage)
        if target.price is not None:
            self.micro_usd += target.price.micro_usd(usage)
            self.priced = True

    @property
    def served_by(self) -> str | None:
        """The last model that produced text or an answer; None when none did."""
        return self.models_used[-1] if self.models_used else None


@dataclass(frozen=True, slots=True)
class Call:
    request: UpstreamRequest
    chain: Chain
    target: Target | None = None
    deadline: float = field(default_factory=lambda: time.monotonic() + 3600)
    stats: CallStats = field(default_factory=CallStats)
    date_context: bool = True  # whether the date-context step adds the date (per route)

    @classmethod
    def start(cls, request: UpstreamRequest, chain: Chain, date_context: bool = True) -> Call:
        """The call of one request, its deadline running from now; the request is noted on
        the current span (the request's, when it is traced)."""
        deadline = time.monotonic() + chain.deadline_s
        tracing.note_request(request, chain.name)
        return cls(request=request, chain=chain, deadline=deadline, date_context=date_context)

    @property
    def current_target(self) -> Target:
        return self.target if self.target is not None else self.chain.targets[0]

    def with_request(self, request: UpstreamRequest) -> Call:
        return replace(self, request=request)

    def with_target(self, target: Target) -> Call:
        return replace(self, target=target)


Handler = Callable[[Call], AsyncGenerator[Delta, None]]


class Step(Protocol):
    def __call__(self, call: Call, call_next: Handler) -> AsyncGenerator[Delta, None]: ...


def cannot_serve(request: UpstreamRequest, target: Target) -> TargetCannotServe | None:
    """Why `target` cannot take `request` at all (tools or images its provider or model
    lacks), or None.  Text, thinking and fields a target cannot take are dropped instead."""
    needed = request.needs()
    if not needed:
        return None
    missing = (needed - features_of(target.provider)) | target.capabilities.lacks(needed)
    if not missing:
        return None
    return TargetCannotServe(target.model, target.provider.name, missing)


def call_provider(call: Call) -> AsyncGenerator[Delta, None]:
    """The innermost handler: one attempt at the call's chosen target (a span of its own
    when the request is traced)."""
    target = call.current_target
    if (refusal := cannot_serve(call.request, target)) is not None:
        return _raise(refusal)  # (the fallback step skips such targets before this)
    call.stats.attempts += 1
    if target.model not in call.stats.models_tried:
        call.stats.models_tried.append(target.model)
    deltas = target.provider.stream(call.request, target.model_ref(call.stats.dropped_params))
    return tracing.traced_attempt(call, target, deltas)


async def _raise(error: Exception) -> AsyncGenerator[Delta, None]:
    raise error
    yield  # an async generator, as every handler returns


def compose(steps: Sequence[Step], innermost: Handler = call_provider) -> Handler:
    """Fold the steps, first one outermost, into a single handler."""
    handler = innermost
    for step in reversed(steps):
        handler = _bind(step, handler)
    return handler


def _bind(step: Step, call_next: Handler) -> Handler:
    def handler(call: Call) -> AsyncGenerator[Delta, None]:
        return step(call, call_next)

    return handler
