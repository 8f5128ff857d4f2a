"""The fake Anthropic enforces the real API's model and version rules, before streaming.

Every rule is checked through the official SDK (which speaks `anthropic-version:
2026-10-21`) and through a raw POST under `2023-06-01` (what the gateway's wire client
speaks): a request the real API refuses gets its 400 `invalid_request_error` from the fake
too, and a request it accepts streams normally.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pytest
from anthropic import AsyncAnthropic, BadRequestError

from tests.fakes import anthropic_rules as rules
from tests.fakes.anthropic_server import API_KEY, FakeAnthropic
from tests.fakes.script import Script

OLD_VERSION = "2023-06-01"
SDK_VERSION = "2026-10-21"
PREFILL_OK = ["claude-sonnet-4-5-20250929", "claude-haiku-4-5-20251001", "claude-opus-4-20250514"]
NO_PREFILL = [
    "claude-sonnet-4-6",
    "claude-opus-4-6",
    "claude-opus-4-7",
    "claude-sonnet-5",
    "claude-sonnet-5-5",
    "claude-haiku-5-5",
    "my-fine-tune",  # unreadable: the newest rules
]
USER = {"role": "user", "content": "Count to five"}


@dataclass
class Outcome:
    """What one client saw: the error body of a 400, or the stream's text and events."""

    error: dict[str, Any] | None = None
    text: str = ""
    events: list[str] = field(default_factory=list)  # event types, block types in brackets
    stop_reason: str | None = None
    stop_sequence: str | None = None


def rejection(message: str) -> dict[str, Any]:
    return {"type": "error", "error": {"type": "invalid_request_error", "message": message}}


async def via_sdk(fake: FakeAnthropic, body: dict[str, Any], version: str | None = None) -> Outcome:
    """Send `body` with the official SDK; sampling parameters go in `extra_body` (SDK 2.x
    has no argument for them).  Only a BadRequestError is caught: any other failure fails."""
    params = dict(body)
    extra = {key: params.pop(key) for key in rules.SAMPLING_PARAMS if key in params}
    headers = {"anthropic-version": version} if version else None
    async with AsyncAnthropic(
        api_key=API_KEY, base_url=fake.url, max_retries=0, default_headers=headers
    ) as client:
        try:
            stream = await client.messages.create(stream=True, extra_body=extra or None, **params)
        except BadRequestError as exc:
            assert exc.status_code == 400
            return Outcome(error=exc.body)  # type: ignore[arg-type]
        outcome = Outcome()
        async with stream:
            async for event in stream:
                outcome.events.append(event.type)
                if event.type == "content_block_start":
                    outcome.events.append(f"[{event.content_block.type}]")
                elif event.type == "content_block_delta" and event.delta.type == "text_delta":
                    outcome.text += event.delta.text
                elif event.type == "message_delta":
                    outcome.stop_reason = event.delta.stop_reason
                    outcome.stop_sequence = event.delta.stop_sequence
        return outcome


async def via_raw(fake: FakeAnthropic, body: dict[str, Any], version: str = OLD_VERSION) -> Outcome:
    """POST `body` as the gateway's wire client does; a refusal must come before any stream."""
    headers = {"x-api-key": API_KEY, "anthropic-version": version}
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            f"{fake.url}/v1/messages", json={**body, "stream": True}, headers=headers
        ) as r,
    ):
        if r.status != 200:
            assert r.status == 400
            assert r.content_type == "application/json"
            return Outcome(error=await r.json())
        assert r.content_type == "text/event-stream"
        outcome = Outcome()
        for frame in (await r.text()).split("\n\n"):
            if not frame.startswith("event: "):
                continue
            data = json.loads(frame.partition("\ndata: ")[2])
            outcome.events.append(data["type"])
            if data["type"] == "content_block_start":
                outcome.events.append(f"[{data['content_block']['type']}]")
            elif data["type"] == "content_block_delta" and data["delta"]["type"] == "text_delta":
                outcome.text += data["delta"]["text"]
            elif data["type"] == "message_delta":
                outcome.stop_reason = data["delta"]["stop_reason"]
                outcome.stop_sequence = data["delta"]["stop_sequence"]
        return outcome


