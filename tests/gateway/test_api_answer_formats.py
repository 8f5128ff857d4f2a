"""The drop-in APIs' answers, from a stream of normalized deltas: each block, tool call
and stop reason where each API puts it."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import Any

import orjson

from gateway.chat_completions_api import CompletionChunks, WholeCompletion
from gateway.messages_api import MessageEvents, WholeMessage
from providers.anthropic.wire import from_anthropic_frames
from providers.base import StreamEnd, TextDelta
from providers.content import (
    PartDelta,
    RedactedThinkingDelta,
    SignatureDelta,
    ThinkingDelta,
    ToolInputDelta,
    ToolUseStart,
)

ANSWER: list[str | PartDelta] = [
    ThinkingDelta("Use "),
    ThinkingDelta("the tool."),
    SignatureDelta("c2ln"),
    RedactedThinkingDelta("ZGF0YQ=="),
    "Checking",
    " now.",
    ToolUseStart("toolu_1", "get_weather"),
    ToolInputDelta('{"city": '),
    ToolInputDelta('"Paris"}'),
    ToolUseStart("toolu_2", "get_time"),
    ToolInputDelta(""),
]
DONE = {"model": "m", "stop_reason": "tool_use", "usage": {"input_tokens": 5, "output_tokens": 9}}


def play(format: Any, answer: list[str | PartDelta], done: dict[str, Any]) -> bytes:
    out = b"".join(
        format.content(item) if isinstance(item, str) else format.part(item) for item in answer
    )
    return out + format.done(done)


def sse_events(raw: bytes) -> list[tuple[str, dict[str, Any]]]:
    events = []
    for frame in raw.decode().split("\n\n"):
        if frame:
            name, data = frame.split("\n", 1)
            events.append((name.removeprefix("event: "), orjson.loads(data.removeprefix("data: "))))
    return events


def test_message_events_open_a_block_for_each_run_and_close_it():
    events = sse_events(play(MessageEvents("msg_1", lambda: "m"), ANSWER, DONE))
    starts = [(e["index"], e["content_block"]) for n, e in events if n == "content_block_start"]
    assert starts == [
        (0, {"type": "thinking", "thinking": "", "signature": ""}),
        (1, {"type": "redacted_thinking", "data": "ZGF0YQ=="}),
        (2, {"type": "text", "text": ""}),
        (3, {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {}}),
        (4, {"type": "tool_use", "id": "toolu_2", "name": "get_time", "input": {}}),
    ]
    deltas = [(e["index"], e["delta"]) for n, e in events if n == "content_block_delta"]
    assert deltas[2] == (0, {"type": "signature_delta", "signature": "c2ln"})
    assert deltas[5] == (3, {"type": "input_json_delta", "partial_json": '{"city": '})
    stops = [e["index"] for n, e in events if n == "content_block_stop"]
    assert stops == [0, 1, 2, 3, 4]
    names = [n for n, _ in events]
    assert names[0] == "message_start" and names[-2:] == ["message_delta", "message_stop"]
    assert events[-2][1]["delta"]["stop_reason"] == "tool_use"


def test_thinking_after_a_signature_is_a_new_block():
    answer: list[str | PartDelta] = [ThinkingDelta("a"), SignatureDelta("s"), ThinkingDelta("b")]
    events = sse_events(play(MessageEvents("msg_1", lambda: "m"), answer, DONE))
    assert [e["index"] for n, e in events if n == "content_block_start"] == [0, 1]


def test_a_whole_message_holds_the_same_blocks_with_parsed_input():
    message = orjson.loads(play(WholeMessage("msg_1"), ANSWER, DONE))
    assert message["content"] == [
        {"type": "thinking", "thinking": "Use the tool.", "signature": "c2ln"},
        {"type": "redacted_thinking", "data": "ZGF0YQ=="},
        {"type": "text", "text": "Checking now."},
        {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Paris"}},
        {"type": "tool_use", "id": "toolu_2", "name": "get_time", "input": {}},
    ]
    assert message["stop_reason"] == "tool_use"


def test_an_openai_finish_reason_is_said_in_the_messages_apis_words():
    message = orjson.loads(play(WholeMessage("msg_1"), ["Hi"], {**DONE, "stop_reason": "length"}))
    assert message["stop_reason"] == "max_tokens"


def test_completion_chunks_carry_tool_calls_by_index_and_no_thinking():
    raw = play(CompletionChunks("chatcmpl-1", lambda: "m", include_usage=False), ANSWER, DONE)
    chunks = [orjson.loads(f[6:]) for f in raw.decode().split("\n\n") if f.startswith("data: {")]
    deltas = [c["choices"][0]["delta"] for c in chunks]
    assert deltas[0] == {"role": "assistant", "content": ""}
    assert [d.get("content") for d in deltas[1:3]] == ["Checking", " now."]
    calls = [d["tool_calls"][0] for d in deltas if "tool_calls" in d]
    assert calls[0] == {
        "index": 0,
        "id": "toolu_1",
        "type": "function",
        "function": {"name": "get_weather", "arguments": ""},
    }
    assert [c["index"] for c in calls] == [0, 0, 0, 1, 1]  # (the last: no arguments, so {})
    assert calls[-1]["function"] == {"arguments": "{}"}
    assert "".join(c["function"]["arguments"] for c in calls[:3]) == '{"city": "Paris"}'
    assert chunks[-1]["choices"][0]["finish_reason"] == "tool_calls"
    assert raw.endswith(b"data: [DONE]\n\n")
    assert b"Use the tool" not in raw


def test_a_whole_completion_holds_the_tool_calls():
    completion = orjson.loads(play(WholeCompletion("chatcmpl-1"), ANSWER, DONE))
    message = completion["choices"][0]["message"]
    assert message["content"] == "Checking now."
    assert [c["function"] for c in message["tool_calls"]] == [
        {"name": "get_weather", "arguments": '{"city": "Paris"}'},
        {"name": "get_time", "arguments": "{}"},
    ]
    assert completion["choices"][0]["finish_reason"] == "tool_calls"


SEARCH_FRAMES = [  # a server tool's turn, as the Messages API streams it
    ("message_start", {"type": "message_start", "message": {"model": "m", "usage": {}}}),
    (
        "content_block_start",
        {
            "type": "content_block_start",
            "index": 0,
            "content_block": {"type": "server_tool_use", "id": "srvtoolu_1", "name": "web_search"},
        },
    ),
    (
        "content_block_delta",
        {
            "type": "content_block_delta",
            "index": 0,
            "delta": {"type": "input_json_delta", "partial_json": '{"query": "paris"}'},
        },
    ),
    ("content_block_stop", {"type": "content_block_stop", "index": 0}),
    (
        "content_block_start",
        {
            "type": "content_block_start",
            "index": 1,
            "content_block": {
                "type": "web_search_tool_result",
                "tool_use_id": "srvtoolu_1",
                "content": [{"type": "web_search_result", "url": "https://example.com"}],
            },
        },
    ),
    ("content_block_stop", {"type": "content_block_stop", "index": 1}),
    (
        "content_block_start",
        {
            "type": "content_block_start",
            "index": 2,
            "content_block": {"type": "text", "text": "", "citations": []},
        },
    ),
    (
        "content_block_delta",
        {
            "type": "content_block_delta",
            "index": 2,
            "delta": {"type": "citations_delta", "citation": {"url": "https://example.com"}},
        },
    ),
    (
        "content_block_delta",
        {
            "type": "content_block_delta",
            "index": 2,
            "delta": {"type": "text_delta", "text": "Sunny."},
        },
    ),
    ("content_block_stop", {"type": "content_block_stop", "index": 2}),
    ("message_delta", {"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": {}}),
    ("message_stop", {"type": "message_stop"}),
]


async def read_search_turn() -> list[str | PartDelta]:
    """The frames above through the Anthropic wire reader, as the gateway's deltas."""

    async def frames() -> AsyncGenerator[tuple[bytes, bytes], None]:
        for name, data in SEARCH_FRAMES:
            yield name.encode(), orjson.dumps(data)

    deltas = [d async for d in from_anthropic_frames(frames(), "m", "anthropic")]
    assert isinstance(deltas[-1], StreamEnd)
    return [d.text if isinstance(d, TextDelta) else d for d in deltas[:-1]]  # type: ignore[misc]


