"""Application factory and lifecycle: the one owner of every shared resource.

`create_app(config)` returns an aiohttp app whose start-up creates the HTTP session,
the provider clients, the router and the policy chain, and whose clean-up closes them.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import aiohttp
from aiohttp import web
from pydantic import ValidationError
from redis.asyncio import Redis, RedisCluster

from gateway.auth import Authenticator
from gateway.config import ConfigError, GatewayConfig
from gateway.config import describe_validation_error as _describe
from gateway.cors import Cors
from gateway.redis_client import redis_client
from gateway.routes import add_routes
from gateway.routing import Router
from gateway.sse import Redactor
from gateway.state import STATE, GatewayState
from policies.base import Step, compose
from policies.circuit_breaker import CircuitBreaker
from policies.date_context import DateContext
from policies.fallback import Fallback
from policies.limiter import Limiter
from policies.limiter_redis import RedisLimiter
from policies.retry import Retry
from policies.timeouts import Timeouts
from policies.upstream_quota import UpstreamQuota
from providers.base import Provider
from providers.demo import demo_provider_for
from providers.registry import ProviderContext, find_factory

log = logging.getLogger("gateway")


def create_app(config: GatewayConfig) -> web.Application:
    cors = Cors(config.server.cors)
    app = web.Application(
        client_max_size=config.server.max_body_bytes, middlewares=[cors.preflight]
    )
    app.on_response_prepare.append(cors.add_headers)
    add_routes(app)

    async def lifecycle(app: web.Application) -> AsyncIterator[None]:
        async with aiohttp.ClientSession() as http, redis_client(config.redis) as redis:
            providers = build_providers(config, ProviderContext(http=http))
            limiter = build_limiter(config, redis)
            try:
                app[STATE] = build_state(config, providers, limiter)
                await limiter.start()
                announce(app[STATE])
                yield
            finally:
                await limiter.aclose()
                for provider in providers.values():
                    await provider.aclose()

    app.cleanup_ctx.append(lifecycle)
    return app


def build_providers(config: GatewayConfig, context: ProviderContext) -> dict[str, Provider]:
    """One instance per configured provider; bad options raise `ConfigError` naming them."""
    providers: dict[str, Provider] = {}
    for name, provider_config in config.providers.items():
        try:
            factory = find_factory(provider_config.type)
            providers[name] = factory(name, provider_config.options(), context)
        except (ValueError, ValidationError) as exc:
            detail = _describe(exc) if isinstance(exc, ValidationError) else str(exc)
            raise ConfigError(f"providers.{name}: {detail}") from None
    return providers


async def check_providers(config: GatewayConfig) -> None:
    """Build and close every provider once, so that `check-config` catches bad options."""
    async with aiohttp.ClientSession() as http:
        for provider in build_providers(config, ProviderContext(http=http)).values():
            await provider.aclose()


def build_limiter(config: GatewayConfig, redis: Redis | RedisCluster | None) -> Limiter:
    backend = RedisLimiter(redis, config.redis.key_prefix) if redis is not None else None
    return Limiter(backend, config.redis.on_error, config.redis.lease_ttl_s)


def build_state(
    config: GatewayConfig, providers: dict[str, Provider], limiter: Limiter
) -> GatewayState:
    demo_mode = not any(p.has_credentials for p in providers.values())
    demo = demo_provider_for(providers) if demo_mode else None
    router = Router(config, providers, demo)
    breaker = CircuitBreaker()
    breaker.watch(target for chain in router.chains() for target in chain.targets)
    built = (build_step(name, config, breaker) for name in config.policies)
    steps = [step for step in built if step is not None]
    return GatewayState(
        config=config,
        router=router,
        chain=compose(steps),
        redact=Redactor(config.secrets()),
        breaker=breaker,
        auth=Authenticator(config),
        limiter=limiter,
    )


def build_step(name: str, config: GatewayConfig, breaker: CircuitBreaker) -> Step | None:
    """The policy step that `policies:` names, configured; None when switched off."""
    if name == "date_context":
        settings = config.server.date_context
        return DateContext(settings.timezone) if settings.enabled else None
    steps: dict[str, Step] = {
        "fallback": Fallback(),
        "retry": Retry(),
        "circuit_breaker": breaker,
        "upstream_quota": UpstreamQuota(
            {name: p.quota for name, p in config.providers.items() if p.quota is not None}
        ),
        "timeouts": Timeouts(),
    }
    return steps[name]


def announce(state: GatewayState) -> None:
    if state.router.demo_mode:
        log.warning(
            "demo mode: no provider has credentials (set ANTHROPIC_API_KEY); "
            "every request is served by the offline demo provider"
        )
    else:
        log.info("primary model: %s", state.router.primary_model())
    if state.limiter.redis is None:
        log.info("rate limits: in-process limiter (no REDIS_URL); limits hold per replica")
    else:
        log.info("rate limits: shared in Redis (on error: %s)", state.config.redis.on_error)
