"""OpenTelemetry traces: off by default, on with the standard environment variables.

On when `OTEL_TRACES_EXPORTER` names an exporter (`otlp`, `console`) or an OTLP endpoint
variable is set (`OTEL_EXPORTER_OTLP_ENDPOINT`, `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`);
`OTEL_SDK_DISABLED=true` or `OTEL_TRACES_EXPORTER=none` keep it off.  The SDK reads the
rest itself, as for any instrumented service: endpoint, headers, time-out, compression,
sampler, resource (`OTEL_SERVICE_NAME`, `OTEL_RESOURCE_ATTRIBUTES`), batch sizes, limits.
Spans go out over OTLP/HTTP from a `BatchSpanProcessor`.

The app owns its tracer provider: `tracing_lifecycle` makes it at start-up and shuts it
down last at clean-up, which exports the spans still buffered.  No global provider is
installed, so apps in one process (tests) each trace on their own.  When off, the app has
none: a request costs one look-up, and the policy chain sees no tracer in its context.

Per request, `request_span` starts the SERVER span (continuing an incoming `traceparent`
through the global propagator) and makes it current, with the tracer beside it for the
policy chain's attempt spans (`policies.tracing`); `RequestSpan.end` puts the finished
`RequestRecord` on it.  The span says what the access log says, and like the log holds
prompts and completions only for tenants with `log_content: true`.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import AsyncIterator, Mapping
from contextvars import Token
from dataclasses import dataclass
from importlib.metadata import version
from typing import TYPE_CHECKING

import orjson
from aiohttp import web
from opentelemetry import context, propagate, trace
from opentelemetry.context import Context
from opentelemetry.trace import Span, SpanKind, StatusCode, Tracer

from gateway.metrics import RequestRecord
from policies.tracing import Attributes, in_context, usage_attributes

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider

log = logging.getLogger("gateway.telemetry")

SERVICE_NAME = "ai-gateway"  # unless OTEL_SERVICE_NAME or OTEL_RESOURCE_ATTRIBUTES say
ENDPOINTS = ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")


@dataclass(frozen=True, slots=True)
class Tracing:
    """The app's tracer provider (its exporters and their buffers) and its tracer."""

    provider: TracerProvider
    tracer: Tracer


TRACING = web.AppKey("tracing", Tracing)


# --- on or off, and set-up --------------------------------------------------------------


def wanted_exporters(environ: Mapping[str, str]) -> list[str]:
    """The exporters the environment asks for; none means tracing is off."""
    if environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return []
    named = environ.get("OTEL_TRACES_EXPORTER", "")
    names = [name.strip().lower() for name in named.split(",") if name.strip()]
    if not names and any(environ.get(variable, "").strip() for variable in ENDPOINTS):
        names = ["otlp"]  # an endpoint alone says where OTLP goes, so OTLP is wanted
    return [name for name in names if name != "none"]


def start_tracing(environ: Mapping[str, str] = os.environ) -> Tracing | None:
    """A tracer provider for what `environ` asks, or None when tracing is off.  The SDK
    and its exporter are imported only then: off, they cost neither start-up time nor
    memory (about 0.2 s and 6 MiB)."""
    named = wanted_exporters(environ)
    if not named:
        return None
    from gateway import tracing_sdk

    provider = tracing_sdk.provider(named, environ, SERVICE_NAME)
    if provider is None:
        return None
    return Tracing(provider, provider.get_tracer("ai_gateway", version("ai-stream-gateway")))


async def tracing_lifecycle(app: web.Application) -> AsyncIterator[None]:
    """Tracing for the app's life (a clean-up context, entered first so that it closes last,
    after every stream's span has ended): the buffered spans are exported at shutdown, in
    a thread, since the export is blocking HTTP."""
    tracing = start_tracing()
    if tracing is None:
        yield
        return
    app[TRACING] = tracing
    service = tracing.provider.resource.attributes.get("service.name")
    log.info("tracing on: OpenTelemetry spans of service %s", service)
    try:
        yield
    finally:
        await asyncio.to_thread(tracing.provider.shutdown)


# --- the request's span -----------------------------------------------------------------


class RequestSpan:
    """A request that is not traced: ending it does nothing."""

    def end(self, record: RequestRecord) -> None:
        """Put the finished record on the span and end it (exactly once)."""


NOT_TRACED = RequestSpan()


class _TracedRequest(RequestSpan):
    """A SERVER span, current in the handler's context from its start until `end`."""

    def __init__(self, span: Span, token: Token[Context]) -> None:
        self._span = span
        self._token = token

    def end(self, record: RequestRecord) -> None:
        try:
            if self._span.is_recording():
                self._span.set_attributes(record_attributes(record))
                if record.outcome == "error" or record.status >= 500:
                    self._span.set_status(StatusCode.ERROR, record.code)
        finally:
            context.detach(self._token)
            self._span.end()


def request_span(request: web.Request) -> RequestSpan:
    """Start the request's SERVER span (a child of the caller's `traceparent`, if any) and
    make it current for the handler; `NOT_TRACED` when tracing is off."""
    tracing = request.config_dict.get(TRACING)
    if tracing is None:
        return NOT_TRACED
    parent = propagate.extract(request.headers)
    resource = request.match_info.route.resource
    route = resource.canonical if resource is not None else request.path
    start: Attributes = {
        "http.request.method": request.method,
        "http.route": route,
        "url.path": request.path,  # never the query: a GET carries its prompt there
        "url.scheme": request.scheme,
    }
    span = tracing.tracer.start_span(f"{request.method} {route}", parent, SpanKind.SERVER, start)
    current = in_context(tracing.tracer, trace.set_span_in_context(span, parent))
    return _TracedRequest(span, context.attach(current))


def record_attributes(record: RequestRecord) -> Attributes:
    """What the access log line says of the request, in the conventions' names."""
    attributes: Attributes = {
        "gen_ai.operation.name": "chat",
        "gateway.request_id": record.request_id,
        "gateway.outcome": record.outcome,
    }
    if record.tenant != "-":
        attributes["gateway.tenant"] = record.tenant
    if record.status:
        attributes["http.response.status_code"] = record.status
    if record.code is not None:
        attributes["error.type"] = record.code
    if record.model is not None:
        attributes["gen_ai.response.model"] = record.model
    if record.usage is not None:
        attributes.update(usage_attributes(record.usage))
    if record.stats is not None:
        attributes["gateway.attempts"] = record.stats.attempts
        attributes["gateway.retries"] = record.stats.retries
        attributes["gateway.fallbacks"] = record.stats.fallbacks
        attributes["gateway.continuations"] = record.stats.continuations
    if record.content is not None:
        attributes.update(content_attributes(record.content, record.outcome))
    return attributes


def content_attributes(content: Mapping[str, str], outcome: str) -> Attributes:
    """An opted-in tenant's prompt and completion, as the conventions' input and output
    messages (JSON): the prompt as the access log has it, its messages' text joined."""
    prompt = {"role": "user", "parts": [{"type": "text", "content": content["prompt"]}]}
    answer = {
        "role": "assistant",
        "parts": [{"type": "text", "content": content["completion"]}],
        "finish_reason": "stop" if outcome == "ok" else "error",
    }
    return {
        "gen_ai.input.messages": orjson.dumps([prompt]).decode(),
        "gen_ai.output.messages": orjson.dumps([answer]).decode(),
    }
