"""`?format=ui`: the AI SDK 5 UI message stream, chunk by chunk, and `useChat`'s body.

The chunks are compared whole: the AI SDK rejects a chunk with a field its schema does not
define, so an extra key is as wrong as a missing one.
"""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from gateway.schemas import ChatBody, parse_body
from gateway.sse import Redactor
from gateway.ui_message_stream import UiChatBody, UiFormatChatBody, UiMessageFormat
from providers.content import ToolUseStart
from providers.errors import InvalidBody, RateLimited
from tests.conftest import CHAT, GENERATE
from tests.fakes.anthropic_server import Script

DONE = {
    "type": "done",
    "model": "claude-sonnet-4-5-20250929",
    "stop_reason": "end_turn",
    "usage": {"input_tokens": 12, "output_tokens": 3},
    "request_id": "req-1",
}
METADATA = {key: value for key, value in DONE.items() if key != "type"}
START = [{"type": "start", "messageId": "msg-1"}, {"type": "start-step"}]
FINISH = [{"type": "finish-step"}, {"type": "finish", "messageMetadata": METADATA}, "[DONE]"]
NO_RETRY = {"chains": {"default": {"targets": ["sonnet"], "retry": {"max_attempts": 1}}}}


def chunks(raw: bytes) -> list[Any]:
    """The stream's chunks in order ("[DONE]" as a string), keep-alive comments left out;
    every frame is one `data:` line."""
    assert raw.endswith(b"\n\n"), raw
    out: list[Any] = []
    for frame in raw.decode().split("\n\n")[:-1]:
        assert "\n" not in frame, frame
        if frame.startswith(":"):
            continue
        data = frame.removeprefix("data: ")
        out.append(data if data == "[DONE]" else orjson.loads(data))
    return out


def use_chat_body(*messages: tuple[str, list[dict[str, Any]]], **extra: Any) -> dict[str, Any]:
    """A body as AI SDK 5's DefaultChatTransport posts it."""
    return {
        **extra,
        "id": "chat-1",
        "messages": [
            {"id": f"m{i}", "role": role, "parts": parts}
            for i, (role, parts) in enumerate(messages)
        ],
        "trigger": "submit-message",
        "messageId": None,
    }


def text(value: str) -> dict[str, Any]:
    return {"type": "text", "text": value}


# --- the format -------------------------------------------------------------------------


def test_a_stream_opens_the_message_and_its_text_part_at_the_first_text():
    wire = UiMessageFormat("msg-1")
    raw = wire.content("Hello") + wire.content(", world\n!") + wire.done(DONE)

    assert chunks(raw) == [
        *START,
        {"type": "text-start", "id": "text-1"},
        {"type": "text-delta", "id": "text-1", "delta": "Hello"},
        {"type": "text-delta", "id": "text-1", "delta": ", world\n!"},
        {"type": "text-end", "id": "text-1"},
        *FINISH,
    ]


def test_a_stream_without_text_still_starts_and_finishes_its_message():
    wire = UiMessageFormat("msg-1")
    raw = wire.part(ToolUseStart("toolu_1", "get_weather")) + wire.done(DONE)
    assert chunks(raw) == [*START, *FINISH]


def test_the_finish_carries_the_chain_report_of_the_done_event():
    done = {**DONE, "models_tried": ["a", "b"], "retries": 1}
    last = chunks(UiMessageFormat("msg-1").done(done))[-2]
    assert last == {
        "type": "finish",
        "messageMetadata": {**METADATA, "models_tried": ["a", "b"], "retries": 1},
    }


def test_a_failure_after_the_start_is_an_error_part_then_the_end_marker():
    wire = UiMessageFormat("msg-1")
    raw = wire.content("Hel")
    last = wire.error({"type": "error", "error": "Overloaded.", "code": "x", "request_id": "r"})
    assert last is not None
    assert chunks(raw + last)[-2:] == [{"type": "error", "errorText": "Overloaded."}, "[DONE]"]


