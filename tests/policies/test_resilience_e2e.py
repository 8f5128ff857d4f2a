"""The error policy table, row by row, through the gateway against the fake Anthropic.

Chain under test: sonnet → haiku (both on the fake), short backoffs so the suite is fast.
"""

from __future__ import annotations

import asyncio
import time

import pytest

from gateway.state import STATE
from tests.clock import FakeClock
from tests.conftest import CHAT, post_stream
from tests.fakes.anthropic_server import API_KEY, Script
from tests.waiting import wait_until

SONNET, HAIKU = "claude-sonnet-4-5-20250929", "claude-haiku-4-5-20251001"
FAST_RETRY = {"max_attempts": 3, "initial_backoff_ms": 10, "max_backoff_ms": 50, "deadline_s": 10}


def chain(**settings):
    return {
        "chains": {"default": {"targets": ["sonnet", "haiku"], "retry": FAST_RETRY, **settings}}
    }


def models_called(fake):
    return [seen.body["model"] for seen in fake.seen]


async def test_primary_529_three_times_streams_the_secondary(gateway, fake_anthropic):
    fake_anthropic.script(*[Script(status=529)] * 3, Script(chunks=["from ", "haiku"]))
    client = await gateway(**chain())
    result = await post_stream(client, "/ai/stream/chat", CHAT)

    assert result.status == 200
    assert result.text == "from haiku"
    assert result.last["type"] == "done"
    assert result.last["model"] == HAIKU
    assert result.last["models_tried"] == [SONNET, HAIKU]
    assert models_called(fake_anthropic) == [SONNET] * 3 + [HAIKU]
    result.assert_one_terminal()


async def test_429_honours_retry_after_then_retries_same_target(gateway, fake_anthropic):
    fake_anthropic.script(Script(status=429, retry_after="1"), Script())
    client = await gateway(**chain())
    started = time.monotonic()
    result = await post_stream(client, "/ai/stream/chat", CHAT)

    assert time.monotonic() - started >= 1.0
    assert result.last["model"] == SONNET
    assert result.last["retries"] == 1
    assert models_called(fake_anthropic) == [SONNET, SONNET]


async def test_429_with_retry_after_over_the_cap_falls_over_at_once(gateway, fake_anthropic):
    fake_anthropic.script(Script(status=429, retry_after="60"), Script())
    client = await gateway(**chain())
    async with asyncio.timeout(30):  # a guard: waiting out the 60 s would fail here
        result = await post_stream(client, "/ai/stream/chat", CHAT)

    assert "retries" not in result.last
    assert result.last["model"] == HAIKU
    assert models_called(fake_anthropic) == [SONNET, HAIKU]


@pytest.mark.parametrize("status", [500, 502, 503, 504, 529])
async def test_server_errors_retry_the_same_target(gateway, fake_anthropic, status):
    fake_anthropic.script(Script(status=status), Script())
    client = await gateway(**chain())
    result = await post_stream(client, "/ai/stream/chat", CHAT)

    assert result.last["model"] == SONNET
    assert models_called(fake_anthropic) == [SONNET, SONNET]


async def test_connection_cut_before_first_token_retries_the_same_target(gateway, fake_anthropic):
    fake_anthropic.script(Script(fault="drop", fault_after=0), Script())
    client = await gateway(**chain())
    result = await post_stream(client, "/ai/stream/chat", CHAT)

    assert result.text == "Hello, world!"
    assert models_called(fake_anthropic) == [SONNET, SONNET]


async def test_first_token_timeout_retries_the_same_target(gateway, fake_anthropic):
    fake_anthropic.script(Script(first_token_delay=5), Script())
    client = await gateway(**chain(timeouts={"first_token_s": 0.3}))
    result = await post_stream(client, "/ai/stream/chat", CHAT)

    assert result.last["model"] == SONNET
    assert models_called(fake_anthropic) == [SONNET, SONNET]
    assert fake_anthropic.seen[0].cancelled  # the slow attempt's connection was closed


async def test_model_not_found_falls_over_without_retrying(gateway, fake_anthropic):
    fake_anthropic.script(Script(status=404), Script())
    client = await gateway(**chain())
    result = await post_stream(client, "/ai/stream/chat", CHAT)

    assert result.last["model"] == HAIKU
    assert models_called(fake_anthropic) == [SONNET, HAIKU]


