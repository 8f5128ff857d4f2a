"""Tool use, thinking and images on the drop-in APIs, through the official SDKs: two-turn
tool loops passed through to a target of the client's own API and translated for one of
the other, fallback across the two before the first byte, and targets that cannot serve
a request skipped.  The fakes enforce the real APIs' rules (tool call and result ids
paired, thinking signatures checked, unknown fields refused), so a mangled id, a lost
signature or a leaked field fails here."""

from __future__ import annotations

from typing import Any

import anthropic
import openai
import pytest

from tests.fakes import openai_server
from tests.fakes.script import Script, ScriptedToolCall

SONNET, GPT = "claude-sonnet-4-5-20250929", "gpt-4o-mini"
WEATHER = {
    "name": "get_weather",
    "description": "Weather for a city",
    "input_schema": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
    },
}
OPENAI_WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": WEATHER["description"],
        "parameters": WEATHER["input_schema"],
    },
}
ASK = {"role": "user", "content": "Weather in Paris?"}
CALL = ScriptedToolCall("get_weather", {"city": "Paris"})
PIXEL = (  # a 1x1 PNG
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
)


def config(fake_openai: Any, *targets: str, **models: Any) -> dict[str, Any]:
    """A gateway whose `default` chain is `targets`, with an OpenAI-compatible `gpt`."""
    return {
        "env": {"OPENAI_API_KEY": openai_server.API_KEY},
        "providers": {
            "openai": {
                "type": "openai_compatible",
                "api_key": "${OPENAI_API_KEY}",
                "base_url": fake_openai.url,
            }
        },
        "models": {"gpt": {"provider": "openai", "model": GPT}, **models},
        "chains": {"default": {"targets": list(targets), "retry": {"max_attempts": 1}}},
    }


@pytest.fixture
async def clients(gateway, fake_openai):
    """`make(*targets)` → (AsyncAnthropic, AsyncOpenAI) of a gateway with that chain (and
    the Anthropic provider's `client_kind`, wire or sdk)."""
    made: list[Any] = []

    async def make(*targets: str, client_kind: str = "wire", **models: Any) -> tuple[Any, Any]:
        setup = config(fake_openai, *targets, **models)
        setup["providers"]["anthropic"] = {"client": client_kind}
        client = await gateway(**setup)
        url = str(client.make_url("/"))
        pair = (
            anthropic.AsyncAnthropic(base_url=url, api_key="app-key", max_retries=0),
            openai.AsyncOpenAI(base_url=url + "v1", api_key="app-key", max_retries=0),
        )
        made.extend(pair)
        return pair

    yield make
    for client in made:
        await client.close()


def tool_result(tool_use_id: str, text: str = "18 C, sunny") -> dict[str, Any]:
    return {
        "role": "user",
        "content": [{"type": "tool_result", "tool_use_id": tool_use_id, "content": text}],
    }


@pytest.mark.parametrize("client_kind", ["wire", "sdk"])
async def test_anthropic_sdk_tool_loop_passes_through_to_an_anthropic_target(
    clients, fake_anthropic, client_kind
):
    fake_anthropic.script(
        Script(chunks=["Checking."], tool_calls=[CALL]), Script(chunks=["18 C and sunny."])
    )
    claude, _ = await clients("sonnet", client_kind=client_kind)
    async with claude.messages.stream(
        model="default", max_tokens=200, tools=[WEATHER], messages=[ASK]
    ) as stream:
        first = await stream.get_final_message()

    assert [block.type for block in first.content] == ["text", "tool_use"]
    call = first.content[1]
    assert (call.name, call.input) == ("get_weather", {"city": "Paris"})
    assert first.stop_reason == "tool_use"

    second = await claude.messages.create(
        model="default",
        max_tokens=200,
        tools=[WEATHER],
        messages=[ASK, {"role": "assistant", "content": first.content}, tool_result(call.id)],
    )
    assert second.content[0].text == "18 C and sunny."
    sent = fake_anthropic.seen[-1].body
    assert sent["tools"] == [WEATHER]
    assert sent["messages"][-1] == tool_result(call.id)
    assert fake_anthropic.rejections == []


@pytest.mark.parametrize("client_kind", ["wire", "sdk"])
async def test_thinking_streams_with_its_signature_and_is_accepted_back(
    clients, fake_anthropic, client_kind
):
    fake_anthropic.script(
        Script(chunks=[], thinking="The tool knows.", tool_calls=[CALL]), Script(chunks=["Sunny."])
    )
    claude, _ = await clients("sonnet", client_kind=client_kind)
    thinking = {"type": "enabled", "budget_tokens": 1024}
    async with claude.messages.stream(
        model="default", max_tokens=2000, thinking=thinking, tools=[WEATHER], messages=[ASK]
    ) as stream:
        kinds = [event.type async for event in stream]
        first = await stream.get_final_message()

    assert "thinking" in kinds and "signature" in kinds
    assert [block.type for block in first.content] == ["thinking", "tool_use"]
    assert first.content[0].thinking == "The tool knows." and first.content[0].signature

    history = [ASK, {"role": "assistant", "content": first.content}]
    second = await claude.messages.create(
        model="default",
        max_tokens=2000,
        thinking=thinking,
        tools=[WEATHER],
        messages=[*history, tool_result(first.content[1].id)],
    )
    assert second.content[-1].text == "Sunny."
    assert fake_anthropic.rejections == []  # the signature came back as it was issued


