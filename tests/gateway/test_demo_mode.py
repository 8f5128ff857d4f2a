"""With no credentials the gateway serves from the offline demo provider and says so."""

from __future__ import annotations

import logging

from tests.conftest import CHAT, GENERATE, post_stream


async def test_without_a_key_every_route_streams_from_the_demo(gateway, fake_anthropic, caplog):
    caplog.set_level(logging.WARNING)
    client = await gateway(api_key="")
    for path, body in [("/ai/stream/chat", CHAT), ("/ai/stream/generate", GENERATE)]:
        result = await post_stream(client, path, body)
        result.assert_one_terminal()
        assert result.last["model"] == "demo"
        assert len([e for e in result.events if e["type"] == "content"]) > 5
    assert fake_anthropic.requests == 0
    assert any("demo mode" in r.getMessage() for r in caplog.records)


async def test_demo_is_deterministic_and_respects_max_tokens(gateway):
    client = await gateway(api_key="")
    first = await post_stream(client, "/ai/stream/generate", {"prompt": "hi", "max_tokens": 7})
    second = await post_stream(client, "/ai/stream/generate", {"prompt": "hi", "max_tokens": 7})
    assert first.text == second.text
    assert len([e for e in first.events if e["type"] == "content"]) == 7
    assert first.last["stop_reason"] == "max_tokens"
    assert first.last["usage"]["output_tokens"] == 7


async def test_health_says_demo_mode(gateway):
    client = await gateway(api_key="")
    async with client.get("/ai/stream/health") as response:
        health = await response.json()
    assert health["mode"] == "demo"
    assert health["model"] == "demo"


async def test_a_provider_with_a_key_never_falls_back_to_demo_text(gateway, fake_anthropic):
    from tests.fakes.anthropic_server import Script

    fake_anthropic.script(Script(status=500))
    client = await gateway(
        chains={"default": {"targets": ["sonnet"], "retry": {"max_attempts": 1}}}
    )
    result = await post_stream(client, "/ai/stream/chat", CHAT)
    assert result.status == 502
    assert "demo" not in result.raw.decode()
