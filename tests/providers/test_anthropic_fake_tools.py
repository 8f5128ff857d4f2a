"""The fake Anthropic streams thinking and tool use as the Messages API does, and refuses
what the API refuses about them, checked with the official SDK and raw POSTs.

If the SDK assembles the fake's stream into the message the real API would give, and the
fake refuses the tool turns, signatures and fields that the real API refuses, then a
gateway tested against the fake cannot pass while translating tool use wrongly.
"""

from __future__ import annotations

import base64
import json
import math
from typing import Any

import aiohttp
import pytest
from anthropic import AsyncAnthropic, BadRequestError

from tests.fakes import anthropic_content_rules as content_rules
from tests.fakes.anthropic_rules import extra_input
from tests.fakes.anthropic_server import API_KEY, FakeAnthropic, count_input_tokens
from tests.fakes.script import Script, ScriptedToolCall

MODEL = "claude-sonnet-4-6"
USER: Any = {"role": "user", "content": "What's the weather in Paris?"}
WEATHER: Any = {
    "name": "get_weather",
    "description": "The weather in a city",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}},
}
CLOCK: Any = {"name": "get_time", "input_schema": {"type": "object"}}
THINKING = {"type": "enabled", "budget_tokens": 1024}
PNG = base64.b64encode(b"\x89PNG\r\n\x1a\n" + b"\0" * 8).decode()
JPEG = base64.b64encode(b"\xff\xd8\xff\xe0" + b"\0" * 8).decode()
TOOL_TURN = Script(
    chunks=["Let me check."],
    thinking="The user wants the weather; call the tool.",
    tool_calls=[
        ScriptedToolCall("get_weather", {"city": "Paris", "days": [1, 2]}),
        ScriptedToolCall("get_time", {}, id="toolu_01scripted"),
    ],
)


def sdk(fake: FakeAnthropic) -> AsyncAnthropic:
    return AsyncAnthropic(api_key=API_KEY, base_url=fake.url, max_retries=0)


async def first_turn(fake: FakeAnthropic, **params: Any) -> Any:
    """Stream the tool turn with the SDK and return its final message."""
    fake.script(TOOL_TURN)
    async with (
        sdk(fake) as client,
        client.messages.stream(
            model=MODEL, max_tokens=2048, messages=[USER], tools=[WEATHER, CLOCK], **params
        ) as stream,
    ):
        return await stream.get_final_message()


def answered(message: Any, content: list[dict[str, Any]] | None = None) -> list[dict[str, Any]]:
    """The history after `message`: it (or `content` in its place), then a tool_result for
    each of its tool_use blocks."""
    results = [
        {"type": "tool_result", "tool_use_id": block.id, "content": "18°C"}
        for block in message.content
        if block.type == "tool_use"
    ]
    blocks = (
        content
        if content is not None
        else [b.model_dump(exclude_none=True) for b in message.content]
    )
    return [USER, {"role": "assistant", "content": blocks}, {"role": "user", "content": results}]


async def refusal(fake: FakeAnthropic, **params: Any) -> str:
    """The message of the 400 that the SDK's request with `params` gets."""
    params = {"model": MODEL, "max_tokens": 2048, "messages": [USER], **params}
    async with sdk(fake) as client:
        with pytest.raises(BadRequestError) as info:
            await client.messages.create(**params)
    assert info.value.body["error"]["type"] == "invalid_request_error"  # type: ignore[index]
    message: str = info.value.body["error"]["message"]  # type: ignore[index]
    assert fake.rejections[-1] == message
    return message


async def raw_events(fake: FakeAnthropic, body: dict[str, Any]) -> list[dict[str, Any]]:
    """POST `body` as a wire client does; the `data` of each event, in order."""
    headers = {"x-api-key": API_KEY, "anthropic-version": "2023-06-01"}
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            f"{fake.url}/v1/messages", json={**body, "stream": True}, headers=headers
        ) as r,
    ):
        assert r.status == 200
        frames = (await r.text()).split("\n\n")
    return [json.loads(f.partition("\ndata: ")[2]) for f in frames if f.startswith("event: ")]


