"""The OpenTelemetry SDK's part of tracing: the tracer provider, its exporters and its
resource.  Imported by `gateway.telemetry` only when tracing is on, since the SDK and the
OTLP exporter (with protobuf) are slow to import and hold memory a gateway that does not
trace should not pay for."""

from __future__ import annotations

import logging
from collections.abc import Mapping

from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    ConsoleSpanExporter,
    SpanExporter,
)

log = logging.getLogger("gateway.telemetry")

PROTOCOLS = ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL")


def provider(
    named: list[str], environ: Mapping[str, str], service_name: str
) -> TracerProvider | None:
    """A provider batching spans to the exporters `named`; None when none is usable."""
    exporters = [e for e in (_exporter(name, environ) for name in named) if e is not None]
    if not exporters:
        return None
    tracer_provider = TracerProvider(resource=_resource(service_name), shutdown_on_exit=False)
    for exporter in exporters:
        tracer_provider.add_span_processor(BatchSpanProcessor(exporter))
    return tracer_provider


def _exporter(name: str, environ: Mapping[str, str]) -> SpanExporter | None:
    if name == "otlp":
        protocol = next((environ[p] for p in PROTOCOLS if environ.get(p)), "")
        if protocol.strip() not in ("", "http/protobuf"):
            log.warning("tracing: OTLP protocol %r is not supported; using http/protobuf", protocol)
        return OTLPSpanExporter()
    if name == "console":
        return ConsoleSpanExporter()
    log.warning("tracing: OTEL_TRACES_EXPORTER %r is not supported (otlp, console, none)", name)
    return None


def _resource(service_name: str) -> Resource:
    """The SDK's resource from the environment, named `ai-gateway` when it names nothing."""
    resource = Resource.create()
    if str(resource.attributes.get("service.name", "")).startswith("unknown_service"):
        resource = resource.merge(Resource({"service.name": service_name}))
    return resource
