"""Application factory and lifecycle: the one owner of every shared resource.

`create_app(config)` returns an aiohttp app whose start-up creates the HTTP session,
Redis client, limiter, provider clients, router and policy chain, and whose clean-up
closes them.  `reload` swaps in a new config (SIGHUP); `drain` ends the process's work
gracefully (SIGTERM): both keep every stream's accounting whole.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING

import aiohttp
from aiohttp import web

from gateway import telemetry
from gateway.admin_dashboard import add_admin_dashboard_routes
from gateway.build import build_state
from gateway.catalog import add_catalog_routes
from gateway.chat_completions_api import add_chat_completions_routes
from gateway.config import ConfigError, GatewayConfig, load_config
from gateway.cors import Cors
from gateway.http_errors import route_errors
from gateway.messages_api import add_messages_routes
from gateway.ops import add_ops_routes
from gateway.redis_client import redis_client
from gateway.resume.log import StreamLog
from gateway.resume.memory_log import MemoryStreamLog
from gateway.resume.routes import add_resume_routes
from gateway.routes import add_routes
from gateway.sdk_extras import add_sdk_extras_routes
from gateway.state import STATE, Clock, GatewayState, Shared, StateRef
from policies.admission.limiter import Limiter
from policies.circuit_breaker import CircuitBreaker
from providers.errors import ShuttingDown

if TYPE_CHECKING:
    from redis.asyncio import Redis, RedisCluster

    from policies.admission.redis_backend import RedisLimiter

log = logging.getLogger("gateway")

_CLOSE_OLD_AFTER_S = 600.0  # old providers are closed once their last stream ends, or then


def create_app(config: GatewayConfig, clock: Clock | None = None) -> web.Application:
    """The gateway app; `clock` is where its parts read the time (the system's by default)."""
    clock = clock or Clock()
    cors = Cors(config.server.cors)
    app = web.Application(
        client_max_size=config.server.max_body_bytes,
        middlewares=[cors.preflight, route_errors],  # preflight first: OPTIONS has no routes
    )
    app.on_response_prepare.append(cors.add_headers)
    add_routes(app)
    add_ops_routes(app, config)
    add_catalog_routes(app)
    add_messages_routes(app)
    add_chat_completions_routes(app)
    add_sdk_extras_routes(app)
    add_resume_routes(app)
    add_admin_dashboard_routes(app)

    async def lifecycle(app: web.Application) -> AsyncIterator[None]:
        connector = aiohttp.TCPConnector(limit=config.server.upstream_connections, limit_per_host=0)
        # No cookie jar: the session is every tenant's, and a cookie an upstream sets (a
        # CDN's) is nobody's to send back; the jar's look-ups also cost each request.
        no_cookies = aiohttp.DummyCookieJar()
        async with (
            aiohttp.ClientSession(connector=connector, cookie_jar=no_cookies) as http,
            redis_client(config.redis) as redis,
        ):
            limiter = build_limiter(config, redis, clock)
            breaker = CircuitBreaker(clock.monotonic)
            shared = Shared(http=http, redis=redis, limiter=limiter, breaker=breaker, clock=clock)
            shared.stream_log = build_stream_log(config, redis, clock)
            app[STATE] = StateRef(build_state(config, shared))
            try:
                await limiter.start()
                announce(app[STATE].current)
                yield
            finally:
                await limiter.aclose()
                for provider in app[STATE].current.providers.values():
                    await provider.aclose()

    app.cleanup_ctx.append(telemetry.tracing_lifecycle)  # first in, so the last to close
    app.cleanup_ctx.append(lifecycle)
    return app


def build_limiter(
    config: GatewayConfig, redis: Redis | RedisCluster | None, clock: Clock
) -> Limiter:
    backend: RedisLimiter | None = None
    if redis is not None:
        # imports redis-py (~7 MiB of memory), which only a gateway with a Redis needs
        from policies.admission.redis_backend import RedisLimiter

        backend = RedisLimiter(redis, config.redis.key_prefix, config.redis.usage_retention_days)
    return Limiter(
        backend,
        config.redis.on_error,
        config.redis.lease_ttl_s,
        usage_retention_days=config.redis.usage_retention_days,
        clock=clock.wall,
    )


def build_stream_log(
    config: GatewayConfig, redis: Redis | RedisCluster | None, clock: Clock
) -> StreamLog | None:
    """Where resumable streams' events are kept: Redis when configured, else here."""
    resume = config.resume
    if not resume.enabled:
        return None
    if redis is not None:
        from gateway.resume.redis_log import RedisStreamLog  # imports redis-py, as above

        return RedisStreamLog(
            redis,
            config.redis.key_prefix,
            resume.ttl_s,
            resume.max_events,
            config.redis.socket_timeout_ms,
        )
    log.info(
        "resumable streams are kept in this process (no redis.url): a stream resumes on "
        "this replica only, and at most %d events are held",
        resume.max_total_events,
    )
    return MemoryStreamLog(
        resume.ttl_s, resume.max_events, resume.max_total_events, clock.monotonic
    )


def announce(state: GatewayState) -> None:
    if state.chains.demo_mode:
        log.warning(
            "demo mode: no provider has credentials (set ANTHROPIC_API_KEY); "
            "every request is served by the offline demo provider"
        )
    else:
        log.info("primary model: %s", state.chains.primary_model())
    for warning in state.model_warnings:
        log.warning("%s", warning)
    if state.shared.limiter.redis is None:
        log.info("rate limits: in-process limiter (no REDIS_URL); limits hold per replica")
    else:
        log.info("rate limits: shared in Redis (on error: %s)", state.config.redis.on_error)
        if not state.config.auth.stream_token_secret:
            log.warning(
                "auth.stream_token_secret is not set: this replica signs EventSource stream "
                "tokens with a random secret of its own, so other replicas refuse its tokens; "
                "set AI_GATEWAY_TOKEN_SECRET to one long random value on every replica"
            )


async def reload(app: web.Application, path: str | Path) -> bool:
    """Load the config file again and switch to it; a bad file changes nothing.

    Streams already open finish on the config they started with.  Settings that belong to
    the listening socket or the process (`server.host`, `port`, `max_body_bytes`,
    `header_timeout_s`, `max_connections`, `cors`, `redis`, `metrics`, `admin`) need a
    restart; a change to them is ignored (to the last three, logged too).
    """
    ref = app[STATE]
    old = ref.current
    try:
        config = load_config(path)
        new = build_state(config, old.shared)
    except ConfigError as exc:
        log.error("config reload refused, keeping the running config: %s", exc)
        return False
    for section in ("redis", "metrics", "admin"):
        if getattr(config, section) != getattr(old.config, section):
            log.warning("config reload: %s changes take effect after a restart", section)
    ref.current = new
    log.info("config reloaded from %s", path)
    announce(new)
    task = asyncio.create_task(_close_when_idle(old))
    old.shared.background.add(task)
    task.add_done_callback(old.shared.background.discard)
    return True


async def _close_when_idle(state: GatewayState) -> None:
    await state.requests.wait_empty(_CLOSE_OLD_AFTER_S)
    for provider in state.providers.values():
        await provider.aclose()


async def drain(app: web.Application, deadline_s: float) -> None:
    """Let open streams finish for up to `deadline_s`, then end the rest with a
    `shutdown` error event; their slots and tokens are settled by their handlers."""
    shared = app[STATE].current.shared
    shared.draining = True
    if await shared.streams.wait_empty(deadline_s):
        return
    log.warning("drain deadline reached: ending %d open streams", len(shared.streams))
    for stream in shared.streams.snapshot():
        stream.end(ShuttingDown())
    await shared.streams.wait_empty(5)
