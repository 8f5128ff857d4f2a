"""Requests in one API, sent to a target of the same (pass-through) or the other
(translation): what each provider's request body holds, and what it reports dropped."""

from __future__ import annotations

from typing import Any

from gateway.chat_completions_body import ChatCompletionsBody
from gateway.messages_body import MessagesBody
from gateway.schemas import parse_body
from providers.anthropic.models import rules_for
from providers.anthropic.shared import to_anthropic_params
from providers.base import Capabilities, ModelRef, UpstreamRequest
from providers.openai_compatible import to_openai_body

WEATHER = {
    "name": "get_weather",
    "description": "Weather for a city",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}},
}
PIXEL = "iVBORw0KGgo="
PARIS = {"city": "Paris"}


def messages_request(**body: Any) -> UpstreamRequest:
    fields = {"model": "sonnet", "max_tokens": 100, **body}
    return parse_body(MessagesBody, fields, 64_000).to_upstream()


def chat_request(**body: Any) -> UpstreamRequest:
    return parse_body(ChatCompletionsBody, {"model": "sonnet", **body}, 64_000).to_upstream()


def anthropic_params(request: UpstreamRequest, model: str = "claude-sonnet-4-5") -> tuple:
    dropped: set[str] = set()
    rules = rules_for(model, "2023-06-01", Capabilities())
    return to_anthropic_params(request, rules, dropped), dropped


def openai_body(request: UpstreamRequest) -> tuple[dict[str, Any], set[str]]:
    model = ModelRef("gpt-test")
    return to_openai_body(request, model, "max_tokens"), model.dropped


TOOL_LOOP_ANTHROPIC = [
    {"role": "user", "content": "Weather in Paris?"},
    {
        "role": "assistant",
        "content": [
            {"type": "thinking", "thinking": "Use the tool.", "signature": "c2ln"},
            {"type": "text", "text": "Checking."},
            {
                "type": "tool_use",
                "id": "toolu_1",
                "name": "get_weather",
                "input": {"city": "Paris"},
            },
        ],
    },
    {
        "role": "user",
        "content": [
            {"type": "tool_result", "tool_use_id": "toolu_1", "content": "18 C, sunny"},
            {"type": "text", "text": "And tomorrow?"},
        ],
    },
]

TOOL_LOOP_OPENAI = [
    {"role": "developer", "content": "Be brief."},
    {"role": "user", "content": "Weather in Paris?"},
    {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {
                "id": "call_1",
                "type": "function",
                "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
            }
        ],
    },
    {"role": "tool", "tool_call_id": "call_1", "content": "18 C, sunny"},
    {"role": "user", "content": "And tomorrow?"},
]
OPENAI_WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather for a city",
        "parameters": WEATHER["input_schema"],
    },
}


def test_a_messages_body_passes_through_to_an_anthropic_target_unchanged():
    body = {
        "messages": TOOL_LOOP_ANTHROPIC,
        "tools": [WEATHER, {"type": "web_search_20250305", "name": "web_search"}],
        "tool_choice": {"type": "auto"},
        "system": [{"type": "text", "text": "Be brief.", "cache_control": {"type": "ephemeral"}}],
        "thinking": {"type": "enabled", "budget_tokens": 2000},
        "service_tier": "auto",
        "metadata": {"user_id": "u-1"},
    }
    params, dropped = anthropic_params(messages_request(**body))
    assert params == {**body, "max_tokens": 100}
    assert dropped == set()


def test_pass_through_still_leaves_out_what_the_model_refuses():
    request = messages_request(messages=TOOL_LOOP_ANTHROPIC, temperature=0.5, top_k=5)
    params, dropped = anthropic_params(request, model="claude-sonnet-5-5")
    assert "temperature" not in params and "top_k" not in params
    assert dropped == {"temperature", "top_k"}


def test_a_rewritten_system_prompt_replaces_the_clients_own_in_pass_through():
    request = messages_request(messages=TOOL_LOOP_ANTHROPIC, system="Be brief.")
    params, _ = anthropic_params(request.with_system("Be brief.\n\nToday is Monday."))
    assert params["system"] == "Be brief.\n\nToday is Monday."
    body, _ = openai_body(chat_request(messages=TOOL_LOOP_OPENAI).with_system("Dated."))
    assert [m["role"] for m in body["messages"]] == ["system", "user", "assistant", "tool", "user"]
    assert body["messages"][0]["content"] == "Dated."


def test_a_chat_completions_body_passes_through_to_an_openai_target_unchanged():
    body = {
        "messages": TOOL_LOOP_OPENAI,
        "tools": [OPENAI_WEATHER],
        "tool_choice": "required",
        "response_format": {"type": "text"},
        "seed": 7,
        "max_completion_tokens": 50,
    }
    sent, dropped = openai_body(chat_request(**body))
    assert {k: v for k, v in sent.items() if k in body} == body  # its own limit field too
    assert sent["stream_options"] == {"include_usage": True}
    assert "max_tokens" not in sent and dropped == set()
    unlimited, _ = openai_body(chat_request(messages=TOOL_LOOP_OPENAI))
    assert "max_tokens" not in unlimited and "max_completion_tokens" not in unlimited


