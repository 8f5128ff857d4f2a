"""What a running app shares between requests, under one typed app key."""

from __future__ import annotations

from dataclasses import dataclass, field

from aiohttp import web

from gateway.config import GatewayConfig
from gateway.routing import Router
from gateway.sse import Redactor
from policies.base import Handler
from policies.circuit_breaker import CircuitBreaker
from policies.counters import ResilienceCounters


@dataclass(slots=True)
class GatewayState:
    config: GatewayConfig
    router: Router
    chain: Handler
    redact: Redactor
    breaker: CircuitBreaker
    counters: ResilienceCounters = field(default_factory=ResilienceCounters)


STATE = web.AppKey("state", GatewayState)
