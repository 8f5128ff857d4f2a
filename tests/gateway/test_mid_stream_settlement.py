"""A stream whose upstream fails after some text is settled once, with what it used.

The client gets the text and one `error` event; the tenant's usage records the request
once, charged the input tokens the upstream reported in `message_start` plus the output
estimated from the text sent; the concurrency slot is free for the next request.
"""

from __future__ import annotations

from typing import Any

import pytest

from gateway.state import STATE
from policies.admission.limiter import Limiter
from providers.base import estimate_tokens
from tests.conftest import CHAT, GatewayFactory, post_stream
from tests.fakes.anthropic_server import FakeAnthropic
from tests.fakes.script import Script
from tests.waiting import wait_until

SONNET = "claude-sonnet-4-5-20250929"
CHUNKS = ["Streams ", "can fail ", "midway, ", "and then?"]
SENT = "Streams can fail "  # the two chunks before the fault
INPUT_TOKENS = 37


def one_slot_no_retry() -> dict[str, Any]:
    return {
        "auth": {"anonymous_limits": {"concurrent_streams": 1}},
        "chains": {"default": {"targets": ["sonnet"], "retry": {"max_attempts": 1}}},
    }


@pytest.mark.parametrize(
    ("fault", "code"),
    [("error_event", "upstream_overloaded"), ("drop", "upstream_connection_error")],
)
async def test_a_stream_failing_midway_is_settled_once_with_its_partial_usage(
    gateway: GatewayFactory, fake_anthropic: FakeAnthropic, fault: Any, code: str
) -> None:
    fake_anthropic.script(
        Script(chunks=CHUNKS, fault=fault, fault_after=2, input_tokens=INPUT_TOKENS), Script()
    )
    client = await gateway(**one_slot_no_retry())
    limiter: Limiter = client.app[STATE].current.shared.limiter

    result = await post_stream(client, "/ai/stream/chat", CHAT)

    assert result.status == 200
    assert result.text == SENT
    assert (result.last["type"], result.last["code"]) == ("error", code)
    result.assert_one_terminal()

    async def settled() -> bool:
        return (await limiter.usage("anonymous")).as_dict()["requests"] != 0

    await wait_until(settled, "the stream's release")
    output = estimate_tokens(len(SENT))
    assert (await limiter.usage("anonymous")).as_dict() == {
        "tokens": INPUT_TOKENS + output,
        "requests": 1,
        "models": {SONNET: {"input_tokens": INPUT_TOKENS, "output_tokens": output, "requests": 1}},
    }

    again = await post_stream(client, "/ai/stream/chat", CHAT)  # the one slot is free
    assert again.status == 200
    assert again.last["type"] == "done"
    assert fake_anthropic.requests == 2
