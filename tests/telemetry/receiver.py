"""A real OTLP/HTTP trace receiver on loopback: `POST /v1/traces` with
`application/x-protobuf`, decoded with `opentelemetry-proto` as a collector would, and
kept as plain `ReceivedSpan`s for assertions."""

from __future__ import annotations

import gzip
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

PROTOBUF = "application/x-protobuf"


@dataclass
class ReceivedEvent:
    name: str
    attributes: dict[str, Any]


@dataclass
class ReceivedSpan:
    name: str
    kind: str  # SERVER, CLIENT, ...
    trace_id: str  # hex, as in a traceparent
    span_id: str
    parent_id: str  # "" for a root span
    attributes: dict[str, Any]
    events: list[ReceivedEvent]
    status: str  # UNSET, OK, ERROR
    resource: dict[str, Any] = field(default_factory=dict)

    def event(self, name: str) -> ReceivedEvent:
        """The one event called `name`."""
        found = [e for e in self.events if e.name == name]
        assert len(found) == 1, f"{self.name}: events {[e.name for e in self.events]}"
        return found[0]


class OtlpReceiver:
    def __init__(self) -> None:
        self.url = ""  # the traces endpoint, set by the fixture that starts the server
        self.spans: list[ReceivedSpan] = []
        self.exports = 0
        self.app = web.Application()
        self.app.router.add_post("/v1/traces", self._traces)

    def named(self, kind: str) -> list[ReceivedSpan]:
        return [span for span in self.spans if span.kind == kind]

    async def _traces(self, request: web.Request) -> web.Response:
        if request.content_type != PROTOBUF:
            return web.Response(status=415)
        body = await request.read()
        if request.headers.get("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
        export = ExportTraceServiceRequest.FromString(body)
        for resource_spans in export.resource_spans:
            resource = _attributes(resource_spans.resource.attributes)
            for scope_spans in resource_spans.scope_spans:
                self.spans.extend(_span(s, resource) for s in scope_spans.spans)
        self.exports += 1
        answer = ExportTraceServiceResponse().SerializeToString()
        return web.Response(body=answer, content_type=PROTOBUF)


def _span(span: Span, resource: dict[str, Any]) -> ReceivedSpan:
    return ReceivedSpan(
        name=span.name,
        kind=Span.SpanKind.Name(span.kind).removeprefix("SPAN_KIND_"),
        trace_id=span.trace_id.hex(),
        span_id=span.span_id.hex(),
        parent_id=span.parent_span_id.hex(),
        attributes=_attributes(span.attributes),
        events=[ReceivedEvent(e.name, _attributes(e.attributes)) for e in span.events],
        status=Status.StatusCode.Name(span.status.code).removeprefix("STATUS_CODE_"),
        resource=resource,
    )


def _attributes(pairs: Any) -> dict[str, Any]:
    return {pair.key: _value(pair.value) for pair in pairs if isinstance(pair, KeyValue)}


def _value(value: AnyValue) -> Any:
    kind = value.WhichOneof("value")
    if kind == "array_value":
        return tuple(_value(v) for v in value.array_value.values)
    if kind == "kvlist_value":
        return {kv.key: _value(kv.value) for kv in value.kvlist_value.values}
    return getattr(value, kind) if kind else None
