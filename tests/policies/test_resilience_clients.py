"""The key rows of the error-policy table (tests/policies/test_resilience_e2e.py) through
both Anthropic clients, `client: wire` and `client: sdk`, so that both are held to the
same table: they must map the same upstream answers to the same errors.

Chain under test: sonnet → haiku, both on the fake Anthropic, short backoffs.
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from tests.conftest import CHAT, GatewayFactory, post_stream
from tests.fakes.anthropic_server import FakeAnthropic
from tests.fakes.script import Script

SONNET, HAIKU = "claude-sonnet-4-5-20250929", "claude-haiku-4-5-20251001"
FAST_RETRY = {"max_attempts": 3, "initial_backoff_ms": 10, "max_backoff_ms": 50, "deadline_s": 10}


@pytest.fixture(params=["wire", "sdk"])
def table(request: pytest.FixtureRequest) -> dict[str, Any]:
    """Gateway overrides: the chain under test, on the Anthropic client of this run."""
    return {
        "providers": {"anthropic": {"client": request.param}},
        "chains": {"default": {"targets": ["sonnet", "haiku"], "retry": FAST_RETRY}},
    }


def models_called(fake: FakeAnthropic) -> list[str]:
    return [seen.body["model"] for seen in fake.seen]


async def test_429_with_retry_after_is_retried_on_the_same_target_then_served(
    gateway: GatewayFactory, fake_anthropic: FakeAnthropic, table: dict[str, Any]
) -> None:
    fake_anthropic.script(Script(status=429, retry_after="1"), Script())
    client = await gateway(**table)
    started = time.monotonic()
    result = await post_stream(client, "/ai/stream/chat", CHAT)

    assert time.monotonic() - started >= 1.0  # the upstream's Retry-After was honoured
    assert result.status == 200
    assert result.text == "Hello, world!"
    assert result.last["model"] == SONNET
    assert result.last["retries"] == 1
    assert models_called(fake_anthropic) == [SONNET, SONNET]
    result.assert_one_terminal()


async def test_529_is_retried_then_falls_back_to_the_second_target(
    gateway: GatewayFactory, fake_anthropic: FakeAnthropic, table: dict[str, Any]
) -> None:
    fake_anthropic.script(*[Script(status=529)] * 3, Script(chunks=["from ", "haiku"]))
    client = await gateway(**table)
    result = await post_stream(client, "/ai/stream/chat", CHAT)

    assert result.status == 200
    assert result.text == "from haiku"
    assert result.last["model"] == HAIKU
    assert result.last["models_tried"] == [SONNET, HAIKU]
    assert models_called(fake_anthropic) == [SONNET] * 3 + [HAIKU]
    result.assert_one_terminal()


async def test_400_is_neither_retried_nor_fallen_back(
    gateway: GatewayFactory, fake_anthropic: FakeAnthropic, table: dict[str, Any]
) -> None:
    fake_anthropic.script(Script(status=400))
    client = await gateway(**table)
    result = await post_stream(client, "/ai/stream/chat", CHAT)

    assert result.status == 400
    assert [e["type"] for e in result.events] == ["error"]
    assert result.last["code"] == "upstream_rejected_request"
    assert models_called(fake_anthropic) == [SONNET]


@pytest.mark.parametrize(
    ("fault", "code"),
    [("error_event", "upstream_overloaded"), ("drop", "upstream_connection_error")],
)
async def test_a_mid_stream_failure_ends_with_one_error_event(
    gateway: GatewayFactory,
    fake_anthropic: FakeAnthropic,
    table: dict[str, Any],
    fault: Any,
    code: str,
) -> None:
    fake_anthropic.script(Script(fault=fault, fault_after=2))
    client = await gateway(**table)
    result = await post_stream(client, "/ai/stream/chat", CHAT)

    assert result.status == 200
    assert result.text == "Hello, "
    assert (result.last["type"], result.last["code"]) == ("error", code)
    assert models_called(fake_anthropic) == [SONNET]  # no retry, no fallback after text
    result.assert_one_terminal()
