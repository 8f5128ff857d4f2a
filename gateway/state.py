"""What a running app shares between requests.

`Shared` lives as long as the process; `GatewayState` is one loaded config (providers,
routes, policy chain, tenants) and is replaced whole on reload, while streams that
started on the old one finish on it.  Handlers read `app[STATE].current` once.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Generic, TypeVar

import aiohttp
from aiohttp import web

from gateway.auth import Authenticator
from gateway.chains import Chains
from gateway.config import GatewayConfig
from gateway.metrics import Metrics
from gateway.resume.log import StreamLog
from gateway.sse import Redactor
from policies.admission.limiter import Limiter
from policies.base import Handler
from policies.circuit_breaker import CircuitBreaker
from providers.base import Provider

if TYPE_CHECKING:
    from redis.asyncio import Redis, RedisCluster

    from gateway.streaming import SseStream

T = TypeVar("T")


class InFlight(Generic[T]):
    """What is open now (streams, requests), with a way to wait until none is."""

    def __init__(self) -> None:
        self._items: set[T] = set()
        self._empty = asyncio.Event()
        self._empty.set()

    def add(self, item: T) -> None:
        self._items.add(item)
        self._empty.clear()

    def discard(self, item: T) -> None:
        self._items.discard(item)
        if not self._items:
            self._empty.set()

    def __len__(self) -> int:
        return len(self._items)

    def snapshot(self) -> list[T]:
        return list(self._items)

    async def wait_empty(self, timeout_s: float) -> bool:
        """True when every one ended within `timeout_s`."""
        try:
            async with asyncio.timeout(timeout_s):
                await self._empty.wait()
        except TimeoutError:
            return False
        return True


@dataclass(frozen=True, slots=True)
class Clock:
    """Where the app's parts read the time, so that tests move time instead of waiting."""

    wall: Callable[[], float] = time.time  # seconds since the epoch: days, token expiry
    monotonic: Callable[[], float] = time.monotonic  # intervals: circuit-breaker cooldowns


@dataclass(slots=True)
class Shared:
    """Process-wide resources, kept across config reloads."""

    http: aiohttp.ClientSession
    redis: Redis | RedisCluster | None
    limiter: Limiter
    breaker: CircuitBreaker
    clock: Clock = field(default_factory=Clock)
    metrics: Metrics = field(default_factory=Metrics)
    streams: InFlight[SseStream] = field(default_factory=InFlight)  # for drain and metrics
    background: set[asyncio.Task[None]] = field(default_factory=set)
    token_secret: bytes = field(default_factory=lambda: os.urandom(32))
    draining: bool = False
    stream_log: StreamLog | None = None  # resumable streams' events (resume.enabled)
    # The resumable streams running in this process, by id, with their tenant: a stop
    # (DELETE) reaches them here.
    resumable: dict[str, tuple[str, SseStream]] = field(default_factory=dict)
    # Answers that go on after their client left (resume.continue_after_disconnect).
    answering: set[asyncio.Task[web.StreamResponse]] = field(default_factory=set)

    def __post_init__(self) -> None:
        self.metrics.open_streams.set_function(lambda: len(self.streams))


@dataclass(slots=True)
class GatewayState:
    config: GatewayConfig
    providers: dict[str, Provider]
    chains: Chains  # which chain of targets serves a request
    call_upstream: Handler  # the policy steps composed around the provider call
    redact: Redactor
    auth: Authenticator
    shared: Shared
    # Requests that started on this config, from the moment they read it: its providers
    # are closed after a reload only once none is left.
    requests: InFlight[object] = field(default_factory=InFlight)  # a token per request
    model_warnings: list[str] = field(default_factory=list)  # deprecated models configured


@dataclass(slots=True)
class StateRef:
    current: GatewayState


STATE = web.AppKey("state", StateRef)