async def test_openai_sdk_tool_loop_passes_through_to_an_openai_target(clients, fake_openai):
    fake_openai.script(
        Script(chunks=[], tool_calls=[CALL], input_tokens=20), Script(chunks=["Sunny."])
    )
    _, gpt = await clients("gpt")
    messages: list[Any] = [{"role": "user", "content": "Weather in Paris?"}]
    stream = await gpt.chat.completions.create(
        model="default",
        messages=messages,
        tools=[OPENAI_WEATHER],
        seed=7,
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = [chunk async for chunk in stream]
    calls = [c.choices[0].delta.tool_calls for c in chunks if c.choices and c.choices[0].delta]
    pieces = [call for delta in calls if delta for call in delta]
    call_id, name = pieces[0].id, pieces[0].function.name
    arguments = "".join(piece.function.arguments or "" for piece in pieces)
    assert (name, arguments) == ("get_weather", '{"city": "Paris"}')
    finish = [c.choices[0].finish_reason for c in chunks if c.choices]
    assert finish[-1] == "tool_calls"
    assert chunks[-1].usage is not None and chunks[-1].usage.prompt_tokens == 20

    sent = fake_openai.seen[-1].body
    assert (sent["seed"], sent["tools"]) == (7, [OPENAI_WEATHER])  # unknown to the gateway
    messages += [
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": call_id,
                    "type": "function",
                    "function": {"name": name, "arguments": arguments},
                }
            ],
        },
        {"role": "tool", "tool_call_id": call_id, "content": "18 C, sunny"},
    ]
    second = await gpt.chat.completions.create(
        model="default", messages=messages, tools=[OPENAI_WEATHER]
    )
    assert second.choices[0].message.content == "Sunny."
    assert fake_openai.seen[-1].body["messages"] == messages


async def test_openai_sdk_tool_loop_translated_for_an_anthropic_target(clients, fake_anthropic):
    fake_anthropic.script(
        Script(chunks=["Checking."], tool_calls=[CALL]), Script(chunks=["Sunny."])
    )
    _, gpt = await clients("sonnet")
    messages: list[Any] = [
        {"role": "developer", "content": "Be brief."},
        {"role": "user", "content": "Weather in Paris?"},
    ]
    first = await gpt.chat.completions.create(
        model="default", messages=messages, tools=[OPENAI_WEATHER], tool_choice="required"
    )
    choice = first.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content == "Checking."
    (call,) = choice.message.tool_calls
    assert (call.function.name, call.function.arguments) == ("get_weather", '{"city": "Paris"}')
    sent = fake_anthropic.seen[-1].body
    assert sent["system"] == "Be brief." and sent["tool_choice"] == {"type": "any"}
    assert sent["tools"] == [WEATHER]

    messages += [choice.message.model_dump(exclude_none=True)]
    messages += [{"role": "tool", "tool_call_id": call.id, "content": "18 C, sunny"}]
    stream = await gpt.chat.completions.create(
        model="default", messages=messages, tools=[OPENAI_WEATHER], stream=True
    )
    text = "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])
    assert text == "Sunny."
    assert fake_anthropic.seen[-1].body["messages"][-1] == {
        "role": "user",
        "content": [
            {
                "type": "tool_result",
                "tool_use_id": call.id,
                "content": [{"type": "text", "text": "18 C, sunny"}],
            }
        ],
    }
    assert fake_anthropic.rejections == []


async def test_a_fallback_to_the_other_api_carries_the_tool_loop_and_names_what_it_dropped(
    clients, fake_anthropic, fake_openai
):
    fake_anthropic.default = Script(status=529)
    fake_openai.script(Script(chunks=[], tool_calls=[CALL]), Script(chunks=["Sunny."]))
    claude, _ = await clients("sonnet", "gpt")
    response = await claude.messages.with_raw_response.create(
        model="default",
        max_tokens=200,
        tools=[WEATHER],
        messages=[ASK],
        extra_body={"top_k": 5, "service_tier": "auto"},
    )
    first = await response.parse()
    assert response.headers["x-gateway-dropped-params"] == "service_tier, top_k"
    assert first.model == GPT and first.stop_reason == "tool_use"
    call = first.content[0]
    assert (call.type, call.name, call.input) == ("tool_use", "get_weather", {"city": "Paris"})

    second = await claude.messages.create(
        model="default",
        max_tokens=200,
        tools=[WEATHER],
        messages=[ASK, {"role": "assistant", "content": first.content}, tool_result(call.id)],
    )
    assert second.content[0].text == "Sunny."
    assert fake_openai.seen[-1].body["messages"][-1] == {
        "role": "tool",
        "tool_call_id": call.id,
        "content": "18 C, sunny",
    }