# --- streaming ------------------------------------------------------------------------


async def test_sdk_final_message_has_signed_thinking_text_and_parsed_tool_inputs(fake_anthropic):
    message = await first_turn(fake_anthropic)

    assert [block.type for block in message.content] == ["thinking", "text", "tool_use", "tool_use"]
    thinking, text, weather, clock = message.content
    assert thinking.thinking == TOOL_TURN.thinking
    assert thinking.signature == content_rules.sign_thinking(thinking.thinking)
    assert text.text == "Let me check."
    assert (weather.name, weather.input) == ("get_weather", {"city": "Paris", "days": [1, 2]})
    assert weather.id.startswith("toolu_") and weather.id != clock.id
    assert (clock.id, clock.name, clock.input) == ("toolu_01scripted", "get_time", {})
    assert message.stop_reason == "tool_use"


async def test_blocks_stream_in_the_apis_event_shapes(fake_anthropic):
    fake_anthropic.script(TOOL_TURN)
    events = await raw_events(
        fake_anthropic, {"model": MODEL, "max_tokens": 64, "messages": [USER]}
    )

    assert [e["type"] for e in events[:3]] == ["message_start", "content_block_start", "ping"]
    starts = [e for e in events if e["type"] == "content_block_start"]
    assert [e["index"] for e in starts] == [0, 1, 2, 3]
    assert starts[0]["content_block"] == {"type": "thinking", "thinking": "", "signature": ""}
    assert starts[3]["content_block"] == {
        "type": "tool_use",
        "id": "toolu_01scripted",
        "name": "get_time",
        "input": {},
    }
    signatures = [e for e in events if e.get("delta", {}).get("type") == "signature_delta"]
    assert len(signatures) == 1 and signatures[0]["index"] == 0
    pieces = [
        e["delta"]["partial_json"]
        for e in events
        if e["type"] == "content_block_delta" and e["index"] == 2
    ]
    assert pieces[0] == "" and len(pieces) == 3
    assert json.loads("".join(pieces)) == {"city": "Paris", "days": [1, 2]}
    stops = [e["index"] for e in events if e["type"] == "content_block_stop"]
    assert stops == [0, 1, 2, 3]
    assert events[-2]["delta"]["stop_reason"] == "tool_use"
    assert events[-1] == {"type": "message_stop"}


async def test_tool_calls_without_text_stream_no_text_block(fake_anthropic):
    fake_anthropic.script(Script(chunks=[], tool_calls=[ScriptedToolCall("get_time", {})]))
    events = await raw_events(
        fake_anthropic, {"model": MODEL, "max_tokens": 64, "messages": [USER]}
    )
    blocks = [e["content_block"]["type"] for e in events if e["type"] == "content_block_start"]
    assert blocks == ["tool_use"]


def test_a_scripted_stop_reason_wins_over_tool_use():
    calls = [ScriptedToolCall("get_time", {})]
    assert Script(tool_calls=calls).final_stop_reason == "tool_use"
    assert Script(tool_calls=calls, stop_reason="max_tokens").final_stop_reason == "max_tokens"
    assert Script().final_stop_reason == "end_turn"


async def test_a_fault_at_a_tool_call_cuts_its_input_json_halfway(fake_anthropic):
    calls = [ScriptedToolCall("get_weather", {"city": "Paris"})]
    fake_anthropic.script(Script(chunks=["Hi"], tool_calls=calls, fault="truncate", fault_after=1))
    events = await raw_events(
        fake_anthropic, {"model": MODEL, "max_tokens": 64, "messages": [USER]}
    )

    assert events[-1]["type"] == "content_block_delta"
    deltas = [e["delta"] for e in events if e["type"] == "content_block_delta"]
    json_sent = "".join(delta.get("partial_json", "") for delta in deltas)
    assert json_sent and json_sent != json.dumps({"city": "Paris"})
    assert "message_delta" not in [e["type"] for e in events]


# --- the second turn ------------------------------------------------------------------


