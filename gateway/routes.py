"""The public stream endpoints.  A stream request reads top-down in `_stream`:
authenticate → parse → validate → resolve the chain → admit (rate limits) → run the
policy chain → write events → settle the admission; then metrics and the access log.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
import uuid
from typing import Any

from aiohttp import web

from gateway import access_log
from gateway.admission import RateLimitExceeded, admit, error_headers
from gateway.metrics import RequestRecord
from gateway.schemas import ChatBody, GenerateBody, parse_body
from gateway.sse import error_response
from gateway.state import STATE, GatewayState
from gateway.streaming import SseStream, StreamOptions, StreamOutcome
from policies.base import Call
from policies.limiter import tokens_to_settle
from policies.limits import estimate_tokens
from providers.base import Usage
from providers.errors import (
    GatewayError,
    InvalidRequest,
    PayloadTooLarge,
    ShuttingDown,
    UnsupportedMediaType,
)

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


def add_routes(app: web.Application) -> None:
    app.router.add_post("/ai/stream/chat", chat)
    app.router.add_post("/ai/stream/generate", generate)


async def chat(request: web.Request) -> web.StreamResponse:
    return await stream(request, ChatBody)


async def generate(request: web.Request) -> web.StreamResponse:
    return await stream(request, GenerateBody)


async def stream(
    request: web.Request, body_model: type[ChatBody] | type[GenerateBody]
) -> web.StreamResponse:
    state = _state(request)
    record = RequestRecord(request_id_of(request), route=request.path)
    try:
        return await _stream(request, body_model, state, record)
    finally:
        record.duration_s = time.perf_counter() - record.started
        state.shared.metrics.observe(record)
        access_log.write(record)


async def _stream(
    request: web.Request,
    body_model: type[ChatBody] | type[GenerateBody],
    state: GatewayState,
    record: RequestRecord,
) -> web.StreamResponse:
    headers = {"X-Request-ID": record.request_id}
    try:
        if state.shared.draining:
            raise ShuttingDown()
        tenant = state.auth.authenticate(request)
        record.tenant = tenant.id
        body = parse_body(
            body_model, await read_json(request), state.config.server.max_tokens_limit
        )
        name = tenant.chain_name(body.model, state.router.default_chain)
        chain = state.router.resolve(name)
        tenant.check_allowed(name)
        upstream_request = body.to_upstream()
        input_estimate = estimate_tokens(upstream_request.text_length())
        admission = await admit(
            state.shared.limiter, tenant, input_estimate + upstream_request.max_tokens
        )
    except GatewayError as error:
        record.status, record.code = error.client_status, error.code
        record.rate_limit = error.limit if isinstance(error, RateLimitExceeded) else None
        headers.update(error_headers(error))
        return error_response(error, record.request_id, state.redact, headers)

    if admission.quota is not None:
        headers.update(admission.quota.headers())
    call = Call.start(upstream_request, chain)
    outcome = StreamOutcome(text=[] if tenant.log_content else None)
    options = StreamOptions(
        record.request_id,
        state.config.server.keepalive_seconds,
        state.redact,
        headers,
        done_extra=lambda: _chain_report(call),
    )
    sse = SseStream(request, state.chain(call), outcome, options)
    state.shared.streams.add(sse)
    state.streams.add(sse)
    state.shared.metrics.open_streams.inc()
    try:
        return await sse.run()
    finally:
        state.shared.streams.discard(sse)
        state.streams.discard(sse)
        state.shared.metrics.open_streams.dec()
        final = outcome.usage if outcome.outcome == "ok" else None
        used = tokens_to_settle(final, call.stats.usage, outcome.sent_chars, input_estimate)
        served_by = call.stats.models_used[-1] if call.stats.models_used else None
        await asyncio.shield(state.shared.limiter.release(admission, used, served_by))
        state.shared.counters.record(call.stats)
        _fill_record(record, outcome, call, used)
        if outcome.text is not None:
            prompt = "\n".join(m.content for m in upstream_request.messages)
            record.content = {"prompt": prompt, "completion": "".join(outcome.text)}


def _fill_record(record: RequestRecord, outcome: StreamOutcome, call: Call, used: Usage) -> None:
    record.outcome = outcome.outcome
    record.status = outcome.status
    record.code = outcome.error.code if outcome.error is not None else None
    record.model = outcome.model or next(reversed(call.stats.models_used), None)
    record.usage = used
    record.stats = call.stats
    record.upstream_wait_s = outcome.upstream_wait_s
    if outcome.first_content_at is not None:
        record.ttft_s = outcome.first_content_at - record.started


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
    return request.app[STATE].current