async def test_auth_failure_skips_targets_on_the_same_provider(gateway, fake_anthropic):
    fake_anthropic.script(Script(status=401))
    client = await gateway(**chain())
    result = await post_stream(client, "/ai/stream/chat", CHAT)

    assert result.status == 502
    assert result.last["code"] == "upstream_auth_error"
    assert models_called(fake_anthropic) == [SONNET]


async def test_auth_failure_falls_over_to_another_provider(gateway, fake_anthropic):
    client = await gateway(
        api_key="sk-ant-revoked-key",
        env={"BACKUP_KEY": API_KEY},
        providers={
            "backup": {
                "type": "anthropic",
                "api_key": "${BACKUP_KEY}",
                "base_url": fake_anthropic.url,
            }
        },
        models={"haiku_backup": {"provider": "backup", "model": HAIKU}},
        chains={"default": {"targets": ["sonnet", "haiku", "haiku_backup"], "retry": FAST_RETRY}},
    )
    result = await post_stream(client, "/ai/stream/chat", CHAT)

    assert result.last["model"] == HAIKU
    assert len(fake_anthropic.seen) == 2  # sonnet once (401), haiku skipped, backup served
    assert b"sk-ant-revoked-key" not in result.raw


async def test_client_400_goes_straight_back(gateway, fake_anthropic):
    fake_anthropic.script(Script(status=400))
    client = await gateway(**chain())
    result = await post_stream(client, "/ai/stream/chat", CHAT)

    assert result.status == 400
    assert result.last["code"] == "upstream_rejected_request"
    assert models_called(fake_anthropic) == [SONNET]


async def test_all_targets_down_gives_a_real_status_not_a_200(gateway, fake_anthropic):
    fake_anthropic.default = Script(status=529)
    client = await gateway(**chain())
    result = await post_stream(client, "/ai/stream/chat", CHAT)

    assert result.status == 503
    assert [e["type"] for e in result.events] == ["error"]
    assert models_called(fake_anthropic) == [SONNET] * 3 + [HAIKU] * 3


async def test_deadline_caps_the_whole_request(gateway, fake_anthropic):
    fake_anthropic.default = Script(status=529)
    slow = {**FAST_RETRY, "initial_backoff_ms": 400, "max_backoff_ms": 400, "deadline_s": 0.5}
    client = await gateway(chains={"default": {"targets": ["sonnet", "haiku"], "retry": slow}})
    result = await post_stream(client, "/ai/stream/chat", CHAT)

    assert result.status == 503
    assert len(fake_anthropic.seen) < 6  # 3 attempts at each target would be 6


async def test_stall_mid_stream_ends_with_a_timeout_error(gateway, fake_anthropic):
    fake_anthropic.script(Script(fault="stall", fault_after=2))
    client = await gateway(**chain(timeouts={"idle_s": 0.3}))
    result = await post_stream(client, "/ai/stream/chat", CHAT)

    assert result.status == 200
    assert result.text == "Hello, "
    assert result.last["code"] == "upstream_timeout"
    assert models_called(fake_anthropic) == [SONNET]  # no fallback after text was sent
    result.assert_one_terminal()


async def test_mid_stream_failure_without_continuation_is_one_error(gateway, fake_anthropic):
    fake_anthropic.script(Script(fault="error_event", fault_after=2))
    client = await gateway(**chain())
    result = await post_stream(client, "/ai/stream/chat", CHAT)

    assert result.text == "Hello, "
    assert result.last["type"] == "error"
    result.assert_one_terminal()


@pytest.mark.parametrize("k", [1, 2, 3])
async def test_continuation_appends_the_next_targets_text_exactly(gateway, fake_anthropic, k):
    primary = ["The ", "quick ", "brown ", "fox"]
    fake_anthropic.script(
        Script(chunks=primary, fault="drop", fault_after=k, input_tokens=20),
        Script(chunks=[" jumps", " over."], input_tokens=30),
    )
    client = await gateway(**chain(on_stream_failure="continue"))
    result = await post_stream(client, "/ai/stream/chat", CHAT)

    partial = "".join(primary[:k])
    assert result.text == partial + "jumps over."
    continuation_request = fake_anthropic.seen[1].body
    assert continuation_request["model"] == HAIKU
    assert continuation_request["messages"][-1] == {
        "role": "assistant",
        "content": partial.rstrip(),
    }
    assert result.last["type"] == "done"
    assert result.last["model"] == HAIKU
    assert result.last["models_used"] == [SONNET, HAIKU]
    assert result.last["usage"]["input_tokens"] == 20 + 30
    assert result.last["usage"]["output_tokens"] >= 2 + 1
    result.assert_one_terminal()