async def test_a_failure_before_the_start_is_its_status_with_one_error_part():
    error = RateLimited("Too many requests for sk-secret.", retry_after=2.5, limit="rpm")
    response = UiMessageFormat().error_response(
        error, "req-1", Redactor(["sk-secret"]), {"X-Request-ID": "req-1"}
    )

    assert response.status == 429
    assert response.headers["Retry-After"] == "3"
    assert response.headers["X-Request-ID"] == "req-1"
    assert response.headers["x-vercel-ai-ui-message-stream"] == "v1"
    assert response.body is not None
    body = bytes(response.body)
    assert chunks(body) == [{"type": "error", "errorText": "Too many requests for [redacted]."}]


def test_the_headers_name_the_ui_message_stream_protocol():
    assert UiMessageFormat().headers == {
        "Content-Type": "text/event-stream",
        "Cache-Control": "no-cache",
        "X-Accel-Buffering": "no",
        "x-vercel-ai-ui-message-stream": "v1",
    }
    assert UiMessageFormat().keepalive == b": keep-alive\n\n"


def test_each_response_has_its_own_message_id():
    first, second = UiMessageFormat(), UiMessageFormat()
    assert chunks(first.content("a"))[0]["messageId"] != chunks(second.content("a"))[0]["messageId"]


# --- useChat's body ---------------------------------------------------------------------


def test_a_use_chat_body_makes_the_guide_bodys_upstream_request():
    ui = parse_body(
        UiChatBody,
        use_chat_body(
            ("system", [text("Be brief.")]),
            ("user", [text("What is "), text("FastAPI?"), {"type": "file", "url": "x"}]),
            ("assistant", [{"type": "step-start"}, text("A framework.")]),
            ("assistant", [{"type": "reasoning", "text": "hmm"}]),  # no text: left out
            ("user", [text("And Flask?")]),
            max_tokens=300,
            temperature=0.5,
            model="haiku",
            system="You are helpful.",
            metadata={"user_id": "u-7"},
        ),
        64_000,
    )
    guide = parse_body(
        ChatBody,
        {
            "messages": [
                {"role": "user", "content": "What is FastAPI?"},
                {"role": "assistant", "content": "A framework."},
                {"role": "user", "content": "And Flask?"},
            ],
            "max_tokens": 300,
            "temperature": 0.5,
            "model": "haiku",
            "system": "You are helpful.\n\nBe brief.",
            "metadata": {"user_id": "u-7"},
        },
        64_000,
    )

    assert ui.to_upstream() == guide.to_upstream()
    assert (ui.model, ui.chat_id, ui.trigger) == ("haiku", "chat-1", "submit-message")


def test_a_use_chat_body_takes_the_guide_bodys_defaults():
    ui = parse_body(UiChatBody, use_chat_body(("user", [text("Hi")])), 64_000)
    assert (
        ui.to_upstream()
        == parse_body(
            ChatBody, {"messages": [{"role": "user", "content": "Hi"}]}, 64_000
        ).to_upstream()
    )
    assert ui.model is None


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ({"messages": [{"role": "user", "parts": [text("x")]}]}, "id: is required"),
        (use_chat_body(("user", [{"type": "text"}])), "messages.0.parts.0: a text part needs"),
        (use_chat_body(("bot", [text("x")])), "messages.0.role: Input should be"),
        (use_chat_body(("assistant", [text("x")])), "the first message must have role 'user'"),
        (use_chat_body(("user", [{"type": "file", "url": "x"}])), "has empty content"),
        (use_chat_body(("user", [text("x")]), max_tokens=0), "max_tokens: must be between 1"),
        ({**use_chat_body(("user", [text("x")])), "trigger": "go"}, "trigger: Input should be"),
    ],
)
def test_a_use_chat_body_is_refused_as_other_bodies_are(body, problem):
    with pytest.raises(InvalidBody) as refused:
        parse_body(UiFormatChatBody, body, 64_000)
    assert refused.value.client_status == 422
    assert refused.value.code == "invalid_request"
    assert refused.value.message.startswith("Invalid request: ")
    assert problem in refused.value.message


def test_the_ui_format_reads_a_guide_body_as_the_guide_does():
    body = parse_body(UiFormatChatBody, CHAT, 64_000)
    assert body.chat_id is None
    assert body.to_upstream() == parse_body(ChatBody, CHAT, 64_000).to_upstream()


# --- through the gateway ----------------------------------------------------------------


async def post_ui(client: Any, path: str, body: Any) -> tuple[int, dict[str, str], list[Any]]:
    async with client.post(path, json=body, headers={"X-Request-ID": "req-ui-1"}) as response:
        return response.status, dict(response.headers), chunks(await response.read())