@pytest.mark.parametrize("thinking", [THINKING, None], ids=["thinking", "no-thinking"])
async def test_a_second_turn_answering_each_tool_use_streams(fake_anthropic, thinking):
    params = {"thinking": thinking} if thinking else {}
    message = await first_turn(fake_anthropic, **params)
    async with (
        sdk(fake_anthropic) as client,
        client.messages.stream(
            model=MODEL,
            max_tokens=2048,
            messages=answered(message),  # type: ignore[arg-type]
            tools=[WEATHER, CLOCK],
            **params,
        ) as stream,
    ):
        final = await stream.get_final_message()
    assert final.content[-1].type == "text"
    assert fake_anthropic.rejections == []


async def test_an_edited_thinking_block_is_400_invalid_signature(fake_anthropic):
    message = await first_turn(fake_anthropic, thinking=THINKING)
    blocks = [b.model_dump(exclude_none=True) for b in message.content]
    blocks[0]["thinking"] += " Also, the user is nice."
    problem = await refusal(
        fake_anthropic,
        messages=answered(message, blocks),
        tools=[WEATHER, CLOCK],
        thinking=THINKING,
    )
    assert problem == "messages.1.content.0: Invalid `signature` in `thinking` block"


async def test_a_tool_use_without_its_tool_result_is_400(fake_anthropic):
    message = await first_turn(fake_anthropic)
    history = answered(message)
    history[2]["content"] = history[2]["content"][:1]  # get_time goes unanswered
    problem = await refusal(fake_anthropic, messages=history, tools=[WEATHER, CLOCK])
    assert problem == content_rules.tool_use_without_result(1, ["toolu_01scripted"])
    assert problem.startswith(
        "messages.1: `tool_use` ids were found without `tool_result` blocks immediately after: "
        "toolu_01scripted."
    )


async def test_a_tool_result_answering_no_tool_use_is_400(fake_anthropic):
    message = await first_turn(fake_anthropic)
    history = answered(message)
    history[2]["content"].append({"type": "tool_result", "tool_use_id": "toolu_01other"})
    problem = await refusal(fake_anthropic, messages=history, tools=[WEATHER, CLOCK])
    assert problem.startswith(
        "messages.2.content.2: unexpected `tool_use_id` found in `tool_result` blocks: "
        "toolu_01other."
    )


