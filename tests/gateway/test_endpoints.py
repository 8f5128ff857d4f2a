"""The integration guide's endpoints and curl examples, end to end over real HTTP."""

from __future__ import annotations

from tests.conftest import CHAT, GENERATE, post_stream
from tests.fakes.anthropic_server import API_KEY, Script


async def test_guide_chat_example_streams_content_then_done(gateway, fake_anthropic):
    client = await gateway()
    result = await post_stream(client, "/ai/stream/chat", CHAT)

    assert result.status == 200
    assert result.headers["Content-Type"] == "text/event-stream; charset=utf-8"
    assert result.headers["Cache-Control"] == "no-cache"
    assert result.headers["X-Accel-Buffering"] == "no"
    result.assert_one_terminal()
    assert [e["text"] for e in result.events[:-1]] == ["Hello", ", ", "world", "!"]
    assert result.last["type"] == "done"
    assert result.last["model"] == "claude-sonnet-4-5-20250929"
    assert result.last["usage"] == {"input_tokens": 11, "output_tokens": 4}
    assert result.last["stop_reason"] == "end_turn"


async def test_guide_generate_example_sends_prompt_system_and_options(gateway, fake_anthropic):
    client = await gateway()
    body = {**GENERATE, "system_prompt": "You are a creative poet", "top_p": 0.9, "top_k": 5}
    result = await post_stream(client, "/ai/stream/generate", body)

    assert result.status == 200
    assert result.text == "Hello, world!"
    sent = fake_anthropic.seen[-1].body
    assert sent["messages"] == [{"role": "user", "content": "Write a haiku about coding"}]
    assert sent["max_tokens"] == 100
    # Sonnet 4.5 under API 2023-06-01 takes sampling parameters, but not temperature and
    # top_p together: top_p is left out, and the client is told.
    assert (sent["temperature"], sent["top_k"]) == (0.7, 5) and "top_p" not in sent
    assert result.headers["X-Gateway-Dropped-Params"] == "top_p"
    assert sent["system"].startswith("You are a creative poet\n\nCurrent date and time: ")
    assert sent["stream"] is True
    headers = fake_anthropic.seen[-1].headers
    assert headers.get("x-api-key") == API_KEY  # the default wire client's documented auth
    assert headers["anthropic-version"] == "2023-06-01"


async def test_multi_turn_chat_with_system_and_text_blocks(gateway, fake_anthropic):
    client = await gateway()
    body = {
        "messages": [
            {"role": "user", "content": "Hello!"},
            {"role": "assistant", "content": "Hi there!"},
            {
                "role": "user",
                "content": [{"type": "text", "text": "How are "}, {"type": "text", "text": "you?"}],
            },
        ],
        "system": "You are a helpful assistant",
        "stop_sequences": ["END"],
        "metadata": {"user_id": "u-42"},
        "unknown_field": {"is": "ignored"},
    }
    result = await post_stream(client, "/ai/stream/chat", body)

    assert result.last["type"] == "done"
    sent = fake_anthropic.seen[-1].body
    assert [m["content"] for m in sent["messages"]] == ["Hello!", "Hi there!", "How are you?"]
    assert sent["stop_sequences"] == ["END"]
    assert sent["metadata"] == {"user_id": "u-42"}
    assert sent["max_tokens"] == 2048


async def test_final_assistant_prefill_is_sent_without_trailing_whitespace(gateway, fake_anthropic):
    client = await gateway()
    body = {
        "messages": [
            {"role": "user", "content": "Count"},
            {"role": "assistant", "content": "1, 2, "},
        ]
    }
    result = await post_stream(client, "/ai/stream/chat", body)

    assert result.last["type"] == "done"
    assert fake_anthropic.seen[-1].body["messages"][-1]["content"] == "1, 2,"


async def test_health_names_primary_model_in_guide_shape(gateway):
    client = await gateway()
    async with client.get("/ai/stream/health") as response:
        health = await response.json()
    assert response.status == 200
    assert health["streaming_enabled"] is True
    assert health["model"] == "claude-sonnet-4-5-20250929"
    assert health["supports_streaming"] is True
    assert health["format"] == "Server-Sent Events (SSE)"
    assert health["mode"] == "live"


async def test_each_event_is_one_whole_frame_for_naive_clients(gateway, fake_anthropic):
    fake_anthropic.script(Script(chunks=[f"part {i}\n" for i in range(30)], chunk_delay=0.001))
    client = await gateway()
    result = await post_stream(client, "/ai/stream/chat", CHAT)

    result.assert_one_terminal()
    assert result.text == "".join(f"part {i}\n" for i in range(30))
    for chunk in result.chunks:
        assert chunk.endswith(b"\n\n")


async def test_thinking_deltas_do_not_break_the_stream(gateway, fake_anthropic):
    fake_anthropic.script(Script(fault="thinking"))
    client = await gateway()
    result = await post_stream(client, "/ai/stream/chat", CHAT)
    assert result.text == "Hello, world!"
    assert result.last["type"] == "done"


async def test_model_field_selects_an_alias(gateway, fake_anthropic):
    client = await gateway()
    result = await post_stream(client, "/ai/stream/chat", {**CHAT, "model": "haiku"})
    assert result.last["model"] == "claude-haiku-4-5-20251001"
    assert fake_anthropic.seen[-1].body["model"] == "claude-haiku-4-5-20251001"


async def test_unknown_model_is_400_listing_valid_names(gateway, fake_anthropic):
    client = await gateway()
    result = await post_stream(client, "/ai/stream/chat", {**CHAT, "model": "gpt-9"})
    assert result.status == 400
    assert result.last["type"] == "error"
    assert "default, haiku, sonnet" in result.last["error"]
    assert fake_anthropic.requests == 0


async def test_request_id_is_echoed_or_generated(gateway):
    client = await gateway()
    given = await post_stream(client, "/ai/stream/chat", CHAT, headers={"X-Request-ID": "abc-123"})
    made = await post_stream(client, "/ai/stream/chat", CHAT)
    assert given.headers["X-Request-ID"] == "abc-123" == given.last["request_id"]
    assert len(made.headers["X-Request-ID"]) == 32


async def test_model_field_may_name_the_upstream_model_id(gateway, fake_anthropic):
    client = await gateway()
    body = {**CHAT, "model": "claude-haiku-4-5-20251001"}
    result = await post_stream(client, "/ai/stream/chat", body)
    assert result.last["model"] == "claude-haiku-4-5-20251001"