def assert_message(stream: list[Any], text: str, model: str) -> None:
    """`stream` is one whole message whose text is `text`, answered by `model`."""
    message_id = stream[0]["messageId"]
    assert stream[:3] == [
        {"type": "start", "messageId": message_id},
        {"type": "start-step"},
        {"type": "text-start", "id": "text-1"},
    ]
    deltas = stream[3:-4]
    assert {(c["type"], c["id"]) for c in deltas} == {("text-delta", "text-1")}
    assert "".join(c["delta"] for c in deltas) == text
    assert stream[-4:-2] == [{"type": "text-end", "id": "text-1"}, {"type": "finish-step"}]
    finish = stream[-2]
    assert finish["type"] == "finish" and set(finish) == {"type", "messageMetadata"}
    assert finish["messageMetadata"]["model"] == model
    assert finish["messageMetadata"]["stop_reason"] == "end_turn"
    assert finish["messageMetadata"]["request_id"] == "req-ui-1"
    assert set(finish["messageMetadata"]["usage"]) >= {"input_tokens", "output_tokens"}
    assert stream[-1] == "[DONE]"


async def test_use_chat_body_streams_a_ui_message_from_the_upstream(gateway, fake_anthropic):
    client = await gateway()
    body = use_chat_body(("user", [text("What is FastAPI?")]), max_tokens=500)
    status, headers, stream = await post_ui(client, "/ai/stream/chat?format=ui", body)

    assert status == 200
    assert headers["Content-Type"] == "text/event-stream"
    assert headers["x-vercel-ai-ui-message-stream"] == "v1"
    assert headers["X-Request-ID"] == "req-ui-1"
    assert_message(stream, "Hello, world!", "claude-sonnet-4-5-20250929")

    # the upstream was asked exactly what the guide's body asks
    await post_ui(client, "/ai/stream/chat", CHAT)
    ui_request, guide_request = (seen.body for seen in fake_anthropic.seen)
    assert ui_request == guide_request


async def test_a_guide_body_streams_a_ui_message_too(gateway):
    client = await gateway()
    status, _, stream = await post_ui(client, "/ai/stream/chat?format=ui", CHAT)
    assert status == 200
    assert_message(stream, "Hello, world!", "claude-sonnet-4-5-20250929")


async def test_generate_streams_a_ui_message(gateway):
    client = await gateway()
    status, _, stream = await post_ui(client, "/ai/stream/generate?format=ui", GENERATE)
    assert status == 200
    assert_message(stream, "Hello, world!", "claude-sonnet-4-5-20250929")


async def test_the_event_source_form_streams_a_ui_message(gateway):
    client = await gateway()
    url = "/ai/stream/generate?format=ui&prompt=hello"
    async with client.get(url, headers={"X-Request-ID": "req-ui-1"}) as response:
        assert response.status == 200
        assert_message(chunks(await response.read()), "Hello, world!", "claude-sonnet-4-5-20250929")


async def test_a_refused_use_chat_body_is_a_422_with_one_error_part(gateway, fake_anthropic):
    client = await gateway()
    body = use_chat_body(("assistant", [text("Hi")]))
    status, headers, stream = await post_ui(client, "/ai/stream/chat?format=ui", body)

    assert status == 422
    assert headers["x-vercel-ai-ui-message-stream"] == "v1"
    assert stream == [
        {
            "type": "error",
            "errorText": "Invalid request: messages: the first message must have role 'user'",
        }
    ]
    assert fake_anthropic.requests == 0


async def test_an_upstream_failure_after_the_start_ends_the_message_with_an_error(
    gateway, fake_anthropic
):
    fake_anthropic.script(Script(fault="error_event", fault_after=2))
    client = await gateway(**NO_RETRY)
    body = use_chat_body(("user", [text("What is FastAPI?")]))
    status, _, stream = await post_ui(client, "/ai/stream/chat?format=ui", body)

    assert status == 200
    assert [c if c == "[DONE]" else c["type"] for c in stream] == [
        "start",
        "start-step",
        "text-start",
        "text-delta",
        "text-delta",
        "error",
        "[DONE]",
    ]
    assert "overloaded" in stream[-2]["errorText"]