async def test_a_server_tools_blocks_pass_through_to_the_messages_api():
    answer = await read_search_turn()
    events = sse_events(play(MessageEvents("msg_1", lambda: "m"), answer, DONE))
    blocks = [e["content_block"] for n, e in events if n == "content_block_start"]
    assert blocks == [e["content_block"] for n, e in SEARCH_FRAMES if n == "content_block_start"]
    deltas = [e["delta"] for n, e in events if n == "content_block_delta"]
    assert deltas == [e["delta"] for n, e in SEARCH_FRAMES if n == "content_block_delta"]

    message = orjson.loads(play(WholeMessage("msg_1"), answer, DONE))
    assert [block["type"] for block in message["content"]] == [
        "server_tool_use",
        "web_search_tool_result",
        "text",
    ]
    assert message["content"][0]["input"] == {"query": "paris"}
    assert message["content"][2]["citations"] == [{"url": "https://example.com"}]


async def test_a_server_tools_blocks_are_left_out_of_chat_completions():
    answer = await read_search_turn()
    chunks = CompletionChunks("chatcmpl-1", lambda: "m", include_usage=False)
    raw = play(chunks, answer, {**DONE, "stop_reason": "end_turn"})
    assert b"web_search" not in raw and b"tool_calls" not in raw and b"Sunny." in raw
