"""The public stream endpoints.  A stream request reads top-down in `_stream`:
authenticate → parse → validate → resolve the chain → admit (rate limits) → run the
policy chain → write events → settle the admission; then metrics and the access log.
"""

from __future__ import annotations

import asyncio
import logging
import re
import secrets
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from typing import Any

import orjson
from aiohttp import web

from gateway import access_log, telemetry
from gateway.formats import SseFormat, StreamFormat, TextFormat
from gateway.metrics import RequestRecord
from gateway.resume.recorder import Recorder
from gateway.schemas import ChatBody, GenerateBody, RequestBody, parse_body
from gateway.state import STATE, GatewayState
from gateway.streaming import SseStream, StreamOptions, StreamOutcome
from gateway.ui_message_stream import UiFormatChatBody, UiMessageFormat
from policies.admission import admit
from policies.admission.limiter import tokens_to_settle
from policies.base import Call, most_expensive, price_of
from providers.base import MICRO, UpstreamRequest, Usage, estimate_tokens
from providers.errors import (
    BodyTimeout,
    GatewayError,
    InvalidRequest,
    InvalidText,
    PayloadTooLarge,
    RateLimited,
    ShuttingDown,
    StreamStopped,
    UnsupportedMediaType,
)

log = logging.getLogger(__name__)
EVENT_STREAM = "text/event-stream"
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


BodyModel = type[RequestBody]
BodyReader = Callable[[web.Request], Awaitable[Any]]


def add_routes(app: web.Application) -> None:
    app.router.add_post("/ai/stream/chat", chat)
    app.router.add_post("/ai/stream/generate", generate)
    app.router.add_get("/ai/stream/generate", generate_for_event_source)
    app.router.add_post("/ai/stream/token", stream_token)


async def chat(request: web.Request) -> web.StreamResponse:
    if request.query.get("format") == "ui":
        return await stream(request, UiFormatChatBody, read_json)
    return await stream(request, ChatBody, read_json)


async def generate(request: web.Request) -> web.StreamResponse:
    return await stream(request, GenerateBody, read_json)


async def generate_for_event_source(request: web.Request) -> web.StreamResponse:
    """`GET ?prompt=...`: the same stream for the browser's EventSource, with `id:` fields;
    a tenant authenticates with `?token=` from `POST /ai/stream/token`."""
    return await stream(request, GenerateBody, read_query)


async def stream_token(request: web.Request) -> web.Response:
    """Exchange a tenant key (in a header) for a short-lived token usable in a URL."""
    state = _state(request)
    try:
        tenant = state.auth.authenticate(request)
    except GatewayError as error:
        body = {"error": error.message, "code": error.code}
        return web.json_response(body, status=error.client_status)
    tokens = state.auth.tokens
    expires_in = int(tokens.ttl_s)  # whole seconds, as the docs show it
    return web.json_response({"token": tokens.issue(tenant.id), "expires_in": expires_in})


@dataclass(frozen=True, slots=True)
class Dialect:
    """How a route speaks, where it is not the guide's schema: the shape of its errors
    before the stream, the format of its answer (known once the body is read: a client
    may ask for a whole answer, and the first event may name the model that serves), and
    whether the date is added to its system prompt."""

    errors: StreamFormat
    answer: Callable[[Any, Call], StreamFormat]
    date_context: bool = True
    # The client's headers that travel with its own body to a target of its API.
    passed_headers: tuple[str, ...] = ()


async def stream(
    request: web.Request, body_model: BodyModel, read: BodyReader, dialect: Dialect | None = None
) -> web.StreamResponse:
    state = _state(request)
    serving = _serve(request, body_model, read, state, dialect)
    if state.shared.stream_log is None or not state.config.resume.continue_after_disconnect:
        return await serving
    # A client that leaves cancels this handler, not its answer, which goes on into the
    # stream's log for a resume to pick up.
    task = asyncio.ensure_future(serving)
    answering = state.shared.answering
    answering.add(task)
    task.add_done_callback(answering.discard)
    return await asyncio.shield(task)


async def _serve(
    request: web.Request,
    body_model: BodyModel,
    read: BodyReader,
    state: GatewayState,
    dialect: Dialect | None,
) -> web.StreamResponse:
    record = RequestRecord(request_id_of(request), route=request.path)
    in_flight = object()
    state.requests.add(in_flight)  # this config's providers stay open until it ends
    span = telemetry.request_span(request)  # current until it ends with the record
    try:
        return await _stream(request, body_model, read, state, record, dialect)
    finally:
        state.requests.discard(in_flight)
        record.duration_s = time.perf_counter() - record.started
        state.shared.metrics.observe(record)
        access_log.write(record)
        span.end(record)


