"""Client conveniences: plain-text streams for the AI SDK, and `ai-gateway chat`."""

from __future__ import annotations

import io

import aiohttp
import pytest

from gateway.chat_cli import chat
from tests.conftest import CHAT
from tests.fakes.script import Script


async def test_format_text_streams_only_the_text(gateway):
    client = await gateway()
    async with client.post("/ai/stream/chat?format=text", json=CHAT) as response:
        chunks = [chunk async for chunk in response.content.iter_any()]
        assert response.headers["Content-Type"] == "text/plain; charset=utf-8"
    assert b"".join(chunks) == b"Hello, world!"


async def test_format_text_on_the_event_source_route_too(gateway):
    client = await gateway()
    async with client.get("/ai/stream/generate?format=text&prompt=hi") as response:
        assert await response.text() == "Hello, world!"


async def test_format_text_error_before_the_stream_is_a_status_with_a_message(gateway):
    client = await gateway()
    async with client.post("/ai/stream/chat?format=text", json={"messages": []}) as response:
        assert response.status == 422
        assert response.headers["Content-Type"].startswith("text/plain")
        assert (await response.text()).startswith("Invalid request: messages")


async def test_format_text_failure_midway_cuts_the_connection(gateway, fake_anthropic):
    fake_anthropic.script(Script(fault="error_event", fault_after=2))
    client = await gateway(
        chains={"default": {"targets": ["sonnet"], "retry": {"max_attempts": 1}}}
    )
    async with client.post("/ai/stream/chat?format=text", json=CHAT) as response:
        with pytest.raises(aiohttp.ClientPayloadError):
            await response.read()


@pytest.fixture
def gateway_env(monkeypatch):
    def point_at(client, key=None):
        monkeypatch.setenv("AI_GATEWAY_URL", str(client.make_url("")))
        if key:
            monkeypatch.setenv("AI_GATEWAY_KEY", key)
        else:
            monkeypatch.delenv("AI_GATEWAY_KEY", raising=False)

    return point_at


async def test_chat_command_streams_and_names_the_model(gateway, gateway_env):
    client = await gateway()
    gateway_env(client)
    out, err = io.StringIO(), io.StringIO()
    code = await chat("What is FastAPI?", None, None, 100, out=out, err=err)
    assert code == 0
    assert out.getvalue() == "Hello, world!\n"
    assert err.getvalue() == "[model: claude-sonnet-4-5-20250929]\n"


async def test_chat_command_keeps_the_conversation_in_interactive_mode(
    gateway, gateway_env, fake_anthropic
):
    client = await gateway()
    gateway_env(client)
    out, err = io.StringIO(), io.StringIO()
    code = await chat(
        None, "haiku", "Be brief.", 50, out=out, err=err, lines=io.StringIO("hi\nand?\n")
    )
    assert code == 0
    second = fake_anthropic.seen[1].body
    assert [m["role"] for m in second["messages"]] == ["user", "assistant", "user"]
    assert second["messages"][1]["content"] == "Hello, world!"
    assert second["model"] == "claude-haiku-4-5-20251001"
    assert second["system"].startswith("Be brief.")


async def test_chat_command_exits_non_zero_on_an_error_event(gateway, gateway_env, fake_anthropic):
    fake_anthropic.script(Script(status=400))
    client = await gateway()
    gateway_env(client)
    err = io.StringIO()
    assert await chat("hi", None, None, 10, out=io.StringIO(), err=err) == 1
    assert "error: The upstream provider 'anthropic' rejected the request (400)." in err.getvalue()
