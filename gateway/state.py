"""What a running app shares between requests, under one typed app key."""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web

from gateway.config import GatewayConfig
from gateway.routing import Router
from gateway.sse import Redactor
from policies.base import Handler
from policies.circuit_breaker import CircuitBreaker


@dataclass(slots=True)
class GatewayState:
    config: GatewayConfig
    router: Router
    chain: Handler
    redact: Redactor
    breaker: CircuitBreaker


STATE = web.AppKey("state", GatewayState)