async def _stream(
    request: web.Request,
    body_model: BodyModel,
    read: BodyReader,
    state: GatewayState,
    record: RequestRecord,
    dialect: Dialect | None,
) -> web.StreamResponse:
    headers = {"X-Request-ID": record.request_id}
    wire = dialect.errors if dialect is not None else stream_format(request)
    try:
        if state.shared.draining:
            raise ShuttingDown()
        tenant = state.auth.authenticate(request, allow_token=request.method == "GET")
        record.tenant = tenant.id
        body = parse_body(body_model, await read(request), state.config.server.max_tokens_limit)
        name = tenant.chain_name(body.model, state.chains.default_chain)
        chain = state.chains.resolve(name, tenant.allowed)
        tenant.check_allowed(name)
        passed = dialect.passed_headers if dialect is not None else ()
        upstream_request = with_passed_headers(body.to_upstream(), request, passed)
        input_estimate = estimate_tokens(upstream_request.text_length())
        cost = input_estimate + upstream_request.max_tokens
        spend = 0
        if tenant.limits.spend_limited:  # the worst case: all of max_tokens, dearest model
            worst = Usage(input_estimate, upstream_request.max_tokens)
            spend = most_expensive(chain, worst)
        admission = await admit(state.shared.limiter, tenant.id, tenant.limits, cost, spend)
    except GatewayError as error:
        record.status, record.code = error.client_status, error.code
        record.rate_limit = error.limit if isinstance(error, RateLimited) else None
        headers.update(error.headers)
        return wire.error_response(error, record.request_id, state.redact, headers)

    # From here the admission is this handler's: every way out goes through the release.
    call = Call.start(upstream_request, chain, dialect.date_context if dialect else True)
    if dialect is not None:
        wire = dialect.answer(body, call)
    outcome = StreamOutcome(text=[] if tenant.log_content else None)
    sse: SseStream | None = None
    recorder: Recorder | None = None
    try:
        if admission.quota is not None:
            headers.update(admission.quota.headers())
        recorder = await _recorder(state, tenant.id, wire, lambda: _stop(sse))
        if recorder is not None:
            headers["X-Stream-ID"] = recorder.stream_id
            await _remember_chat(state, tenant.id, body, recorder.stream_id)
            wire = SseFormat() if isinstance(wire, SseFormat) else wire  # its ids number
        options = StreamOptions(
            record.request_id,
            state.config.server.keepalive_seconds,
            state.redact,
            headers,
            done_extra=lambda: _chain_report(call),
            cost_usd=lambda usage: _cost_usd(call, usage),
            format=wire,
            late_headers=lambda: _adjustment_headers(call),
            recorder=recorder,
            continue_after_disconnect=state.config.resume.continue_after_disconnect,
        )
        sse = SseStream(request, state.call_upstream(call), outcome, options)
        state.shared.streams.add(sse)
        if recorder is not None:
            state.shared.resumable[recorder.stream_id] = (tenant.id, sse)
        return await sse.run()
    finally:
        if sse is not None:
            state.shared.streams.discard(sse)
        if recorder is not None:
            state.shared.resumable.pop(recorder.stream_id, None)
        final = outcome.usage if outcome.outcome == "ok" else None
        used = tokens_to_settle(final, call.stats.usage, outcome.sent_chars, input_estimate)
        # The record is complete before the settle script's round trip: a client that hangs
        # up right after `done` cancels this handler there, and the log must still be true.
        spent = _micro_usd(call, used)
        _fill_record(record, outcome, call, used, spent)
        if outcome.text is not None:
            prompt = "\n".join(m.content for m in upstream_request.messages)
            record.content = {"prompt": prompt, "completion": "".join(outcome.text)}
        # The limiter finishes a release whose caller was cancelled (the client left).
        await state.shared.limiter.release(admission, used, call.stats.served_by, spent or 0)


async def _recorder(
    state: GatewayState, tenant: str, wire: StreamFormat, on_stop: Callable[[], None]
) -> Recorder | None:
    """A resumable stream's recorder, when resume is on, the answer is an event stream,
    and its log can keep it (the in-process store may be full: the stream goes on)."""
    stream_log = state.shared.stream_log
    if stream_log is None or not wire.headers.get("Content-Type", "").startswith(EVENT_STREAM):
        return None
    stream_id = secrets.token_urlsafe(18)
    try:
        kept = await stream_log.create(tenant, stream_id)
    except Exception:
        log.warning("the stream log failed: this stream cannot be resumed", exc_info=True)
        return None
    if not kept:
        log.warning("the stream log is full (resume.max_total_events): not resumable")
        return None
    return Recorder(stream_log, tenant, stream_id, on_stop)


async def _remember_chat(state: GatewayState, tenant: str, body: Any, stream_id: str) -> None:
    """A `useChat` request's chat id → this stream, for its resume (`resume.routes`)."""
    chat_id = getattr(body, "chat_id", None)  # (only useChat's body has one)
    if chat_id and state.shared.stream_log is not None:
        try:
            await state.shared.stream_log.set_chat(tenant, chat_id, stream_id)
        except Exception:
            log.warning("the stream log failed: this chat cannot be resumed", exc_info=True)


