"""Upstream faults through the official SDK against the fake: the client always gets a
status or an `error` event, never a hang, a traceback or a key."""

from __future__ import annotations

import pytest

from tests.conftest import CHAT, post_stream
from tests.fakes.anthropic_server import API_KEY, Script

NO_RETRY = {"chains": {"default": {"targets": ["sonnet"], "retry": {"max_attempts": 1}}}}


@pytest.fixture(params=["wire", "sdk"])
def gateway(request, gateway):
    """Every fault, through both Anthropic clients."""

    async def start(**overrides):
        return await gateway(**{"providers": {"anthropic": {"client": request.param}}, **overrides})

    return start


def _assert_clean(result):
    result.assert_one_terminal()
    assert API_KEY.encode() not in result.raw
    assert b"Traceback" not in result.raw


@pytest.mark.parametrize("status", [401, 403])
async def test_upstream_auth_failure_is_502_without_the_key(gateway, fake_anthropic, status):
    fake_anthropic.script(Script(status=status, message=f"bad key {API_KEY}"))
    client = await gateway(**NO_RETRY)
    result = await post_stream(client, "/ai/stream/chat", CHAT)
    assert result.status == 502
    assert result.last["code"] == "upstream_auth_error"
    assert "credentials" in result.last["error"]
    _assert_clean(result)


async def test_upstream_429_is_429_with_retry_after(gateway, fake_anthropic):
    fake_anthropic.script(Script(status=429, retry_after="7"))
    client = await gateway(**NO_RETRY)
    result = await post_stream(client, "/ai/stream/chat", CHAT)
    assert result.status == 429
    assert result.headers["Retry-After"] == "7"
    assert result.last["code"] == "upstream_rate_limited"
    _assert_clean(result)


@pytest.mark.parametrize(
    ("upstream", "client_status", "code"),
    [
        (529, 503, "upstream_overloaded"),
        (500, 502, "upstream_server_error"),
        (404, 502, "upstream_model_not_found"),
        (400, 400, "upstream_rejected_request"),
    ],
)
async def test_upstream_status_maps_to_client_status(
    gateway, fake_anthropic, upstream, client_status, code
):
    fake_anthropic.script(Script(status=upstream))
    client = await gateway(**NO_RETRY)
    result = await post_stream(client, "/ai/stream/chat", CHAT)
    assert result.status == client_status
    assert result.last["code"] == code
    _assert_clean(result)


async def test_error_event_mid_stream_ends_with_one_error_after_the_text(gateway, fake_anthropic):
    fake_anthropic.script(Script(fault="error_event", fault_after=2))
    client = await gateway(**NO_RETRY)
    result = await post_stream(client, "/ai/stream/chat", CHAT)
    assert result.status == 200
    assert result.text == "Hello, "
    assert result.last == {**result.last, "type": "error", "code": "upstream_overloaded"}
    _assert_clean(result)


async def test_error_event_before_any_text_is_a_real_status(gateway, fake_anthropic):
    fake_anthropic.script(Script(fault="error_event", fault_after=0))
    client = await gateway(**NO_RETRY)
    result = await post_stream(client, "/ai/stream/chat", CHAT)
    assert result.status == 503
    assert [e["type"] for e in result.events] == ["error"]
    _assert_clean(result)


async def test_dropped_connection_mid_stream_ends_with_error(gateway, fake_anthropic):
    fake_anthropic.script(Script(fault="drop", fault_after=2))
    client = await gateway(**NO_RETRY)
    result = await post_stream(client, "/ai/stream/chat", CHAT)
    assert result.text == "Hello, "
    assert result.last["type"] == "error"
    assert result.last["code"] == "upstream_connection_error"
    _assert_clean(result)


async def test_malformed_frame_ends_with_error(gateway, fake_anthropic):
    fake_anthropic.script(Script(fault="malformed", fault_after=1))
    client = await gateway(**NO_RETRY)
    result = await post_stream(client, "/ai/stream/chat", CHAT)
    assert result.text == "Hello"
    assert result.last["code"] == "upstream_protocol_error"
    _assert_clean(result)


async def test_stream_cut_before_message_stop_is_an_error_not_a_done(gateway, fake_anthropic):
    fake_anthropic.script(Script(fault="truncate", fault_after=4))
    client = await gateway(**NO_RETRY)
    result = await post_stream(client, "/ai/stream/chat", CHAT)
    assert result.text == "Hello, world!"
    assert result.last["type"] == "error"
    _assert_clean(result)


async def test_unreachable_upstream_is_502(gateway, unused_tcp_port):
    client = await gateway(anthropic_url=f"http://127.0.0.1:{unused_tcp_port}", **NO_RETRY)
    result = await post_stream(client, "/ai/stream/chat", CHAT)
    assert result.status == 502
    assert result.last["code"] == "upstream_connection_error"
    _assert_clean(result)