CLIENTS = {"sdk": via_sdk, "raw": via_raw}


@pytest.fixture(params=sorted(CLIENTS))
def send(request, fake_anthropic):
    """Send a request body through one client (the official SDK, or a raw POST)."""

    async def go(body: dict[str, Any]) -> Outcome:
        return await CLIENTS[request.param](fake_anthropic, {"max_tokens": 64, **body})

    return go


def assert_streamed(outcome: Outcome) -> None:
    assert outcome.error is None
    assert outcome.text == "Hello, world!"
    assert outcome.events[-1] == "message_stop"
    assert outcome.stop_reason == "end_turn"


# --- the model table --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("model_id", "family", "version"),
    [
        ("claude-sonnet-4-6", "sonnet", (4, 6)),
        ("claude-opus-4-7", "opus", (4, 7)),
        ("claude-sonnet-5", "sonnet", (5, 0)),
        ("claude-haiku-5-5", "haiku", (5, 5)),
        ("claude-haiku-4-5-20251001", "haiku", (4, 5)),
        ("claude-sonnet-4-5-20250929", "sonnet", (4, 5)),
        ("claude-opus-4-20250514", "opus", (4, 0)),  # the date is not a minor version
        ("claude-3-5-sonnet-20241022", "sonnet", (3, 5)),
    ],
)
def test_model_ids_are_read_as_family_and_version(model_id, family, version):
    assert rules.parse_model(model_id) == rules.ClaudeModel(family, version)


@pytest.mark.parametrize("model_id", ["my-fine-tune", "claude-sonnet", "claude-sonnet-4-6-2025"])
def test_an_unreadable_id_gets_the_newest_rules(model_id):
    assert rules.parse_model(model_id) is None
    assert not rules.accepts_prefill(model_id)
    assert not rules.accepts_sampling(model_id, OLD_VERSION)


# --- prefill ----------------------------------------------------------------------------


@pytest.mark.parametrize("model", PREFILL_OK)
async def test_prefill_streams_on_models_before_4_6(send, fake_anthropic, model):
    prefill = {"role": "assistant", "content": "1, 2,"}
    assert_streamed(await send({"model": model, "messages": [USER, prefill]}))
    assert fake_anthropic.seen[-1].body["messages"][-1] == prefill


@pytest.mark.parametrize("model", NO_PREFILL)
async def test_prefill_is_400_from_4_6_on(send, fake_anthropic, model):
    prefill = {"role": "assistant", "content": "1, 2,"}
    outcome = await send({"model": model, "messages": [USER, prefill]})
    assert outcome.error == rejection(rules.PREFILL_UNSUPPORTED)
    assert rules.PREFILL_PHRASE in rules.PREFILL_UNSUPPORTED
    assert fake_anthropic.rejections == [rules.PREFILL_UNSUPPORTED]


@pytest.mark.parametrize(
    "content",
    ["1, 2, ", "1, 2,\n", [{"type": "text", "text": "1, 2, "}]],
    ids=["space", "newline", "block"],
)
@pytest.mark.parametrize("model", PREFILL_OK)
async def test_prefill_ending_in_whitespace_is_400(send, model, content):
    outcome = await send(
        {"model": model, "messages": [USER, {"role": "assistant", "content": content}]}
    )
    assert outcome.error == rejection(rules.TRAILING_WHITESPACE)


async def test_a_refused_prefill_is_refused_as_a_prefill_whatever_its_whitespace(send):
    prefill = {"role": "assistant", "content": "1, 2, "}
    outcome = await send({"model": "claude-sonnet-4-6", "messages": [USER, prefill]})
    assert outcome.error == rejection(rules.PREFILL_UNSUPPORTED)


@pytest.mark.parametrize("model", ["claude-sonnet-4-6", "claude-opus-4-7", "claude-sonnet-5"])
async def test_a_user_turn_after_assistant_turns_streams_on_new_models(send, model):
    history = [USER, {"role": "assistant", "content": "1, 2, 3"}, USER]
    assert_streamed(await send({"model": model, "messages": history}))


