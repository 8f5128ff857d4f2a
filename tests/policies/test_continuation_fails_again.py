"""Mid-stream continuation (`on_stream_failure: continue`) whose continuing target fails
midway too: the client gets the text of both, then exactly one `error` event, and the
tenant is charged the usage of both targets.

Chain under test: sonnet → haiku, both on the fake Anthropic, through the gateway.
"""

from __future__ import annotations

from typing import Any

from gateway.state import STATE
from policies.admission.limiter import Limiter
from providers.base import estimate_tokens
from tests.conftest import CHAT, GatewayFactory, post_stream
from tests.fakes.anthropic_server import FakeAnthropic
from tests.fakes.script import Script
from tests.waiting import wait_until

SONNET, HAIKU = "claude-sonnet-4-5-20250929", "claude-haiku-4-5-20251001"
CONTINUE: dict[str, Any] = {
    "chains": {
        "default": {
            "targets": ["sonnet", "haiku"],
            "retry": {"max_attempts": 1},
            "on_stream_failure": "continue",
        }
    }
}


async def test_a_continuation_that_fails_midway_ends_with_one_error_and_both_usages(
    gateway: GatewayFactory, fake_anthropic: FakeAnthropic
) -> None:
    fake_anthropic.script(
        Script(
            chunks=["The ", "quick ", "brown ", "fox"], fault="drop", fault_after=2, input_tokens=20
        ),
        Script(
            chunks=[" jumps", " over", " it."], fault="error_event", fault_after=1, input_tokens=30
        ),
    )
    client = await gateway(**CONTINUE)
    limiter: Limiter = client.app[STATE].current.shared.limiter

    result = await post_stream(client, "/ai/stream/chat", CHAT)

    assert result.status == 200
    assert result.text == "The quick jumps"
    result.assert_one_terminal()
    assert (result.last["type"], result.last["code"]) == ("error", "upstream_overloaded")
    assert [seen.body["model"] for seen in fake_anthropic.seen] == [SONNET, HAIKU]
    assert fake_anthropic.seen[1].body["messages"][-1] == {
        "role": "assistant",
        "content": "The quick",
    }

    async def settled() -> bool:
        return (await limiter.usage("anonymous")).as_dict()["requests"] != 0

    await wait_until(settled, "the stream's release")
    input_tokens = 20 + 30
    output_tokens = estimate_tokens(len("The quick ")) + estimate_tokens(len(" jumps"))
    usage = (await limiter.usage("anonymous")).as_dict()
    assert usage["tokens"] == input_tokens + output_tokens
    assert usage["requests"] == 1
    assert usage["models"] == {  # the request is reported under the last model that answered
        HAIKU: {"input_tokens": input_tokens, "output_tokens": output_tokens, "requests": 1}
    }
