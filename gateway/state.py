"""What a running app shares between requests, under one typed app key."""

from __future__ import annotations

from dataclasses import dataclass, field

from aiohttp import web

from gateway.auth import Authenticator
from gateway.config import GatewayConfig
from gateway.routing import Router
from gateway.sse import Redactor
from policies.base import Handler
from policies.circuit_breaker import CircuitBreaker
from policies.counters import ResilienceCounters
from policies.limiter import Limiter


@dataclass(slots=True)
class GatewayState:
    config: GatewayConfig
    router: Router
    chain: Handler
    redact: Redactor
    breaker: CircuitBreaker
    auth: Authenticator
    limiter: Limiter
    counters: ResilienceCounters = field(default_factory=ResilienceCounters)


STATE = web.AppKey("state", GatewayState)
