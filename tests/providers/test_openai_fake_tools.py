"""The fake OpenAI streams tool calls as chat completions do, and refuses what OpenAI
refuses about them, checked with the official `openai` SDK and raw POSTs.

If the SDK's stream helper assembles the fake's chunks into the tool calls OpenAI would
give, and the fake refuses unanswered calls, stray tool messages and fields OpenAI does
not define, a gateway tested against the fake cannot pass while translating tool use
wrongly.
"""

from __future__ import annotations

import json
from typing import Any

import aiohttp
import openai
import pytest

from tests.fakes import openai_rules as rules
from tests.fakes.openai_server import API_KEY, FakeOpenAI
from tests.fakes.script import Script, ScriptedToolCall

MODEL = "gpt-4o-mini"
USER: Any = {"role": "user", "content": "What's the weather in Paris?"}
WEATHER: Any = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The weather in a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    },
}
CLOCK: Any = {"type": "function", "function": {"name": "get_time"}}
TOOL_TURN = Script(
    chunks=[],
    tool_calls=[
        ScriptedToolCall("get_weather", {"city": "Paris", "days": [1, 2]}),
        ScriptedToolCall("get_time", {}, id="call_scripted"),
    ],
)


def sdk(fake: FakeOpenAI) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(api_key=API_KEY, base_url=fake.url, max_retries=0)


async def first_turn(fake: FakeOpenAI, script: Script = TOOL_TURN) -> Any:
    """Stream `script` with the SDK's stream helper; the completion it assembles."""
    fake.script(script)
    async with (
        sdk(fake) as client,
        client.chat.completions.stream(
            model=MODEL,
            messages=[USER],
            tools=[WEATHER, CLOCK],
            stream_options={"include_usage": True},
        ) as stream,
    ):
        return await stream.get_final_completion()


def answered(completion: Any) -> list[Any]:
    """The history after `completion`: its assistant turn, then a tool message per call."""
    message = completion.choices[0].message
    turn = message.model_dump(include={"role", "content", "tool_calls"}, exclude_none=True)
    for call in turn["tool_calls"]:
        call.pop("index", None)
        call["function"].pop("parsed_arguments", None)
    results = [
        {"role": "tool", "tool_call_id": call.id, "content": "18°C"} for call in message.tool_calls
    ]
    return [USER, turn, *results]


async def refusal(fake: FakeOpenAI, **params: Any) -> dict[str, Any]:
    """The error object of the 400 that the SDK's request with `params` gets."""
    params = {"model": MODEL, "messages": [USER], **params}
    async with sdk(fake) as client:
        with pytest.raises(openai.BadRequestError) as info:
            await client.chat.completions.create(stream=True, **params)
    error: dict[str, Any] = info.value.body  # type: ignore[assignment]
    assert error["type"] == "invalid_request_error"
    assert fake.rejections[-1] == error["message"]
    return error


def shaped(problem: rules.Problem) -> dict[str, Any]:
    return {
        "message": problem.message,
        "type": "invalid_request_error",
        "param": problem.param,
        "code": problem.code,
    }


async def raw_chunks(fake: FakeOpenAI, body: dict[str, Any]) -> list[Any]:
    """POST `body` as a wire client does; each `data:` line, parsed (`[DONE]` as is)."""
    headers = {"Authorization": f"Bearer {API_KEY}"}
    async with (
        aiohttp.ClientSession() as session,
        session.post(f"{fake.url}/chat/completions", json=body, headers=headers) as r,
    ):
        assert r.status == 200
        lines = (await r.text()).split("\n\n")
    data = [line.removeprefix("data: ") for line in lines if line.startswith("data: ")]
    return [d if d == "[DONE]" else json.loads(d) for d in data]


def deltas(chunks: list[Any]) -> list[dict[str, Any]]:
    return [c["choices"][0]["delta"] for c in chunks if c != "[DONE]" and c["choices"]]


# --- streaming ------------------------------------------------------------------------


async def test_sdk_stream_helper_assembles_each_tool_call(fake_openai):
    completion = await first_turn(fake_openai)

    choice = completion.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content is None
    weather, clock = choice.message.tool_calls
    assert weather.id.startswith("call_") and weather.type == "function"
    assert weather.function.name == "get_weather"
    assert json.loads(weather.function.arguments) == {"city": "Paris", "days": [1, 2]}
    assert (clock.id, clock.function.name, clock.function.arguments) == (
        "call_scripted",
        "get_time",
        "{}",
    )
    assert completion.usage.completion_tokens == 2


