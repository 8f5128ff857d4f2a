"""Fallback and continuation across providers, and a plugged-in provider, end to end."""

from __future__ import annotations

from providers.base import CONTINUE_PROMPT
from tests.conftest import CHAT, post_stream
from tests.fakes import openai_server
from tests.fakes.script import Script

SONNET, GPT = "claude-sonnet-4-5-20250929", "gpt-4o-mini"
FAST = {"max_attempts": 2, "initial_backoff_ms": 5, "max_backoff_ms": 10}


def with_openai(fake_openai, **chain):
    return {
        "env": {"OPENAI_API_KEY": openai_server.API_KEY},
        "providers": {
            "openai": {
                "type": "openai_compatible",
                "api_key": "${OPENAI_API_KEY}",
                "base_url": fake_openai.url,
            }
        },
        "models": {"gpt": {"provider": "openai", "model": GPT}},
        "chains": {"default": {"targets": ["sonnet", "gpt"], "retry": FAST, **chain}},
    }


async def test_anthropic_529_falls_over_to_the_openai_compatible_model(
    gateway, fake_anthropic, fake_openai
):
    fake_anthropic.default = Script(status=529)
    fake_openai.script(Script(chunks=["from ", "gpt"], input_tokens=9))
    client = await gateway(**with_openai(fake_openai))
    result = await post_stream(client, "/ai/stream/chat", {**CHAT, "system": "Be brief."})

    assert result.status == 200
    assert result.text == "from gpt"
    assert result.last["model"] == GPT
    assert result.last["models_tried"] == [SONNET, GPT]
    assert result.last["usage"] == {"input_tokens": 9, "output_tokens": 2}
    assert result.last["stop_reason"] == "stop"
    sent = fake_openai.seen[-1].body
    assert sent["messages"][0]["role"] == "system"
    assert sent["messages"][0]["content"].startswith("Be brief.")
    assert sent["messages"][1:] == [{"role": "user", "content": "What is FastAPI?"}]
    assert sent["stream_options"] == {"include_usage": True}
    assert sent["max_tokens"] == 500
    result.assert_one_terminal()


async def test_continuation_across_providers_sends_the_partial_as_assistant_text(
    gateway, fake_anthropic, fake_openai
):
    fake_anthropic.script(Script(chunks=["The ", "quick ", "fox"], fault="drop", fault_after=2))
    fake_openai.script(Script(chunks=["brown ", "fox."]))
    client = await gateway(**with_openai(fake_openai, on_stream_failure="continue"))
    result = await post_stream(client, "/ai/stream/chat", CHAT)

    assert result.text == "The quick brown fox."
    assert fake_openai.seen[-1].body["messages"][-2:] == [
        {"role": "assistant", "content": "The quick"},
        {"role": "user", "content": CONTINUE_PROMPT},  # chat completions answer, not continue
    ]
    assert result.last["models_used"] == [SONNET, GPT]
    assert result.last["model"] == GPT
    result.assert_one_terminal()


async def test_openai_request_options_and_per_model_options(gateway, fake_openai):
    config = with_openai(fake_openai)
    config["models"]["gpt"]["options"] = {"presence_penalty": 0.5, "seed": 7}
    config["providers"]["openai"]["headers"] = {"OpenAI-Organization": "org-1"}
    config["providers"]["openai"]["max_tokens_field"] = "max_completion_tokens"
    client = await gateway(**config)
    body = {
        **CHAT,
        "model": "gpt",
        "temperature": 0.2,
        "top_p": 0.5,
        "top_k": 3,
        "stop_sequences": ["END"],
        "metadata": {"user_id": "u-1"},
    }
    result = await post_stream(client, "/ai/stream/chat", body)

    assert result.last["model"] == GPT
    seen = fake_openai.seen[-1]
    assert (seen.body["seed"], seen.body["presence_penalty"]) == (7, 0.5)
    assert seen.body["max_completion_tokens"] == 500
    assert "max_tokens" not in seen.body
    assert (seen.body["temperature"], seen.body["top_p"]) == (0.2, 0.5)
    assert "top_k" not in seen.body  # (no such field: reported dropped)
    assert result.headers["X-Gateway-Dropped-Params"] == "top_k"
    assert seen.body["stop"] == ["END"]
    assert seen.body["user"] == "u-1"
    assert seen.headers["OpenAI-Organization"] == "org-1"


async def test_a_plugged_in_provider_streams_through_the_gateway(gateway, echo_provider_installed):
    client = await gateway(
        providers={"echo": {"type": "echo", "prefix": "You said: "}},
        models={"parrot": {"provider": "echo", "model": "echo-1"}},
    )
    result = await post_stream(
        client, "/ai/stream/generate", {"prompt": "hi there", "model": "parrot"}
    )

    assert result.text == "You said: hi there"
    assert result.last["model"] == "echo-1"
    result.assert_one_terminal()
