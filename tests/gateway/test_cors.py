"""CORS from config: preflight on the stream endpoints and headers on streamed answers."""

from __future__ import annotations

from tests.conftest import CHAT

ORIGIN = "http://localhost:3000"


async def test_preflight_on_stream_endpoint_is_allowed_for_configured_origin(gateway):
    client = await gateway()
    async with client.options(
        "/ai/stream/chat",
        headers={
            "Origin": ORIGIN,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type, authorization",
        },
    ) as response:
        assert response.status == 204
        assert response.headers["Access-Control-Allow-Origin"] == ORIGIN
        assert "POST" in response.headers["Access-Control-Allow-Methods"]
        assert response.headers["Access-Control-Allow-Headers"] == "content-type, authorization"


async def test_preflight_from_unknown_origin_is_refused(gateway):
    client = await gateway()
    async with client.options(
        "/ai/stream/generate",
        headers={"Origin": "http://evil.example", "Access-Control-Request-Method": "POST"},
    ) as response:
        assert response.status == 403
        assert "Access-Control-Allow-Origin" not in response.headers


async def test_streamed_answer_carries_cors_headers(gateway):
    client = await gateway()
    async with client.post("/ai/stream/chat", json=CHAT, headers={"Origin": ORIGIN}) as response:
        await response.read()
        assert response.headers["Access-Control-Allow-Origin"] == ORIGIN
        assert "X-Request-ID" in response.headers["Access-Control-Expose-Headers"]


async def test_error_answer_carries_cors_headers_so_browsers_can_read_it(gateway):
    client = await gateway()
    async with client.post("/ai/stream/chat", json={}, headers={"Origin": ORIGIN}) as response:
        assert response.status == 422
        assert response.headers["Access-Control-Allow-Origin"] == ORIGIN


async def test_wildcard_origin_and_configured_headers(gateway):
    client = await gateway(
        server={"cors": {"allow_origins": ["*"], "allow_headers": ["Content-Type"]}}
    )
    async with client.options(
        "/ai/stream/chat",
        headers={"Origin": "https://app.example", "Access-Control-Request-Method": "POST"},
    ) as response:
        assert response.status == 204
        assert response.headers["Access-Control-Allow-Origin"] == "https://app.example"
        assert response.headers["Access-Control-Allow-Headers"] == "Content-Type"
