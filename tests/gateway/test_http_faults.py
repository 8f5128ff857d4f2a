"""Answers aiohttp gives outside the handlers come in the gateway's error shape, with the
same status: the router's 404 and 405, HTTP the parser refuses, a body that cannot be
decoded.  SSE on the stream routes, JSON `{"error", "code"}` elsewhere; never a traceback.

Malformed HTTP goes over a raw socket to a real listener on loopback, built as
`ai-gateway serve` builds it: no HTTP client can send broken framing.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web

from gateway.app import create_app
from gateway.server import main_runner
from tests.conftest import build_config

SSE = "text/event-stream; charset=utf-8"
JSON = "application/json; charset=utf-8"
GUARD_S = 20.0  # only stops a hung test


def sse_error(body: bytes) -> dict[str, Any]:
    """The one SSE error frame of `body`, checked for the contract's exact shape."""
    assert body.startswith(b"data: ") and body.endswith(b"\n\n"), body
    assert body.count(b"\n\n") == 1, body
    event = json.loads(body[len(b"data: ") : -2])
    assert set(event) == {"type", "error", "code", "request_id"}, event
    assert event["type"] == "error"
    return dict(event)


def json_error(body: bytes) -> dict[str, Any]:
    error = json.loads(body)
    assert set(error) == {"error", "code"}, error
    return dict(error)


async def test_unknown_path_is_a_json_404_that_names_the_endpoints(gateway):
    client = await gateway()
    async with client.get("/no/such/thing") as response:
        assert response.status == 404
        assert response.headers["Content-Type"] == JSON
        error = json_error(await response.read())
    assert error["code"] == "not_found"
    assert "POST /ai/stream/chat" in error["error"]


async def test_unknown_path_under_ai_stream_is_one_sse_error_frame(gateway):
    client = await gateway()
    async with client.post("/ai/stream/chats", headers={"X-Request-ID": "req-404"}) as response:
        assert response.status == 404
        assert response.headers["Content-Type"] == SSE
        assert response.headers["X-Request-ID"] == "req-404"
        event = sse_error(await response.read())
    assert event["code"] == "not_found"
    assert event["request_id"] == "req-404"


async def test_wrong_method_on_a_stream_route_is_an_sse_405_that_keeps_allow(gateway):
    client = await gateway()
    async with client.get("/ai/stream/chat") as response:
        assert response.status == 405
        assert response.headers["Allow"] == "POST"
        assert response.headers["Content-Type"] == SSE
        event = sse_error(await response.read())
    assert event["code"] == "method_not_allowed"
    assert "use POST" in event["error"]


async def test_wrong_method_on_a_json_route_is_a_json_405_that_keeps_allow(gateway):
    client = await gateway()
    for path in ("/livez", "/ai/stream/health"):
        async with client.post(path) as response:
            assert response.status == 405
            assert set(response.headers["Allow"].split(",")) >= {"GET"}
            assert response.headers["Content-Type"] == JSON
            assert json_error(await response.read())["code"] == "method_not_allowed"


async def test_a_handlers_own_404_is_left_as_the_handler_wrote_it(gateway):
    client = await gateway(admin={"api_key": "${ADMIN_KEY}"}, env={"ADMIN_KEY": "admin-key-0001"})
    async with client.get(
        "/admin/usage?tenant=nobody", headers={"Authorization": "Bearer admin-key-0001"}
    ) as response:
        assert response.status == 404
        assert await response.json() == {"error": "unknown tenant 'nobody'"}


async def test_cors_preflight_and_the_demo_page_still_answer(gateway):
    client = await gateway()
    preflight = {"Origin": "http://localhost:3000", "Access-Control-Request-Method": "POST"}
    async with client.options("/ai/stream/chat", headers=preflight) as response:
        assert response.status == 204
    async with client.get("/") as response:
        assert response.status == 200
        assert response.content_type == "text/html"


async def crash(request: web.Request) -> web.Response:
    raise RuntimeError("a bug, with a secret in its traceback")


