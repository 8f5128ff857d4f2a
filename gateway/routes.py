"""The public endpoints.  A stream request reads top-down:
parse → validate → resolve the route → run the policy chain → write events.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import re
import time
import uuid
from typing import Any

from aiohttp import web

from gateway.auth import Tenant
from gateway.schemas import ChatBody, GenerateBody, parse_body
from gateway.sse import error_response
from gateway.state import STATE, GatewayState
from gateway.streaming import StreamOutcome, write_stream
from policies.base import Call
from policies.limiter import tokens_to_settle
from policies.limits import Admission, Quota, estimate_tokens
from providers.errors import (
    GatewayError,
    InvalidRequest,
    PayloadTooLarge,
    RateLimited,
    UnsupportedMediaType,
)

log = logging.getLogger("gateway.access")

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


def add_routes(app: web.Application) -> None:
    app.router.add_post("/ai/stream/chat", chat)
    app.router.add_post("/ai/stream/generate", generate)
    app.router.add_get("/ai/stream/health", health)


async def chat(request: web.Request) -> web.StreamResponse:
    return await stream(request, ChatBody)


async def generate(request: web.Request) -> web.StreamResponse:
    return await stream(request, GenerateBody)


async def stream(
    request: web.Request, body_model: type[ChatBody] | type[GenerateBody]
) -> web.StreamResponse:
    state = _state(request)
    request_id = request_id_of(request)
    headers = {"X-Request-ID": request_id}
    started = time.monotonic()
    try:
        tenant = state.auth.authenticate(request)
        body = parse_body(
            body_model, await read_json(request), state.config.server.max_tokens_limit
        )
        name = tenant.chain_name(body.model, state.router.default_chain)
        chain = state.router.resolve(name)
        tenant.check_allowed(name)
        upstream_request = body.to_upstream()
        input_estimate = estimate_tokens(upstream_request.text_length())
        admission = await admit(state, tenant, input_estimate + upstream_request.max_tokens)
    except GatewayError as error:
        log.info("%s %s rejected %d: %s", request_id, request.path, error.client_status, error.code)
        return error_response(error, request_id, state.redact, {**headers, **error_headers(error)})

    if admission.quota is not None:
        headers.update(admission.quota.headers())
    call = Call.start(upstream_request, chain)
    outcome = StreamOutcome()
    try:
        return await write_stream(
            request,
            state.chain(call),
            outcome,
            request_id=request_id,
            keepalive_s=state.config.server.keepalive_seconds,
            redact=state.redact,
            headers=headers,
            done_extra=lambda: _chain_report(call),
        )
    finally:
        final = outcome.usage if outcome.outcome == "ok" else None
        used = tokens_to_settle(final, call.stats.usage, outcome.sent_chars, input_estimate)
        served_by = call.stats.models_used[-1] if call.stats.models_used else None
        await asyncio.shield(state.limiter.release(admission, used, served_by))
        state.counters.record(call.stats)
        log.info(
            "%s %s tenant=%s %s %d model=%s in=%d out=%d %.0fms",
            request_id,
            request.path,
            tenant.id,
            outcome.outcome,
            outcome.status,
            outcome.model,
            outcome.usage.input_tokens,
            outcome.usage.output_tokens,
            (time.monotonic() - started) * 1000,
        )


async def admit(state: GatewayState, tenant: Tenant, cost: int) -> Admission:
    """Reserve the request against the tenant's limits, or raise `RateLimited`."""
    decision = await state.limiter.admit(tenant.id, tenant.limits, cost)
    if decision.admission is not None:
        return decision.admission
    assert decision.refusal is not None
    refusal = decision.refusal
    raise RateLimitExceeded(
        f"Rate limit exceeded: {refusal.limit_name.replace('_', ' ')}. "
        f"Retry after {max(1, math.ceil(refusal.retry_after_s))} s.",
        retry_after=refusal.retry_after_s,
        quota=refusal.quota,
    )


class RateLimitExceeded(RateLimited):
    def __init__(self, message: str, *, retry_after: float, quota: Quota | None) -> None:
        super().__init__(message, retry_after=retry_after)
        self.quota = quota


def error_headers(error: GatewayError) -> dict[str, str]:
    quota = getattr(error, "quota", None)
    return quota.headers() if isinstance(quota, Quota) else {}


async def health(request: web.Request) -> web.Response:
    state = _state(request)
    return web.json_response(
        {
            "streaming_enabled": True,
            "model": state.router.primary_model(),
            "supports_streaming": True,
            "format": "Server-Sent Events (SSE)",
            "mode": "demo" if state.router.demo_mode else "live",
            "default_chain": state.router.default_chain,
            "models": state.router.names,
            "targets": state.breaker.snapshot(),
            "limiter": state.limiter.state,
            "auth": "api_key" if state.auth.required else "none",
        }
    )


async def read_json(request: web.Request) -> Any:
    if request.content_type != "application/json":
        raise UnsupportedMediaType(
            "Send the body as JSON with the header 'Content-Type: application/json'."
        )
    try:
        raw = await request.read()
    except web.HTTPRequestEntityTooLarge:
        limit = _state(request).config.server.max_body_bytes
        raise PayloadTooLarge(f"The request body is larger than {limit} bytes.") from None
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidRequest(f"The request body is not valid JSON ({exc}).") from None


def request_id_of(request: web.Request) -> str:
    given = request.headers.get("X-Request-ID", "")
    return given if _REQUEST_ID.match(given) else uuid.uuid4().hex


def _chain_report(call: Call) -> dict[str, Any]:
    """Extra `done` keys when the answer took more than one model or attempt."""
    stats, report = call.stats, dict[str, Any]()
    if len(stats.models_tried) > 1:
        report["models_tried"] = stats.models_tried
    if len(stats.models_used) > 1:
        report["models_used"] = stats.models_used
    if stats.retries:
        report["retries"] = stats.retries
    return report


def _state(request: web.Request) -> GatewayState:
    return request.app[STATE]
