"""What tracing needs from the provider edge: the trace context on each upstream request,
and the name the OpenTelemetry GenAI conventions give each provider family.

Both go through the OpenTelemetry API only (no SDK): with tracing off no span is current,
the propagator writes nothing, and the headers go out as they were.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache

from opentelemetry import trace
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from providers.base import Provider

# Built-in provider modules → `gen_ai.provider.name` (the conventions' well-known values;
# an OpenAI-compatible server is spoken to as OpenAI, which is how they name it).
_FAMILIES = (
    ("providers.anthropic", "anthropic"),
    ("providers.openai_compatible", "openai"),
    ("providers.demo", "demo"),
)


_TRACE_CONTEXT = TraceContextTextMapPropagator()


def with_trace_context(headers: Mapping[str, str]) -> Mapping[str, str]:
    """`headers` plus the current span's `traceparent`, so the upstream's own traces can
    join ours; `headers` itself when there is nothing to add (tracing off).  Only the W3C
    trace context: a client's `baggage` and `tracestate` (user ids, session tags) are
    never passed on to a third-party upstream, whatever `OTEL_PROPAGATORS` says."""
    carrier: dict[str, str] = {}
    _TRACE_CONTEXT.inject(carrier, context=trace.set_span_in_context(trace.get_current_span()))
    carrier.pop("tracestate", None)
    return {**headers, **carrier} if carrier else headers


def gen_ai_provider_name(provider: Provider) -> str:
    """The provider's family as tracing names it: the configured `type`'s family for the
    built-ins (`anthropic` for both of its clients), a plug-in's own `gen_ai_provider_name`
    when it declares one, else its top-level package."""
    declared = getattr(provider, "gen_ai_provider_name", None)
    if isinstance(declared, str):
        return declared
    return _family(type(provider).__module__)


@cache
def _family(module: str) -> str:
    for prefix, name in _FAMILIES:
        if module == prefix or module.startswith(prefix + "."):
            return name
    return module.split(".", 1)[0]