@pytest.fixture
async def listener_port() -> AsyncIterator[int]:
    """A real listener on loopback, built by `main_runner` as `ai-gateway serve` does;
    with one route that crashes, as a bug would."""
    config = build_config()
    app = create_app(config)
    app.router.add_post("/ai/stream/crash", crash)
    runner = main_runner(app, config.server)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield int(runner.addresses[0][1])
    finally:
        await runner.cleanup()


async def exchange(port: int, request: bytes) -> tuple[int, dict[str, str], bytes]:
    """Send raw bytes; read the answer until the gateway closes the connection."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(request)
        async with asyncio.timeout(GUARD_S):
            raw = await reader.read()
    finally:
        writer.close()
    head, _, body = raw.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    assert status_line.startswith("HTTP/1."), raw
    headers = dict(line.split(": ", 1) for line in lines)
    return int(status_line.split()[1]), headers, body


HUGE = b"a" * 9000  # over aiohttp's 8190-byte line limit
CHAT = b"POST /ai/stream/chat HTTP/1.1\r\nHost: gw\r\nContent-Type: application/json\r\n"
MALFORMED = [
    pytest.param(CHAT + b"X-Huge: " + HUGE + b"\r\n\r\n", SSE, id="oversized_header_on_chat"),
    pytest.param(
        b"GET /livez HTTP/1.1\r\nHost: gw\r\nX-Huge: " + HUGE + b"\r\n\r\n",
        JSON,
        id="oversized_header_on_livez",
    ),
    pytest.param(
        CHAT + b"Transfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n", SSE, id="bad_chunk_size"
    ),
    pytest.param(
        CHAT + b"Content-Length: 2\r\nContent-Length: 2\r\n\r\n{}",
        SSE,
        id="duplicate_content_length",
    ),
    pytest.param(b"G(T /livez HTTP/1.1\r\nHost: gw\r\n\r\n", JSON, id="invalid_method_token"),
    pytest.param(b"hello gateway\r\n\r\n", JSON, id="request_line_not_http"),
    pytest.param(
        b"GET /ai/stream/generate FTP/1.0\r\n\r\n", SSE, id="stream_request_line_not_http"
    ),
    pytest.param(b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03", JSON, id="tls_on_the_http_port"),
]


@pytest.mark.parametrize(("request_bytes", "content_type"), MALFORMED)
async def test_malformed_http_is_a_400_in_the_gateway_shape(
    listener_port, request_bytes, content_type
):
    status, headers, body = await exchange(listener_port, request_bytes)
    assert status == 400  # aiohttp's status, kept
    assert headers["Content-Type"] == content_type
    error = sse_error(body) if content_type == SSE else json_error(body)
    assert error["code"] == "bad_request"
    assert "; " in error["error"]  # what went wrong; what to do
    assert b"Traceback" not in body and b"aiohttp" not in body
    healthy = b"GET /livez HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n"
    status, _, _ = await exchange(listener_port, healthy)
    assert status == 200  # and the gateway serves on


async def test_a_body_that_cannot_be_decoded_is_a_400_not_a_500(listener_port):
    request = CHAT + b"Content-Encoding: gzip\r\nContent-Length: 9\r\n\r\nnot gzip!"
    status, headers, body = await exchange(listener_port, request)
    assert status == 400
    assert headers["Content-Type"] == SSE
    event = sse_error(body)
    assert event["code"] == "bad_request"
    assert "content-encoding: gzip" in event["error"]


async def test_a_crashing_handler_is_a_500_in_the_gateway_shape_without_a_traceback(
    listener_port,
):
    request = b"POST /ai/stream/crash HTTP/1.1\r\nHost: gw\r\nX-Request-ID: req-500\r\n\r\n"
    status, headers, body = await exchange(listener_port, request)
    assert status == 500
    assert headers["Content-Type"] == SSE
    event = sse_error(body)
    assert (event["code"], event["request_id"]) == ("internal_error", "req-500")
    assert b"secret" not in body and b"Traceback" not in body
