"""Stream tokens expire: past its lifetime a token is refused, and the EventSource route
answers a 401 with one SSE error frame.  Time is a `FakeClock` the test moves, so no test
waits for a token to age."""

from __future__ import annotations

import pytest

from gateway.cli import hash_api_key
from gateway.stream_tokens import StreamTokens
from providers.errors import Unauthorized
from tests.clock import FakeClock
from tests.conftest import GatewayFactory
from tests.fakes.anthropic_server import FakeAnthropic
from tests.sse_client import read_stream

KEY = "key-of-the-tenant-0001"
TTL_S = 300
EXPIRED = "The stream token has expired"


def test_a_token_is_refused_once_its_lifetime_has_passed() -> None:
    fake_time = FakeClock()
    tokens = StreamTokens(b"s" * 32, TTL_S, fake_time.time)
    token = tokens.issue("tenant-a")

    fake_time.advance(TTL_S - 1)
    assert tokens.verify(token) == "tenant-a"
    fake_time.advance(2)
    with pytest.raises(Unauthorized, match=EXPIRED):
        tokens.verify(token)


async def test_an_expired_token_on_the_event_source_route_is_a_401_with_one_error_frame(
    gateway: GatewayFactory, fake_anthropic: FakeAnthropic
) -> None:
    fake_time = FakeClock()
    client = await gateway(
        clock=fake_time.clock,
        auth={"mode": "api_key", "stream_token_ttl_s": TTL_S},
        tenants=[{"id": "t", "keys": [hash_api_key(KEY)]}],
    )
    async with client.post(
        "/ai/stream/token", headers={"Authorization": f"Bearer {KEY}"}
    ) as response:
        assert response.status == 200
        token = (await response.json())["token"]

    fake_time.advance(TTL_S + 1)
    async with client.get(
        "/ai/stream/generate", params={"prompt": "hi", "token": token}
    ) as response:
        result = await read_stream(response)

    assert result.status == 401
    assert result.headers["Content-Type"].startswith("text/event-stream")
    assert len(result.events) == 1
    (event,) = result.events
    assert (event["type"], event["code"]) == ("error", "unauthorized")
    assert event["error"].startswith(EXPIRED)
    assert result.naive == result.events
    assert fake_anthropic.requests == 0