async def test_client_gone_during_backoff_stops_the_chain(gateway, fake_anthropic):
    fake_anthropic.script(Script(status=429, retry_after="1"))
    client = await gateway(**chain())
    task = asyncio.create_task(client.post("/ai/stream/chat", json=CHAT))
    await fake_anthropic.arrived.wait()
    await fake_anthropic.seen[0].finished.wait()  # the 429 is out: the gateway backs off 1 s
    task.cancel()
    open_streams = client.server.app[STATE].current.shared.streams
    await wait_until(lambda: len(open_streams) == 0, "the handler to end")
    await asyncio.sleep(1.5)  # past the Retry-After: a retry would have reached the fake
    assert models_called(fake_anthropic) == [SONNET]  # no retry, no fallback after it left


async def test_circuit_breaker_skips_a_failing_target_then_probes_it(gateway, fake_anthropic):
    breaker = {"failure_threshold": 2, "window_s": 10, "cooldown_s": 30}
    one_try = {**FAST_RETRY, "max_attempts": 1}
    fake_time = FakeClock()
    client = await gateway(
        clock=fake_time.clock,
        chains={
            "default": {
                "targets": ["sonnet", "haiku"],
                "retry": one_try,
                "circuit_breaker": breaker,
            }
        },
    )
    fake_anthropic.script(Script(status=500), Script(), Script(status=500), Script())
    for _ in range(2):
        result = await post_stream(client, "/ai/stream/chat", CHAT)
        assert result.last["model"] == HAIKU
    async with client.get("/ai/stream/health") as response:
        targets = (await response.json())["targets"]
    assert targets[f"anthropic/{SONNET}"]["state"] == "open"

    result = await post_stream(client, "/ai/stream/chat", CHAT)
    assert result.last["model"] == HAIKU
    assert models_called(fake_anthropic)[-1] == HAIKU
    assert models_called(fake_anthropic).count(SONNET) == 2  # skipped while cooling down

    fake_time.advance(30)  # the cooldown is over
    result = await post_stream(client, "/ai/stream/chat", CHAT)
    assert result.last["model"] == SONNET  # the probe succeeded
    async with client.get("/ai/stream/health") as response:
        targets = (await response.json())["targets"]
    assert targets[f"anthropic/{SONNET}"]["state"] == "closed"


async def test_malformed_frame_before_first_token_retries_the_same_target(gateway, fake_anthropic):
    fake_anthropic.script(Script(fault="malformed", fault_after=0), Script())
    client = await gateway(**chain())
    result = await post_stream(client, "/ai/stream/chat", CHAT)

    assert result.text == "Hello, world!"
    assert models_called(fake_anthropic) == [SONNET, SONNET]


async def test_total_timeout_ends_a_long_answer(gateway, fake_anthropic):
    fake_anthropic.script(Script(chunks=["x"] * 20, chunk_delay=0.05))
    client = await gateway(**chain(timeouts={"total_s": 0.3, "idle_s": 5}))
    result = await post_stream(client, "/ai/stream/chat", CHAT)

    assert 0 < len(result.text) < 20
    assert result.last["code"] == "upstream_timeout"
    assert "whole answer" in result.last["error"]
    result.assert_one_terminal()


async def test_each_target_retries_with_its_own_settings(gateway, fake_anthropic):
    """Retry sits inside fallback, so each target's own `max_attempts` applies to it."""
    fake_anthropic.default = Script(status=500)
    targets = [
        {"model": "sonnet", "retry": {"max_attempts": 1}},
        {"model": "haiku", "retry": {"max_attempts": 5}},
    ]
    client = await gateway(**{"chains": {"default": {"targets": targets, "retry": FAST_RETRY}}})
    result = await post_stream(client, "/ai/stream/chat", CHAT)

    assert result.status == 502
    assert models_called(fake_anthropic) == [SONNET] + [HAIKU] * 5
