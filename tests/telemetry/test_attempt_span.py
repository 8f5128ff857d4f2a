"""One attempt's CLIENT span around the provider's async generator (`policies.tracing`):
current while the provider runs, never in the consumer's context across a yield, and
ended exactly once however the stream ends.  A real provider implementation that notes
the current span each time it runs; spans kept in memory by the SDK."""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator, Iterator

import pytest
from opentelemetry import context, trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Span, SpanKind, StatusCode

from policies.base import Call, Chain, Target, call_provider
from policies.tracing import in_context
from providers.base import Delta, Message, ModelRef, StreamEnd, TextDelta, UpstreamRequest, Usage
from providers.errors import UpstreamOverloaded

REQUEST = UpstreamRequest(messages=(Message("user", "hello"),), max_tokens=64, temperature=0.5)


class Probe:
    """A provider that streams `deltas` (then fails with `error`, if given), noting which
    span is current each time its stream runs."""

    name = "probe"
    has_credentials = True

    def __init__(self, deltas: list[Delta], error: Exception | None = None) -> None:
        self.deltas, self.error = deltas, error
        self.current: list[Span] = []

    async def stream(self, request: UpstreamRequest, model: ModelRef) -> AsyncGenerator[Delta]:
        try:
            for delta in self.deltas:
                self.current.append(trace.get_current_span())
                yield delta
            if self.error is not None:
                raise self.error
        finally:
            self.current.append(trace.get_current_span())  # when it is closed, too

    async def aclose(self) -> None:
        pass


ANSWER: list[Delta] = [TextDelta("Hi"), StreamEnd("probe-1", "end_turn", Usage(5, 1))]


@pytest.fixture
def exported() -> InMemorySpanExporter:
    return InMemorySpanExporter()


@pytest.fixture
def request_span(exported: InMemorySpanExporter) -> Iterator[Span]:
    """A traced request's span, current with its tracer beside it, as the gateway makes it."""
    provider = TracerProvider(shutdown_on_exit=False)
    provider.add_span_processor(SimpleSpanProcessor(exported))
    tracer = provider.get_tracer("test")
    span = tracer.start_span("request", kind=SpanKind.SERVER)
    token = context.attach(in_context(tracer, trace.set_span_in_context(span)))
    yield span
    context.detach(token)
    span.end()
    provider.shutdown()


def call_to(probe: Probe) -> Call:
    return Call.start(REQUEST, Chain("default", (Target("probe-alias", probe, "probe-1"),)))


def attempts(exported: InMemorySpanExporter) -> list[ReadableSpan]:
    return [s for s in exported.get_finished_spans() if s.kind == SpanKind.CLIENT]


async def test_the_span_is_current_in_the_provider_and_never_leaks_to_the_consumer(
    exported, request_span
):
    probe = Probe(ANSWER)
    stream = call_provider(call_to(probe))
    async for _ in stream:
        assert trace.get_current_span() is request_span  # after each yield

    (attempt,) = attempts(exported)
    assert attempt.parent is not None
    assert attempt.parent.span_id == request_span.get_span_context().span_id
    assert {s.get_span_context().span_id for s in probe.current} == {attempt.context.span_id}
    assert attempt.attributes is not None
    assert attempt.attributes["gen_ai.request.temperature"] == 0.5
    assert attempt.attributes["gen_ai.usage.input_tokens"] == 5
    assert attempt.status.status_code == StatusCode.UNSET


async def test_a_stream_closed_before_its_end_ends_its_span_once_as_cancelled(
    exported, request_span, caplog
):
    caplog.set_level(logging.WARNING)
    probe = Probe([TextDelta("a"), TextDelta("b"), *ANSWER])
    stream = call_provider(call_to(probe))
    await anext(stream)
    await stream.aclose()
    await stream.aclose()

    (attempt,) = attempts(exported)
    assert attempt.attributes is not None
    assert attempt.attributes["error.type"] == "cancelled"
    assert attempt.status.status_code == StatusCode.ERROR
    assert probe.current[-1].get_span_context().span_id == attempt.context.span_id  # closed
    assert trace.get_current_span() is request_span
    assert "ended span" not in caplog.text and "detach" not in caplog.text


async def test_a_stream_closed_after_its_end_is_no_failure(exported, request_span):
    stream = call_provider(call_to(Probe(ANSWER)))
    assert await anext(stream) == ANSWER[0]
    assert await anext(stream) == ANSWER[1]
    await stream.aclose()  # as the fallback step does once it has the end

    (attempt,) = attempts(exported)
    assert attempt.attributes is not None
    assert "error.type" not in attempt.attributes
    assert attempt.attributes["gen_ai.response.finish_reasons"] == ("end_turn",)


async def test_a_provider_failure_is_the_spans_error_type(exported, request_span):
    stream = call_provider(call_to(Probe([TextDelta("a")], UpstreamOverloaded("busy"))))
    with pytest.raises(UpstreamOverloaded):
        async for _ in stream:
            pass

    (attempt,) = attempts(exported)
    assert attempt.attributes is not None
    assert attempt.attributes["error.type"] == "upstream_overloaded"
    assert attempt.attributes["gen_ai.response.finish_reasons"] == ("error",)
    assert attempt.status.status_code == StatusCode.ERROR
    assert trace.get_current_span() is request_span


async def test_without_a_tracer_in_context_the_providers_stream_is_handed_back_as_it_is():
    probe = Probe(ANSWER)
    stream = call_provider(call_to(probe))
    assert stream.ag_code is Probe.stream.__code__  # type: ignore[attr-defined]
    assert [d async for d in stream] == ANSWER
