"""Traces of the policy chain, through the OpenTelemetry API alone (never the SDK): one
CLIENT span per upstream attempt, and events on the request's span for what the chain
decided (a retry, a fallback or continuation, a target skipped while it cools down).

Whether a request is traced is the gateway's decision: it starts the request's span and
puts its tracer in the same OpenTelemetry context (`in_context`).  Without a tracer there,
or when the request's span is not recording (tracing off, or sampled out), an attempt's
stream is handed back as it is, and each event costs one look at the current span.

Names are the OpenTelemetry GenAI semantic conventions' where they have one, `gateway.*`
otherwise.  No prompt, completion or upstream error text is put on a span or event here:
only models, counts, codes and settings.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncGenerator
from typing import TYPE_CHECKING

from opentelemetry import context, trace
from opentelemetry.context import Context
from opentelemetry.trace import Span, SpanKind, StatusCode, Tracer
from opentelemetry.util.types import AttributeValue

from providers.base import Delta, StreamEnd, UpstreamRequest, Usage
from providers.errors import GatewayError, UpstreamError
from providers.tracing import gen_ai_provider_name

if TYPE_CHECKING:
    from policies.base import Call, Target

Attributes = dict[str, AttributeValue]

OPERATION = "gen_ai.operation.name"
PROVIDER = "gen_ai.provider.name"
SYSTEM = "gen_ai.system"  # the provider's name before the conventions' v1.37
REQUEST_MODEL = "gen_ai.request.model"
RESPONSE_MODEL = "gen_ai.response.model"
FINISH_REASONS = "gen_ai.response.finish_reasons"
ERROR_TYPE = "error.type"
TARGET = "gateway.target"
ATTEMPT = "gateway.attempt"

_TRACER = context.create_key("ai_gateway.tracer")


def in_context(tracer: Tracer, parent: Context) -> Context:
    """`parent` with `tracer`: the attempts made in this context get their spans from it."""
    return context.set_value(_TRACER, tracer, parent)


def note_request(request: UpstreamRequest, chain: str) -> None:
    """What the client asked for, on the request's span (the current one): the chain or
    alias it resolved to as the requested model, and the request's settings."""
    span = trace.get_current_span()
    if span.is_recording():
        span.set_attributes({REQUEST_MODEL: chain, **request_attributes(request)})


def request_attributes(request: UpstreamRequest) -> Attributes:
    """The GenAI request settings of `request` (its text never)."""
    attributes: Attributes = {
        OPERATION: "chat",
        "gen_ai.request.stream": True,
        "gen_ai.request.max_tokens": request.max_tokens,
    }
    for name, value in request.sampling().items():
        attributes[f"gen_ai.request.{name}"] = value
    return attributes


def usage_attributes(usage: Usage) -> Attributes:
    """Token counts as the conventions count them: input includes the prompt cache's."""
    attributes: Attributes = {
        "gen_ai.usage.input_tokens": usage.prompt_tokens,
        "gen_ai.usage.output_tokens": usage.output_tokens,
    }
    if usage.cache_read_tokens:
        attributes["gen_ai.usage.cache_read.input_tokens"] = usage.cache_read_tokens
    if usage.cache_write_tokens:
        attributes["gen_ai.usage.cache_write.input_tokens"] = usage.cache_write_tokens
    return attributes


def error_type(error: BaseException | None) -> str:
    """A low-cardinality name for how something failed: the gateway's error code."""
    if isinstance(error, GatewayError):
        return error.code
    if isinstance(error, GeneratorExit | asyncio.CancelledError):
        return "cancelled"  # closed or cancelled by its consumer before it ended
    return "_OTHER" if error is None else type(error).__qualname__


# --- one attempt ------------------------------------------------------------------------


def traced_attempt(
    call: Call, target: Target, deltas: AsyncGenerator[Delta, None]
) -> AsyncGenerator[Delta, None]:
    """`deltas`, one attempt at `target`, in a CLIENT span of its own when the request is
    traced; else `deltas` itself."""
    tracer = context.get_value(_TRACER)
    if not isinstance(tracer, Tracer) or not trace.get_current_span().is_recording():
        return deltas
    return _attempt(tracer, context.get_current(), call, target, deltas)


