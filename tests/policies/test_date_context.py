from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from policies.base import Call, Chain, compose
from policies.date_context import DateContext, add_date_context
from providers.base import Message, StreamEnd, UpstreamRequest
from tests.conftest import CHAT, post_stream

FIXED = datetime(2026, 11, 24, 20, 53, tzinfo=ZoneInfo("UTC"))


def test_date_line_is_appended_to_an_existing_system_prompt():
    assert add_date_context("Be brief.", FIXED) == (
        "Be brief.\n\nCurrent date and time: Tuesday, 24 November 2026, 20:53 UTC."
    )


def test_date_line_is_the_system_prompt_when_there_is_none():
    assert add_date_context(None, FIXED).startswith("Current date and time: Tuesday")


async def test_step_rewrites_the_request_seen_by_the_rest_of_the_chain():
    seen: list[UpstreamRequest] = []

    async def innermost(call: Call):
        seen.append(call.request)
        yield StreamEnd(model="m", stop_reason="end_turn")

    step = DateContext("Europe/Paris", clock=lambda zone: FIXED.astimezone(zone))
    request = UpstreamRequest(messages=(Message("user", "hi"),), max_tokens=5)
    _ = [d async for d in compose([step], innermost)(Call.start(request, Chain("c", ())))]
    assert seen[0].system == "Current date and time: Tuesday, 24 November 2026, 21:53 CET."


async def test_gateway_adds_date_context_by_default(gateway, fake_anthropic):
    client = await gateway()
    await post_stream(client, "/ai/stream/chat", CHAT)
    assert fake_anthropic.seen[-1].body["system"].startswith("Current date and time: ")


async def test_date_context_can_be_switched_off(gateway, fake_anthropic):
    client = await gateway(server={"date_context": {"enabled": False}})
    await post_stream(client, "/ai/stream/chat", {**CHAT, "system": "Be brief."})
    assert fake_anthropic.seen[-1].body["system"] == "Be brief."