async def test_a_tool_result_in_the_first_turn_is_400(fake_anthropic):
    result = {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_01x"}]}
    problem = await refusal(fake_anthropic, messages=[result])
    assert problem == content_rules.unexpected_tool_result("messages.0.content.0", "toolu_01x")


async def test_with_thinking_on_a_tool_turn_without_its_thinking_is_400(fake_anthropic):
    message = await first_turn(fake_anthropic, thinking=THINKING)
    blocks = [b.model_dump(exclude_none=True) for b in message.content][
        1:
    ]  # the thinking block dropped
    history = answered(message, blocks)
    problem = await refusal(
        fake_anthropic, messages=history, tools=[WEATHER, CLOCK], thinking=THINKING
    )
    assert problem == content_rules.thinking_must_come_first(1, "text")
    assert "Expected `thinking` or `redacted_thinking`, but found `text`" in problem


@pytest.mark.parametrize(
    ("block", "problem"),
    [
        (
            {"type": "tool_use", "id": "toolu_01a", "name": "get_time", "input": "{}"},
            "messages.1.content.0.tool_use.input: Input should be a valid dictionary",
        ),
        (
            {"type": "tool_use", "id": "toolu_01a", "input": {}},
            "messages.1.content.0.tool_use.name: Field required",
        ),
        (
            {"type": "thinking", "thinking": "hmm"},
            "messages.1.content.0.thinking.signature: Field required",
        ),
    ],
    ids=["input-as-string", "no-name", "unsigned-thinking"],
)
async def test_malformed_assistant_blocks_are_400(fake_anthropic, block, problem):
    history = [USER, {"role": "assistant", "content": [block]}, USER]
    assert await refusal(fake_anthropic, messages=history, tools=[CLOCK]) == problem


# --- tools and tool_choice ------------------------------------------------------------


@pytest.mark.parametrize(
    ("tools", "problem"),
    [
        (
            [{**CLOCK, "name": "get time"}],
            "tools.0.custom.name: String should match pattern '^[a-zA-Z0-9_-]{1,64}$'",
        ),
        (
            [{**CLOCK, "name": "t" * 65}],
            "tools.0.custom.name: String should match pattern '^[a-zA-Z0-9_-]{1,64}$'",
        ),
        ([{"name": "get_time"}], "tools.0.custom.input_schema: Field required"),
        (
            [CLOCK, {**CLOCK, "input_schema": {"type": "string"}}],
            "tools.1.custom.input_schema.type: Input should be 'object'",
        ),
        (
            [{**CLOCK, "parameters": {"type": "object"}}],
            "tools.0.custom.parameters: Extra inputs are not permitted",
        ),
        ([CLOCK, CLOCK], content_rules.TOOL_NAMES_NOT_UNIQUE),
        (
            [{"type": "function", "function": {"name": "get_time", "parameters": {}}}],
            content_rules.unknown_tag(
                "tools.0", "function", ("custom", *content_rules.SERVER_TOOL_EXAMPLES)
            ),
        ),
    ],
    ids=[
        "space",
        "too-long",
        "no-schema",
        "schema-not-object",
        "openai-parameters",
        "twice",
        "openai-tool",
    ],
)
async def test_tools_the_api_refuses_are_400(fake_anthropic, tools, problem):
    assert await refusal(fake_anthropic, tools=tools) == problem


async def test_server_tools_and_described_client_tools_are_accepted(fake_anthropic):
    web_search = {"type": "web_search_20250305", "name": "web_search", "max_uses": 3}
    tools = [web_search, {**WEATHER, "type": "custom", "strict": True}]
    events = await raw_events(
        fake_anthropic, {"model": MODEL, "max_tokens": 64, "messages": [USER], "tools": tools}
    )
    assert events[-1] == {"type": "message_stop"}


@pytest.mark.parametrize(
    ("tool_choice", "thinking", "problem"),
    [
        ("auto", None, f"tool_choice: {content_rules.NOT_AN_OBJECT}"),
        (
            {"type": "required"},
            None,
            content_rules.unknown_tag("tool_choice", "required", content_rules.TOOL_CHOICE_TYPES),
        ),
        (
            {"type": "tool", "name": "get_weather"},
            None,
            "tool_choice.tool.name: Tool 'get_weather' not found in `tools`",
        ),
        (
            {"type": "any"},
            THINKING,
            "Thinking may not be enabled when tool_choice forces tool use.",
        ),
        (
            {"type": "tool", "name": "get_time"},
            THINKING,
            content_rules.TOOL_CHOICE_WITH_THINKING,
        ),
    ],
    ids=[
        "openai-string",
        "openai-required",
        "undefined-tool",
        "any-with-thinking",
        "tool-with-thinking",
    ],
)
async def test_tool_choices_the_api_refuses_are_400(fake_anthropic, tool_choice, thinking, problem):
    params: dict[str, Any] = {"tools": [CLOCK], "tool_choice": tool_choice}
    if thinking:
        params["thinking"] = thinking
    assert await refusal(fake_anthropic, **params) == problem


@pytest.mark.parametrize(
    "tool_choice",
    [{"type": "auto"}, {"type": "any"}, {"type": "none"}, {"type": "tool", "name": "get_time"}],
)
async def test_tool_choices_the_api_takes_stream(fake_anthropic, tool_choice):
    body = {"model": MODEL, "max_tokens": 64, "messages": [USER], "tools": [CLOCK]}
    events = await raw_events(fake_anthropic, {**body, "tool_choice": tool_choice})
    assert events[-1] == {"type": "message_stop"}


# --- images -----------------------------------------------------------------------------


def image_turn(source: dict[str, Any]) -> list[dict[str, Any]]:
    image = {"type": "image", "source": source}
    return [{"role": "user", "content": [image, {"type": "text", "text": "What is this?"}]}]


@pytest.mark.parametrize(
    "source",
    [
        {"type": "base64", "media_type": "image/png", "data": PNG},
        {"type": "base64", "media_type": "image/jpeg", "data": JPEG},
        {"type": "url", "url": "https://example.com/cat.png"},
    ],
    ids=["png", "jpeg", "url"],
)
async def test_images_the_api_takes_stream(fake_anthropic, source):
    events = await raw_events(
        fake_anthropic, {"model": MODEL, "max_tokens": 64, "messages": image_turn(source)}
    )
    assert events[-1] == {"type": "message_stop"}


PATH = "messages.0.content.0.image.source"


@pytest.mark.parametrize(
    ("source", "problem"),
    [
        (
            {"type": "base64", "media_type": "image/bmp", "data": PNG},
            f"{PATH}.base64.media_type: {content_rules.IMAGE_MEDIA_TYPES}",
        ),
        (
            {"type": "base64", "media_type": "image/jpeg", "data": PNG},
            f"{PATH}.base64.data: Image does not match the provided media type image/jpeg",
        ),
        (
            {"type": "base64", "media_type": "image/png", "data": f"data:image/png;base64,{PNG}"},
            f"{PATH}.base64: invalid base64 data",
        ),
        (
            {"type": "url", "url": f"data:image/png;base64,{PNG}"},
            f"{PATH}.url.url: URL must use the http or https scheme",
        ),
        (
            {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}},
            content_rules.unknown_tag(PATH, "image_url", ("base64", "url")),
        ),
    ],
    ids=["bmp", "png-called-jpeg", "data-url-as-base64", "data-url-as-url", "openai-source"],
)
async def test_images_the_api_refuses_are_400(fake_anthropic, source, problem):
    assert await refusal(fake_anthropic, messages=image_turn(source)) == problem