async def test_tool_call_chunks_have_openais_shapes(fake_openai):
    fake_openai.script(TOOL_TURN)
    body = {"model": MODEL, "messages": [USER], "stream": True}
    chunks = await raw_chunks(fake_openai, {**body, "stream_options": {"include_usage": True}})

    first, *rest = deltas(chunks)
    assert first["role"] == "assistant" and first["content"] is None
    assert first["tool_calls"][0]["index"] == 0
    assert first["tool_calls"][0]["function"] == {"name": "get_weather", "arguments": ""}
    pieces = [d["tool_calls"][0] for d in rest if "tool_calls" in d]
    assert pieces[0] == {"index": 0, "function": {"arguments": pieces[0]["function"]["arguments"]}}
    arguments = "".join(p["function"].get("arguments", "") for p in pieces if p["index"] == 0)
    assert json.loads(arguments) == {"city": "Paris", "days": [1, 2]}
    second = next(p for p in pieces if p["index"] == 1)
    assert second == {
        "index": 1,
        "id": "call_scripted",
        "type": "function",
        "function": {"name": "get_time", "arguments": ""},
    }
    assert not any("content" in d for d in rest)
    assert chunks[-3]["choices"][0]["finish_reason"] == "tool_calls"
    assert chunks[-2]["choices"] == [] and chunks[-2]["usage"]["completion_tokens"] == 2
    assert chunks[-1] == "[DONE]"


async def test_text_then_tool_calls_streams_the_role_with_the_text(fake_openai):
    script = Script(chunks=["Let me check."], tool_calls=[ScriptedToolCall("get_time", {})])
    completion = await first_turn(fake_openai, script)
    message = completion.choices[0].message
    assert message.content == "Let me check."
    assert [call.function.name for call in message.tool_calls] == ["get_time"]
    assert completion.choices[0].finish_reason == "tool_calls"


async def test_a_fault_at_a_tool_call_cuts_its_arguments_halfway(fake_openai):
    calls = [ScriptedToolCall("get_weather", {"city": "Paris"})]
    fake_openai.script(Script(chunks=[], tool_calls=calls, fault="truncate", fault_after=0))
    chunks = await raw_chunks(fake_openai, {"model": MODEL, "messages": [USER], "stream": True})

    arguments = "".join(d["tool_calls"][0]["function"]["arguments"] for d in deltas(chunks))
    assert arguments and arguments != json.dumps({"city": "Paris"})
    assert chunks[-1] != "[DONE]"
    assert all(c["choices"][0]["finish_reason"] is None for c in chunks)


# --- the second turn ------------------------------------------------------------------


async def test_a_second_turn_answering_each_tool_call_streams(fake_openai):
    history = answered(await first_turn(fake_openai))
    async with (
        sdk(fake_openai) as client,
        client.chat.completions.stream(
            model=MODEL, messages=history, tools=[WEATHER, CLOCK]
        ) as stream,
    ):
        completion = await stream.get_final_completion()
    assert completion.choices[0].message.content == "Hello, world!"
    assert fake_openai.rejections == []
    assert fake_openai.seen[-1].body["messages"][1]["tool_calls"][1]["id"] == "call_scripted"


async def test_a_tool_call_without_its_tool_message_is_400(fake_openai):
    history = answered(await first_turn(fake_openai))
    unanswered = [history[0], history[1], history[3]]  # get_weather goes unanswered
    messages = [*unanswered, *history[1:]]  # and the conversation goes on
    error = await refusal(fake_openai, messages=messages, tools=[WEATHER, CLOCK])
    weather_id = history[1]["tool_calls"][0]["id"]
    assert error == shaped(rules.unanswered_tool_calls(1, [weather_id]))
    assert error["message"].endswith(
        f"The following tool_call_ids did not have response messages: {weather_id}"
    )


async def test_a_tool_message_after_no_tool_call_is_400(fake_openai):
    stray = {"role": "tool", "tool_call_id": "call_1", "content": "18°C"}
    error = await refusal(fake_openai, messages=[USER, stray])
    assert error == shaped(rules.Problem(rules.TOOL_WITHOUT_CALL, "messages.[1].role"))