def _stop(sse: SseStream | None) -> None:
    """A stop asked on another replica reached this stream."""
    if sse is not None:
        sse.end(StreamStopped())


def _micro_usd(call: Call, used: Usage) -> int | None:
    """What `used` cost: each attempt's usage at its own target's price (counted as the
    chain went), and whatever `used` holds beyond it (an estimate, for a stream cut before
    the upstream counted) at the price of the model that served.  None when nothing of it
    had a price."""
    stats = call.stats
    price = price_of(call.chain, stats.served_by)
    if price is None and not stats.priced:
        return None
    beyond = Usage(
        max(used.input_tokens - stats.usage.input_tokens, 0),
        max(used.output_tokens - stats.usage.output_tokens, 0),
    )
    return stats.micro_usd + (price.micro_usd(beyond) if price is not None else 0)


def _cost_usd(call: Call, usage: Usage) -> float | None:
    micro = _micro_usd(call, usage)
    return micro / MICRO if micro is not None else None


def _fill_record(
    record: RequestRecord, outcome: StreamOutcome, call: Call, used: Usage, spent: int | None
) -> None:
    record.outcome = outcome.outcome
    record.status = outcome.status
    record.code = outcome.error.code if outcome.error is not None else None
    record.model = outcome.model or call.stats.served_by
    record.usage = used
    record.cost_usd = spent / MICRO if spent is not None else None
    record.stats = call.stats
    record.upstream_wait_s = outcome.upstream_wait_s
    if outcome.first_content_at is not None:
        record.ttft_s = outcome.first_content_at - record.started


def with_passed_headers(
    upstream: UpstreamRequest, request: web.Request, names: tuple[str, ...]
) -> UpstreamRequest:
    """`upstream` with the headers `names` of `request` on its native body."""
    native = upstream.native
    if native is None:
        return upstream
    passed = {name: request.headers[name] for name in names if name in request.headers}
    return replace(upstream, native=replace(native, headers=passed)) if passed else upstream


async def read_json(request: web.Request) -> Any:
    if request.content_type != "application/json":
        raise UnsupportedMediaType(
            "Send the body as JSON with the header 'Content-Type: application/json'."
        )
    server = _state(request).config.server
    try:
        async with asyncio.timeout(server.body_timeout_s):
            raw = await request.read()
    except web.HTTPRequestEntityTooLarge:
        raise PayloadTooLarge(
            f"The request body is larger than {server.max_body_bytes} bytes."
        ) from None
    except TimeoutError:
        raise BodyTimeout(
            f"The request body did not arrive within {server.body_timeout_s:g} s."
        ) from None
    return decode_json(raw)


def decode_json(raw: bytes) -> Any:
    """JSON → Python, refusing what would fail later: nesting deeper than 1,024 levels
    (orjson's limit, far below the interpreter's stack) and lone UTF-16 surrogates,
    which are not text and cannot be sent to any upstream."""
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        try:
            raw.decode()
        except UnicodeDecodeError:
            raise InvalidRequest("The request body is not valid UTF-8.") from None
        if "surrogate" in exc.msg:
            raise InvalidText(
                "The request contains a lone UTF-16 surrogate escape (\\ud800-\\udfff), "
                "which is not text; send valid Unicode."
            ) from None
        if "depth" in exc.msg:
            raise InvalidRequest(
                "The request body is nested more than 1024 levels deep; flatten it."
            ) from None
        raise InvalidRequest(f"The request body is not valid JSON ({exc}).") from None


async def read_query(request: web.Request) -> dict[str, str]:
    """The EventSource form of a generate body: the same fields as query parameters."""
    fields = ("prompt", "max_tokens", "temperature", "system_prompt", "model", "top_p", "top_k")
    return {name: request.query[name] for name in fields if name in request.query}


def stream_format(request: web.Request) -> StreamFormat:
    """`?format=text`: only the text (the AI SDK's text protocol); `?format=ui`: the AI
    SDK's UI message stream (`useChat`); GET adds SSE `id:`s to the guide's events."""
    if request.query.get("format") == "text":
        return TextFormat()
    if request.query.get("format") == "ui":
        return UiMessageFormat()
    return SseFormat(event_ids=request.method == "GET")


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


def served_model(call: Call) -> str:
    """The model that produced the answer so far (after any fallback)."""
    return call.stats.served_by or call.current_target.model


def _adjustment_headers(call: Call) -> dict[str, str]:
    """What the gateway left out of the request because the model refuses it."""
    dropped = call.stats.dropped_params
    return {"X-Gateway-Dropped-Params": ", ".join(sorted(dropped))} if dropped else {}


def _state(request: web.Request) -> GatewayState:
    return request.app[STATE].current