async def test_an_empty_final_assistant_turn_is_a_prefill_but_an_empty_turn_elsewhere_is_400(
    send,
):
    empty_prefill = [USER, {"role": "assistant", "content": ""}]
    assert_streamed(await send({"model": "claude-sonnet-4-5-20250929", "messages": empty_prefill}))
    continued = [*empty_prefill, {"role": "user", "content": "Go on"}]
    outcome = await send({"model": "claude-sonnet-4-6", "messages": continued})
    assert outcome.error == rejection(f"messages.1: {rules.EMPTY_CONTENT}")


# --- sampling parameters ------------------------------------------------------------------


SAMPLING_TABLE = [  # model, accepted under 2023-06-01
    ("claude-sonnet-4-5-20250929", True),
    ("claude-haiku-4-5-20251001", True),
    ("claude-sonnet-4-6", True),
    ("claude-opus-4-6", True),
    ("claude-sonnet-5", False),
    ("claude-sonnet-5-5", False),
    ("claude-opus-4-7", False),
    ("claude-opus-4-8", False),
    ("claude-haiku-5-5", False),
    ("my-fine-tune", False),
]


@pytest.mark.parametrize("param", ["temperature", "top_p", "top_k"])
@pytest.mark.parametrize(("model", "accepted"), SAMPLING_TABLE)
async def test_sampling_parameters_under_2023_06_01_follow_the_model_table(
    fake_anthropic, model, accepted, param
):
    body = {"model": model, "max_tokens": 64, "messages": [USER], param: 1}
    outcome = await via_raw(fake_anthropic, body)
    if accepted:
        assert_streamed(outcome)
    else:
        assert outcome.error == rejection(f"`{param}` is deprecated for this model.")
    assert fake_anthropic.seen[-1].body[param] == 1


@pytest.mark.parametrize("param", ["temperature", "top_p", "top_k"])
@pytest.mark.parametrize("model", [model for model, _ in SAMPLING_TABLE])
async def test_sampling_parameters_are_400_on_every_model_under_2026_10_21(
    fake_anthropic, model, param
):
    body = {"model": model, "max_tokens": 64, "messages": [USER], param: 1}
    message = f"{param}: Extra inputs are not permitted"
    assert (await via_sdk(fake_anthropic, body)).error == rejection(message)
    assert (await via_raw(fake_anthropic, body, SDK_VERSION)).error == rejection(message)
    assert fake_anthropic.seen[0].headers["anthropic-version"] == SDK_VERSION


async def test_the_sdk_told_to_speak_2023_06_01_may_send_temperature_to_older_models(
    fake_anthropic,
):
    body = {"model": "claude-sonnet-4-6", "max_tokens": 64, "messages": [USER], "temperature": 1}
    assert_streamed(await via_sdk(fake_anthropic, body, version=OLD_VERSION))
    assert fake_anthropic.seen[-1].headers["anthropic-version"] == OLD_VERSION


async def test_the_refusal_names_the_first_sampling_parameter_sent(fake_anthropic):
    body = {"model": "claude-opus-4-7", "max_tokens": 64, "messages": [USER], "top_k": 5}
    outcome = await via_raw(fake_anthropic, {**body, "temperature": 0.5})
    assert outcome.error == rejection("`top_k` is deprecated for this model.")


@pytest.mark.parametrize(
    ("model", "accepted"),
    [
        ("claude-sonnet-4-5-20250929", False),
        ("claude-haiku-4-5-20251001", False),
        ("claude-sonnet-4-6", False),
        ("claude-opus-4-1-20250805", False),
        ("claude-opus-4-20250514", True),
        ("claude-3-5-sonnet-20241022", True),
    ],
)
async def test_temperature_with_top_p_is_400_from_4_1_on(fake_anthropic, model, accepted):
    body = {"model": model, "max_tokens": 64, "messages": [USER], "temperature": 0.5}
    outcome = await via_raw(fake_anthropic, {**body, "top_p": 0.9})
    if accepted:
        assert_streamed(outcome)
    else:
        assert outcome.error == rejection(rules.TEMPERATURE_AND_TOP_P)
    assert_streamed(await via_raw(fake_anthropic, {**body, "top_k": 5}))


# --- thinking ---------------------------------------------------------------------------

ENABLED = {"type": "enabled", "budget_tokens": 1024}
ADAPTIVE = {"type": "adaptive"}