async def test_a_tool_message_answering_another_id_is_400(fake_openai):
    history = answered(await first_turn(fake_openai))
    history[3]["tool_call_id"] = "call_other"
    error = await refusal(fake_openai, messages=history, tools=[WEATHER, CLOCK])
    assert error["message"] == (
        "Invalid parameter: 'tool_call_id' of 'call_other' not found in 'tool_calls' of "
        "previous message."
    )


async def test_tool_call_arguments_as_an_object_are_400(fake_openai):
    history = answered(await first_turn(fake_openai))
    history[1]["tool_calls"][0]["function"]["arguments"] = {"city": "Paris"}
    error = await refusal(fake_openai, messages=history, tools=[WEATHER, CLOCK])
    assert error == {
        "message": "Invalid type for 'messages[1].tool_calls[0].function.arguments': "
        "expected a string, but got an object instead.",
        "type": "invalid_request_error",
        "param": "messages[1].tool_calls[0].function.arguments",
        "code": "invalid_type",
    }


# --- tools, tool_choice and top-level fields --------------------------------------------


@pytest.mark.parametrize(
    ("tools", "param", "code"),
    [
        ([{"name": "get_time", "input_schema": {"type": "object"}}], "tools[0].type", None),
        ([{"type": "function", "name": "get_time"}], "tools[0].function", None),
        (
            [{"type": "function", "function": {"name": "get time"}}],
            "tools[0].function.name",
            "invalid_value",
        ),
        (
            [CLOCK, {"type": "function", "function": {"name": "t" * 65}}],
            "tools[1].function.name",
            "string_above_max_length",
        ),
        (
            [{"type": "function", "function": {"name": "get_time", "parameters": "{}"}}],
            "tools[0].function.parameters",
            "invalid_type",
        ),
        ([{"type": "tool", "name": "get_time"}], "tools[0].type", "invalid_value"),
    ],
    ids=["anthropic-tool", "no-function", "space", "too-long", "string-parameters", "bad-type"],
)
async def test_tools_openai_refuses_are_400(fake_openai, tools, param, code):
    error = await refusal(fake_openai, tools=tools)
    assert error["param"] == param
    assert error["code"] == (code or "missing_required_parameter")


async def test_a_tool_name_off_the_pattern_gets_openais_message(fake_openai):
    tools = [{"type": "function", "function": {"name": "get.time"}}]
    error = await refusal(fake_openai, tools=tools)
    assert error["message"] == (
        "Invalid 'tools[0].function.name': string does not match pattern. Expected a string "
        "that matches the pattern '^[a-zA-Z0-9_-]+$'."
    )


@pytest.mark.parametrize(
    ("tool_choice", "tools", "param"),
    [
        ("auto", None, "tool_choice"),
        ("any", [CLOCK], "tool_choice"),
        ({"type": "tool", "name": "get_time"}, [CLOCK], "tool_choice.type"),
    ],
    ids=["without-tools", "anthropic-any", "anthropic-tool"],
)
async def test_tool_choices_openai_refuses_are_400(fake_openai, tool_choice, tools, param):
    params: dict[str, Any] = {"tool_choice": tool_choice}
    if tools:
        params["tools"] = tools
    error = await refusal(fake_openai, **params)
    assert error["param"] == param
    if tools is None:
        assert error["message"] == rules.TOOL_CHOICE_WITHOUT_TOOLS


@pytest.mark.parametrize("field", ["top_k", "thinking", "stop_sequences", "system"])
async def test_an_anthropic_only_field_is_400_unrecognized(fake_openai, field):
    error = await refusal(fake_openai, extra_body={field: 1})
    assert error == shaped(rules.Problem(f"Unrecognized request argument supplied: {field}"))


async def test_several_unrecognized_fields_are_named_together(fake_openai):
    error = await refusal(fake_openai, extra_body={"top_k": 1, "anthropic_version": "x"})
    assert error["message"] == "Unrecognized request arguments supplied: anthropic_version, top_k"


async def test_the_requests_openai_takes_still_stream(fake_openai):
    body = {
        "model": MODEL,
        "messages": [USER],
        "stream": True,
        "tools": [WEATHER],
        "tool_choice": {"type": "function", "function": {"name": "get_weather"}},
        "parallel_tool_calls": False,
        "max_completion_tokens": 64,
        "reasoning_effort": "low",
    }
    chunks = await raw_chunks(fake_openai, body)
    assert chunks[-1] == "[DONE]"