async def test_a_fallback_from_openai_to_anthropic_streams_the_call_back_in_chunks(
    clients, fake_anthropic, fake_openai
):
    fake_openai.default = Script(status=503)
    fake_anthropic.script(Script(chunks=[], tool_calls=[CALL]))
    _, gpt = await clients("gpt", "sonnet")
    response = await gpt.chat.completions.with_raw_response.create(
        model="default",
        messages=[{"role": "user", "content": "Weather in Paris?"}],
        tools=[OPENAI_WEATHER],
        response_format={"type": "text"},
        stream=True,
    )
    assert response.headers["x-gateway-dropped-params"] == "response_format"
    chunks = [chunk async for chunk in response.parse()]
    pieces = [call for c in chunks if c.choices for call in c.choices[0].delta.tool_calls or ()]
    assert pieces[0].id.startswith("toolu_") and pieces[0].function.name == "get_weather"
    assert "".join(p.function.arguments or "" for p in pieces) == '{"city": "Paris"}'
    assert chunks[-1].model == SONNET
    assert chunks[-1].choices[0].finish_reason == "tool_calls"


async def test_an_image_skips_a_text_only_model(clients, fake_anthropic):
    text_only = {"provider": "anthropic", "model": "claude-haiku-4-5-20251001"}
    text_only["capabilities"] = {"images": False}
    claude, _ = await clients("reader", "sonnet", reader=text_only)
    image = {
        "type": "image",
        "source": {"type": "base64", "media_type": "image/png", "data": PIXEL},
    }
    question = {"role": "user", "content": [image, {"type": "text", "text": "What is it?"}]}

    answer = await claude.messages.create(model="default", max_tokens=50, messages=[question])
    assert answer.model == SONNET
    assert [seen.body["model"] for seen in fake_anthropic.seen] == [SONNET]

    only_text, _ = await clients("reader", reader=text_only)
    with pytest.raises(anthropic.BadRequestError) as refused:
        await only_text.messages.create(model="default", max_tokens=50, messages=[question])
    assert refused.value.status_code == 400
    assert "cannot take images" in refused.value.message
    assert len(fake_anthropic.seen) == 1


async def test_tools_skip_a_provider_that_cannot_call_them(clients, fake_anthropic):
    _, gpt = await clients("parrot", "sonnet", parrot={"provider": "demo", "model": "demo"})
    answer = await gpt.chat.completions.create(
        model="default",
        messages=[{"role": "user", "content": "Weather in Paris?"}],
        tools=[OPENAI_WEATHER],
    )
    assert answer.model == SONNET
    plain = await gpt.chat.completions.create(
        model="default", messages=[{"role": "user", "content": "Hello?"}]
    )
    assert plain.model == "demo"  # without tools, the demo serves


@pytest.mark.parametrize("client_kind", ["wire", "sdk"])
async def test_a_beta_request_reaches_an_anthropic_target_with_its_header(
    clients, fake_anthropic, fake_openai, client_kind
):
    """What Claude Code sends: `POST /v1/messages?beta=true` with `anthropic-beta` and the
    beta's field in the body.  The header goes with the body to an Anthropic target, and
    neither reaches an OpenAI-compatible one."""
    claude, _ = await clients("sonnet", "gpt", client_kind=client_kind)
    beta = "context-management-2025-06-27"
    management = {"edits": [{"type": "clear_tool_uses_20250919"}]}
    message = await claude.beta.messages.create(
        model="default", max_tokens=50, messages=[ASK], betas=[beta], context_management=management
    )
    assert message.content[0].text == "Hello, world!"
    seen = fake_anthropic.seen[-1]
    assert seen.headers["anthropic-beta"] == beta
    assert seen.body["context_management"] == management

    counted = await claude.beta.messages.count_tokens(model="default", messages=[ASK], betas=[beta])
    assert counted.input_tokens >= 1
    assert beta in fake_anthropic.seen[-1].headers["anthropic-beta"].split(",")

    fake_anthropic.default = Script(status=529)
    response = await claude.beta.messages.with_raw_response.create(
        model="default", max_tokens=50, messages=[ASK], betas=[beta], context_management=management
    )
    assert (await response.parse()).model == GPT
    assert response.headers["x-gateway-dropped-params"] == "context_management"
    assert "anthropic-beta" not in fake_openai.seen[-1].headers


async def test_the_clients_api_version_goes_with_its_body_and_sets_the_rules(
    clients, fake_anthropic
):
    """Claude Code's gateway requirement: `anthropic-version` is forwarded.  Under the
    version the client wrote for, the model's rules decide what is left out."""
    claude, _ = await clients("sonnet")
    for version, sent in (("2023-06-01", True), ("2026-10-21", False)):
        response = await claude.messages.with_raw_response.create(
            model="default",
            max_tokens=50,
            messages=[ASK],
            extra_body={"temperature": 0.5},
            extra_headers={"anthropic-version": version},
        )
        seen = fake_anthropic.seen[-1]
        assert seen.headers["anthropic-version"] == version
        assert ("temperature" in seen.body) is sent
        assert ("x-gateway-dropped-params" in response.headers) is not sent
    assert fake_anthropic.rejections == []