async def test_an_openai_content_part_is_400(fake_anthropic):
    part = {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}}
    problem = await refusal(fake_anthropic, messages=[{"role": "user", "content": [part]}])
    assert problem.startswith(
        "messages.0.content.0: Input tag 'image_url' found using 'type' does not match"
    )


# --- top-level fields -------------------------------------------------------------------


@pytest.mark.parametrize(
    "field", ["stop", "n", "user", "frequency_penalty", "response_format", "tools_choice"]
)
async def test_a_field_the_messages_api_does_not_define_is_400(fake_anthropic, field):
    problem = await refusal(fake_anthropic, extra_body={field: "x"})
    assert problem == f"{field}: Extra inputs are not permitted"


# --- count_tokens -----------------------------------------------------------------------


async def test_count_tokens_answers_a_deterministic_count_and_is_recorded(fake_anthropic):
    system = "Answer briefly."
    async with sdk(fake_anthropic) as client:
        count = await client.messages.count_tokens(
            model=MODEL, system=system, messages=[USER], tools=[WEATHER]
        )
    characters = len(system) + len(json.dumps(WEATHER)) + len(USER["content"])
    assert count.input_tokens == math.ceil(characters / 4)
    seen = fake_anthropic.seen[-1]
    assert (seen.path, seen.body["system"]) == ("/v1/messages/count_tokens", system)
    assert seen.finished.is_set()
    assert count_input_tokens({"messages": [{"role": "user", "content": "a"}]}) == 1


async def test_count_tokens_applies_the_rules_and_takes_no_max_tokens(fake_anthropic):
    message = await first_turn(fake_anthropic)
    history = answered(message)
    headers = {"x-api-key": API_KEY, "anthropic-version": "2023-06-01"}
    url = f"{fake_anthropic.url}/v1/messages/count_tokens"
    async with aiohttp.ClientSession() as session:
        body = {"model": MODEL, "messages": history, "tools": [WEATHER, CLOCK]}
        async with session.post(url, json=body, headers=headers) as r:
            assert r.status == 200 and (await r.json())["input_tokens"] > 1
        async with session.post(url, json={**body, "max_tokens": 64}, headers=headers) as r:
            assert r.status == 400
            assert (await r.json())["error"]["message"] == extra_input("max_tokens")
        history[2]["content"].pop()
        async with session.post(url, json={**body, "messages": history}, headers=headers) as r:
            assert (await r.json())["error"]["message"].startswith("messages.1: `tool_use` ids")
        async with session.post(url, json=body, headers={**headers, "x-api-key": "no"}) as r:
            assert r.status == 401