@pytest.mark.parametrize("thinking", [ENABLED, ADAPTIVE], ids=["enabled", "adaptive"])
@pytest.mark.parametrize("model", ["claude-sonnet-4-5-20250929", "claude-opus-4-7"])
async def test_thinking_streams_a_thinking_block_before_the_text(send, model, thinking):
    outcome = await send(
        {"model": model, "max_tokens": 2048, "messages": [USER], "thinking": thinking}
    )
    assert_streamed(outcome)
    assert outcome.events[:3] == ["message_start", "content_block_start", "[thinking]"]
    assert outcome.events.index("[thinking]") < outcome.events.index("[text]")


@pytest.mark.parametrize("thinking", [ENABLED, ADAPTIVE], ids=["enabled", "adaptive"])
@pytest.mark.parametrize("model", [*PREFILL_OK, "claude-sonnet-4-6"])
async def test_prefill_with_thinking_is_400_on_every_model(send, model, thinking):
    body = {
        "model": model,
        "max_tokens": 2048,
        "messages": [USER, {"role": "assistant", "content": "1, 2,"}],
        "thinking": thinking,
    }
    assert (await send(body)).error == rejection(rules.PREFILL_WITH_THINKING)


async def test_thinking_budget_below_the_minimum_is_400(send):
    thinking = {"type": "enabled", "budget_tokens": 100}
    outcome = await send(
        {"model": "claude-sonnet-4-5-20250929", "messages": [USER], "thinking": thinking}
    )
    assert outcome.error is not None
    assert outcome.error["error"]["message"].startswith("thinking.enabled.budget_tokens")


# --- stop reasons -----------------------------------------------------------------------


@pytest.mark.parametrize("stop_reason", sorted(rules.STOP_REASONS))
async def test_message_delta_carries_the_scripted_stop_reason(send, fake_anthropic, stop_reason):
    fake_anthropic.script(Script(stop_reason=stop_reason))
    outcome = await send(
        {"model": "claude-sonnet-4-6", "messages": [USER], "stop_sequences": ["END"]}
    )
    assert outcome.stop_reason == stop_reason
    assert outcome.stop_sequence == ("END" if stop_reason == "stop_sequence" else None)


def test_a_script_cannot_invent_a_stop_reason():
    with pytest.raises(ValueError, match="stop_reason"):
        FakeAnthropic().script(Script(stop_reason="finished"))


# --- authentication and versions --------------------------------------------------------


async def test_sdk_sends_its_key_as_bearer_under_2026_10_21(fake_anthropic):
    assert_streamed(
        await via_sdk(
            fake_anthropic, {"model": "claude-sonnet-4-6", "max_tokens": 64, "messages": [USER]}
        )
    )
    headers = fake_anthropic.seen[-1].headers
    assert headers["Authorization"] == f"Bearer {API_KEY}"
    assert "x-api-key" not in {name.lower() for name in headers}
    assert headers["anthropic-version"] == SDK_VERSION


@pytest.mark.parametrize(
    ("x_api_key", "bearer", "status"),
    [(API_KEY, "wrong", 200), ("wrong", API_KEY, 401), (None, API_KEY, 200), (None, "wrong", 401)],
)
async def test_x_api_key_wins_over_bearer_when_both_are_sent(
    fake_anthropic, x_api_key, bearer, status
):
    headers = {"anthropic-version": OLD_VERSION, "Authorization": f"Bearer {bearer}"}
    if x_api_key:
        headers["x-api-key"] = x_api_key
    body = {"model": "claude-sonnet-4-6", "max_tokens": 64, "messages": [USER], "stream": True}
    async with (
        aiohttp.ClientSession() as session,
        session.post(f"{fake_anthropic.url}/v1/messages", json=body, headers=headers) as r,
    ):
        assert r.status == status


async def test_an_unknown_api_version_is_400(fake_anthropic):
    body = {"model": "claude-sonnet-4-6", "max_tokens": 64, "messages": [USER]}
    outcome = await via_raw(fake_anthropic, body, version="2025-01-01")
    assert outcome.error == rejection(rules.invalid_api_version("2025-01-01"))
