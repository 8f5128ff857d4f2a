"""Today's Claude models end to end, against a fake that enforces their rules: no prefill
from 4.6 on, sampling parameters refused by the 5-series, stop reasons passed through."""

from __future__ import annotations

import logging

import pytest

from providers.base import CONTINUE_PROMPT
from tests.conftest import CHAT, post_stream
from tests.fakes.anthropic_server import Script
from tests.gateway.test_operations import access_records

MODELS = {
    "sonnet46": {"provider": "anthropic", "model": "claude-sonnet-4-6"},
    "opus46": {"provider": "anthropic", "model": "claude-opus-4-6"},
    "sonnet55": {"provider": "anthropic", "model": "claude-sonnet-5-5"},
}


def chain(*targets: str, **settings) -> dict:
    return {
        "models": MODELS,
        "chains": {"default": {"targets": list(targets), "retry": {"max_attempts": 1}, **settings}},
    }


async def test_continuation_between_two_4_6_models_needs_no_prefill_and_repeats_nothing(
    gateway, fake_anthropic
):
    fake_anthropic.script(
        Script(chunks=["The quick ", "brown fox ", "and"], fault="drop", fault_after=2),
        Script(chunks=["brown fox", " jumps over."]),  # it restates its last words
    )
    client = await gateway(**chain("sonnet46", "opus46", on_stream_failure="continue"))
    result = await post_stream(client, "/ai/stream/chat", CHAT)

    assert result.text == "The quick brown fox jumps over."
    assert result.last["type"] == "done" and result.last["model"] == "claude-opus-4-6"
    assert fake_anthropic.rejections == []  # no 400 upstream
    assert fake_anthropic.seen[1].body["messages"][-2:] == [
        {"role": "assistant", "content": "The quick brown fox"},
        {"role": "user", "content": CONTINUE_PROMPT},
    ]


async def test_the_guides_temperature_reaches_a_model_that_honours_it(gateway, fake_anthropic):
    client = await gateway(**chain("sonnet46"))
    result = await post_stream(client, "/ai/stream/chat", {**CHAT, "temperature": 0.7})

    assert result.last["type"] == "done"
    assert fake_anthropic.seen[-1].body["temperature"] == 0.7
    assert "X-Gateway-Dropped-Params" not in result.headers


async def test_temperature_is_left_out_and_reported_for_a_5_series_model(
    gateway, fake_anthropic, caplog
):
    caplog.set_level(logging.INFO)
    client = await gateway(**chain("sonnet55"))
    result = await post_stream(client, "/ai/stream/chat", {**CHAT, "temperature": 0.7})

    assert result.last["type"] == "done"
    assert "temperature" not in fake_anthropic.seen[-1].body
    assert result.headers["X-Gateway-Dropped-Params"] == "temperature"
    (line,) = await access_records(caplog, 1)
    assert line["dropped_params"] == ["temperature"]


async def test_a_refusal_the_table_did_not_foresee_is_learned_once_and_retried_without(
    gateway, fake_anthropic, caplog
):
    models = {**MODELS, "sonnet55": {**MODELS["sonnet55"], "capabilities": {"temperature": True}}}
    client = await gateway(**{**chain("sonnet55"), "models": models})
    body = {**CHAT, "temperature": 0.7}
    first = await post_stream(client, "/ai/stream/chat", body)
    second = await post_stream(client, "/ai/stream/chat", body)

    assert first.last["type"] == second.last["type"] == "done"
    assert [("temperature" in seen.body) for seen in fake_anthropic.seen] == [True, False, False]
    assert first.headers["X-Gateway-Dropped-Params"] == "temperature"
    assert second.headers["X-Gateway-Dropped-Params"] == "temperature"
    lessons = [r for r in caplog.records if "left out of its requests" in r.getMessage()]
    assert len(lessons) == 1


async def test_a_refusal_stop_reason_is_never_continued(gateway, fake_anthropic):
    fake_anthropic.script(Script(chunks=["I can't help"], stop_reason="refusal"))
    client = await gateway(**chain("sonnet46", "opus46", on_stream_failure="continue"))
    result = await post_stream(client, "/ai/stream/chat", CHAT)

    assert (result.last["type"], result.last["stop_reason"]) == ("done", "refusal")
    assert fake_anthropic.requests == 1


@pytest.mark.parametrize(
    "stop_reason",
    [
        "end_turn",
        "max_tokens",
        "stop_sequence",
        "refusal",
        "pause_turn",
        "model_context_window_exceeded",
    ],
)
@pytest.mark.parametrize("client_kind", ["wire", "sdk"])
async def test_stop_reasons_pass_through_to_done(gateway, fake_anthropic, stop_reason, client_kind):
    fake_anthropic.script(Script(stop_reason=stop_reason))
    client = await gateway(providers={"anthropic": {"client": client_kind}}, **chain("sonnet46"))
    body = {**CHAT, "stop_sequences": ["END"]}
    result = await post_stream(client, "/ai/stream/chat", body)
    assert (result.last["type"], result.last["stop_reason"]) == ("done", stop_reason)


async def test_budgeted_thinking_in_config_reaches_a_5_series_model_as_adaptive(
    gateway, fake_anthropic
):
    thinking = {"type": "enabled", "budget_tokens": 2048}
    models = {**MODELS, "sonnet55": {**MODELS["sonnet55"], "options": {"thinking": thinking}}}
    client = await gateway(**{**chain("sonnet55"), "models": models})
    result = await post_stream(client, "/ai/stream/chat", {**CHAT, "max_tokens": 4096})

    assert result.last["type"] == "done" and result.text == "Hello, world!"
    assert fake_anthropic.seen[-1].body["thinking"] == {"type": "adaptive"}
    # The fake streamed a thinking block first: the guide's stream keeps its three events.
    assert {event["type"] for event in result.events} == {"content", "done"}
