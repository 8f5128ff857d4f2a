"""A local OTLP/HTTP trace receiver that keeps nothing: the collector of the tracing run.

It answers `POST /v1/traces` as a collector does, counting the spans of each export and
dropping them, and `GET /count` says how many it has had, so the run can check that the
traced gateway really exported while it was measured.

    python -m bench.otlp_sink --port 4318
"""

from __future__ import annotations

import argparse
import gzip

from aiohttp import web
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

PROTOBUF = "application/x-protobuf"
COUNTS = web.AppKey("counts", dict[str, int])


async def traces(request: web.Request) -> web.Response:
    body = await request.read()
    if request.headers.get("Content-Encoding") == "gzip":
        body = gzip.decompress(body)
    export = ExportTraceServiceRequest.FromString(body)
    counts = request.app[COUNTS]
    counts["exports"] += 1
    counts["spans"] += sum(
        len(scope.spans) for resource in export.resource_spans for scope in resource.scope_spans
    )
    answer = ExportTraceServiceResponse().SerializeToString()
    return web.Response(body=answer, content_type=PROTOBUF)


async def count(request: web.Request) -> web.Response:
    return web.json_response(request.app[COUNTS])


def make_app() -> web.Application:
    app = web.Application(client_max_size=64 * 1024 * 1024)
    app[COUNTS] = {"exports": 0, "spans": 0}
    app.router.add_post("/v1/traces", traces)
    app.router.add_get("/count", count)
    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    web.run_app(make_app(), host="127.0.0.1", port=args.port, print=None)


if __name__ == "__main__":
    main()