def test_chat_completions_tool_loop_translated_for_an_anthropic_target():
    request = chat_request(
        messages=TOOL_LOOP_OPENAI,
        tools=[OPENAI_WEATHER],
        tool_choice={"type": "function", "function": {"name": "get_weather"}},
        parallel_tool_calls=False,
        response_format={"type": "text"},
    )
    params, dropped = anthropic_params(request)
    assert params["system"] == "Be brief."
    assert params["tools"] == [WEATHER]
    assert params["tool_choice"] == {
        "type": "tool",
        "name": "get_weather",
        "disable_parallel_tool_use": True,
    }
    assert params["messages"] == [
        {"role": "user", "content": "Weather in Paris?"},
        {
            "role": "assistant",
            "content": [
                {
                    "type": "tool_use",
                    "id": "call_1",
                    "name": "get_weather",
                    "input": {"city": "Paris"},
                }
            ],
        },
        {
            "role": "user",
            "content": [
                {
                    "type": "tool_result",
                    "tool_use_id": "call_1",
                    "content": [{"type": "text", "text": "18 C, sunny"}],
                },
                {"type": "text", "text": "And tomorrow?"},
            ],
        },
    ]
    assert dropped == {"response_format"}


def test_messages_tool_loop_translated_for_an_openai_target():
    request = messages_request(
        messages=TOOL_LOOP_ANTHROPIC,
        tools=[WEATHER],
        tool_choice={"type": "any"},
        system="Be brief.",
        top_k=3,
        thinking={"type": "enabled", "budget_tokens": 2000},
    )
    body, dropped = openai_body(request)
    assert body["tools"] == [OPENAI_WEATHER]
    assert body["tool_choice"] == "required"
    assert body["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Weather in Paris?"},
        {
            "role": "assistant",
            "content": "Checking.",
            "tool_calls": [
                {
                    "id": "toolu_1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "toolu_1", "content": "18 C, sunny"},
        {"role": "user", "content": "And tomorrow?"},
    ]
    assert "top_k" not in body and "thinking" not in body
    assert dropped == {"thinking", "top_k"}


def test_images_cross_both_ways():
    inline = {
        "type": "image",
        "source": {"type": "base64", "media_type": "image/png", "data": PIXEL},
    }
    request = messages_request(
        messages=[{"role": "user", "content": [inline, {"type": "text", "text": "What is it?"}]}]
    )
    body, _ = openai_body(request)
    assert body["messages"][0]["content"] == [
        {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PIXEL}"}},
        {"type": "text", "text": "What is it?"},
    ]
    back = chat_request(messages=[{"role": "user", "content": body["messages"][0]["content"]}])
    params, _ = anthropic_params(back)
    assert params["messages"][0]["content"] == [inline, {"type": "text", "text": "What is it?"}]
    assert request.needs() == back.needs() == {"images"}


def test_a_block_only_one_api_knows_is_dropped_and_said_so():
    document = {
        "type": "document",
        "source": {"type": "text", "media_type": "text/plain", "data": "A memo."},
    }
    request = messages_request(
        messages=[{"role": "user", "content": [document, {"type": "text", "text": "Sum up."}]}]
    )
    body, dropped = openai_body(request)
    assert body["messages"] == [{"role": "user", "content": "Sum up."}]
    assert dropped == {"document"}


def test_what_one_api_allows_and_the_other_does_not_is_adapted_and_said():
    # An empty answer a Chat Completions client kept in its history: Anthropic refuses
    # an empty turn that is not the last.
    request = chat_request(
        messages=[
            {"role": "user", "content": "Hi"},
            {"role": "assistant", "content": ""},
            {"role": "user", "content": "Still there?"},
        ],
        temperature=1.5,  # Chat Completions allows up to 2, Anthropic 1
    )
    params, dropped = anthropic_params(request)
    assert [m["content"] for m in params["messages"]] == ["Hi", "Still there?"]
    assert params["temperature"] == 1.0 and dropped == {"temperature above 1"}

    failed = {"type": "tool_result", "tool_use_id": "toolu_1", "content": "no such city"}
    failed["is_error"] = True
    loop = [*TOOL_LOOP_ANTHROPIC[:2], {"role": "user", "content": [failed]}]
    stops = ["a", "b", "c", "d", "e"]
    body, dropped = openai_body(messages_request(messages=loop, stop_sequences=stops))
    assert body["messages"][-1]["content"] == "Error: no such city"
    assert body["stop"] == ["a", "b", "c", "d"]
    assert "stop_sequences beyond 4" in dropped
