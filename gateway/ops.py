"""Endpoints for the people and machines that run the gateway.

- `/ai/stream/health`: the integration guide's shape, plus component status;
- `/livez` (the process answers) and `/readyz` (config loaded, Redis answering when one
  is configured, not draining) for orchestrators;
- health says how many workers serve the port and which one answered (`/readyz` too,
  when there are several);
- `/metrics`: Prometheus text; on the main port it needs the admin key when one is set,
  or it is served on its own port (`metrics.port`);
- `/admin/usage`: tokens and requests by tenant, day and model (admin key).
"""

from __future__ import annotations

import datetime as dt
import hmac
import json
import os
from importlib import resources
from typing import Any

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST

from gateway.auth import ANONYMOUS, presented_key
from gateway.config import GatewayConfig
from gateway.state import STATE, GatewayState
from gateway.workers import worker_of
from policies.admission.limits import DAY_MS


def add_ops_routes(app: web.Application, config: GatewayConfig) -> None:
    app.router.add_get("/ai/stream/health", health)
    app.router.add_get("/livez", livez)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/admin/usage", admin_usage)
    if config.metrics.enabled and config.metrics.port == 0:
        app.router.add_get("/metrics", metrics)
    if config.server.demo_page:
        app.router.add_get("/", demo_page)


async def demo_page(request: web.Request) -> web.Response:
    """The demo chat page: plain HTML and JavaScript, shipped inside the package."""
    page = resources.files("gateway").joinpath("static/index.html").read_bytes()
    return web.Response(body=page, content_type="text/html", charset="utf-8")


async def health(request: web.Request) -> web.Response:
    state = _state(request)
    return web.json_response(
        {
            "streaming_enabled": True,
            "model": state.chains.primary_model(),
            "supports_streaming": True,
            "format": "Server-Sent Events (SSE)",
            "mode": "demo" if state.chains.demo_mode else "live",
            "default_chain": state.chains.default_chain,
            "models": state.chains.names,
            "providers": {
                name: {"credentials": p.has_credentials} for name, p in state.providers.items()
            },
            "targets": state.shared.breaker.snapshot(),
            "limiter": state.shared.limiter.state,
            "auth": "api_key" if state.auth.required else "none",
            "open_streams": len(state.shared.streams),
            "draining": state.shared.draining,
            "warnings": state.model_warnings,  # deprecated (or allowed retired) models
            "resume": _resume_health(state),
            **_worker_health(request),
        }
    )


def _worker_health(request: web.Request) -> dict[str, int]:
    """How many workers serve the port, and which one (index and pid) answered."""
    worker = worker_of(request.app)
    return {"workers": worker.count, "worker": worker.index, "pid": os.getpid()}


def _resume_health(state: GatewayState) -> dict[str, object]:
    """Whether streams are resumable, and what their store holds (in process: how much)."""
    stream_log = state.shared.stream_log
    if stream_log is None:
        return {"enabled": False}
    running = len(state.shared.resumable)
    return {"enabled": True, "running_here": running, **stream_log.describe()}


async def livez(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    """Ready when this replica serves requests.  Redis down makes it unready only with
    `on_error: fail_closed`: with `fail_open` the replica still serves (in-process
    limits), and pulling every replica out of service would defeat fail-open.  Health
    and this answer's `degraded` still say Redis is down."""
    state = _state(request)
    problems: list[str] = []
    degraded: list[str] = []
    if state.shared.draining:
        problems.append("draining")
    if state.shared.redis is not None:
        from redis.exceptions import RedisError  # redis-py is loaded only with a Redis

        try:
            await state.shared.redis.ping()
        except (RedisError, OSError, TimeoutError):
            fail_closed = state.config.redis.on_error == "fail_closed"
            (problems if fail_closed else degraded).append("redis not answering")
    status = 503 if problems else 200
    return web.json_response(
        {
            "ready": not problems,
            "problems": problems,
            "degraded": degraded,
            **(_worker_health(request) if worker_of(request.app).several else {}),
        },
        status=status,
    )


async def metrics(request: web.Request) -> web.Response:
    state = _state(request)
    _require_admin(request, state, optional=True)
    return metrics_response(state)


def metrics_response(state: GatewayState) -> web.Response:
    response = web.Response(body=state.shared.metrics.render())
    response.content_type = CONTENT_TYPE_LATEST.split(";")[0]
    return response


async def admin_usage(request: web.Request) -> web.Response:
    """`?day=YYYY-MM-DD` (today, UTC, by default) and optionally `&tenant=<id>`."""
    state = _state(request)
    _require_admin(request, state)
    try:
        day = dt.date.fromisoformat(request.query.get("day") or _today(state))
    except ValueError:
        raise _json_error(400, "day must be YYYY-MM-DD") from None
    midnight = dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC)
    index = int(midnight.timestamp() * 1000) // DAY_MS
    tenants = [t.id for t in state.config.tenants] + [ANONYMOUS]
    wanted = request.query.get("tenant")
    if wanted:
        if wanted not in tenants:
            raise _json_error(404, f"unknown tenant '{wanted}'")
        tenants = [wanted]
    report: dict[str, Any] = {}
    for tenant in tenants:
        report[tenant] = (await state.shared.limiter.usage(tenant, index)).as_dict()
    return web.json_response({"day": day.isoformat(), "tenants": report})


def _require_admin(request: web.Request, state: GatewayState, optional: bool = False) -> None:
    expected = state.config.admin.api_key
    if not expected:
        if optional:
            return
        raise _json_error(403, "the admin API is off: set admin.api_key (from the environment)")
    given = presented_key(request)
    if not hmac.compare_digest(given.encode(), expected.encode()):
        raise _json_error(401, "admin key required")


def _json_error(status: int, message: str) -> web.HTTPException:
    classes: dict[int, type[web.HTTPException]] = {
        400: web.HTTPBadRequest,
        401: web.HTTPUnauthorized,
        403: web.HTTPForbidden,
        404: web.HTTPNotFound,
    }
    return classes[status](text=json.dumps({"error": message}), content_type="application/json")


def _today(state: GatewayState) -> str:
    return dt.datetime.fromtimestamp(state.shared.clock.wall(), dt.UTC).date().isoformat()


def _state(request: web.Request) -> GatewayState:
    return request.app[STATE].current