async def _attempt(
    tracer: Tracer,
    parent: Context,
    call: Call,
    target: Target,
    deltas: AsyncGenerator[Delta, None],
) -> AsyncGenerator[Delta, None]:
    """The span is current only while `deltas` runs (so the provider's request carries it
    as `traceparent`), never in the consumer's context across a yield; it ends exactly
    once, when the stream ends, fails or is closed."""
    span = _start_span(tracer, parent, call, target)
    request_span = trace.get_current_span(parent)
    inside = trace.set_span_in_context(span, parent)
    started, first = time.monotonic(), True
    end: StreamEnd | None = None
    failure: BaseException | None = None
    try:
        while True:
            token = context.attach(inside)
            try:
                delta = await anext(deltas)
            except StopAsyncIteration:
                return
            finally:
                context.detach(token)
            if first:
                first = False
                span.set_attribute(
                    "gen_ai.response.time_to_first_chunk", time.monotonic() - started
                )
            if isinstance(delta, StreamEnd):
                end = delta
                _note_answer(span, request_span, delta)
            yield delta
    except BaseException as error:
        failure = error
        raise
    finally:
        token = context.attach(inside)
        try:
            await deltas.aclose()
        finally:
            context.detach(token)
            if end is None:
                _note_failure(span, failure)
            span.end()


def _start_span(tracer: Tracer, parent: Context, call: Call, target: Target) -> Span:
    """The attempt's span, with what samplers may read set at its start; the request's
    span is told the provider family of its latest attempt."""
    provider = gen_ai_provider_name(target.provider)
    start: Attributes = {OPERATION: "chat", PROVIDER: provider, REQUEST_MODEL: target.model}
    span = tracer.start_span(f"chat {target.model}", parent, SpanKind.CLIENT, start)
    if span.is_recording():
        span.set_attributes(_attempt_attributes(call, target, provider))
    trace.get_current_span(parent).set_attributes({PROVIDER: provider, SYSTEM: provider})
    return span


def _attempt_attributes(call: Call, target: Target, provider: str) -> Attributes:
    attributes = request_attributes(call.request)
    attributes.update(
        {
            SYSTEM: provider,
            ATTEMPT: call.stats.attempts,
            TARGET: target.alias,
            "gateway.provider": target.provider.name,
        }
    )
    if call.request.continue_from:
        attributes["gateway.continuation"] = True
    return attributes


def _note_answer(span: Span, request_span: Span, end: StreamEnd) -> None:
    """The attempt answered: its model, finish reason and usage; the request's span gets
    the model and finish reason too (the answer the client got)."""
    answer: Attributes = {RESPONSE_MODEL: end.model}
    if end.stop_reason:
        answer[FINISH_REASONS] = (end.stop_reason,)
    request_span.set_attributes(answer)
    if span.is_recording():
        span.set_attributes({**answer, **usage_attributes(end.usage)})


def _note_failure(span: Span, failure: BaseException | None) -> None:
    """The attempt ended without its answer: how (a code), its upstream status, and what
    it had used."""
    if not span.is_recording():
        return
    kind = error_type(failure)
    attributes: Attributes = {ERROR_TYPE: kind, FINISH_REASONS: ("error",)}
    if isinstance(failure, UpstreamError):
        if failure.status is not None:
            attributes["http.response.status_code"] = failure.status
        if failure.usage is not None:
            attributes.update(usage_attributes(failure.usage))
    span.set_attributes(attributes)
    span.set_status(StatusCode.ERROR, kind)


# --- events on the request's span -------------------------------------------------------


def retry_event(call: Call, error: BaseException | None, wait_s: float) -> None:
    """The retry step waits `wait_s` and tries the same target again after `error`."""
    span = trace.get_current_span()
    if span.is_recording():
        attributes: Attributes = {
            TARGET: call.current_target.alias,
            ATTEMPT: call.stats.attempts,
            ERROR_TYPE: error_type(error),
            "gateway.retry.wait_s": wait_s,
        }
        span.add_event("gateway.retry", attributes)


def handover_event(failed: str, target: Target, error: GatewayError, sent_chars: int) -> None:
    """The fallback step moves from the target `failed` to `target` because of `error`:
    a fallback, or a continuation when text was already sent (`sent_chars`)."""
    span = trace.get_current_span()
    if span.is_recording():
        attributes: Attributes = {
            "gateway.fallback.from": failed,
            "gateway.fallback.to": target.alias,
            ERROR_TYPE: error.code,
        }
        if sent_chars:
            attributes["gateway.continuation.sent_chars"] = sent_chars
        name = "gateway.continuation" if sent_chars else "gateway.fallback"
        span.add_event(name, attributes)


def cooldown_event(target: Target, state: str, remaining_s: float) -> None:
    """The circuit breaker skips `target`: its circuit is open (or a probe is out)."""
    span = trace.get_current_span()
    if span.is_recording():
        attributes: Attributes = {
            TARGET: target.alias,
            "gateway.upstream": target.key,
            "gateway.circuit.state": state,
            "gateway.cooldown.remaining_s": remaining_s,
        }
        span.add_event("gateway.cooldown_skip", attributes)
