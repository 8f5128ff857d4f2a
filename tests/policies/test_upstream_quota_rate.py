"""The gateway's own request rate at a provider (`quota: {requests_per_minute: N}`): the
first N requests of a minute go through; the next one waits up to `max_wait_s` and is then
refused with a 503 `upstream_quota_exhausted`, without reaching the upstream.  The quota
is the gateway's, not the target's health: refusals do not count against its circuit.
"""

from __future__ import annotations

import time
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from tests.conftest import CHAT, GatewayFactory, post_stream
from tests.fakes.anthropic_server import FakeAnthropic

SONNET_KEY = "anthropic/claude-sonnet-4-5-20250929"
PER_MINUTE = 2


def rate_quota(max_wait_s: float) -> dict[str, Any]:
    return {
        "providers": {
            "anthropic": {"quota": {"requests_per_minute": PER_MINUTE, "max_wait_s": max_wait_s}}
        },
        "chains": {
            "default": {
                "targets": ["sonnet"],
                "retry": {"max_attempts": 1},
                # one failure that counted would open the circuit
                "circuit_breaker": {"failure_threshold": 1, "cooldown_s": 60},
            }
        },
    }


async def circuit_of_sonnet(client: TestClient[Any, Any]) -> dict[str, Any]:
    async with client.get("/ai/stream/health") as response:
        targets: dict[str, dict[str, Any]] = (await response.json())["targets"]
    return targets[SONNET_KEY]


@pytest.mark.parametrize("max_wait_s", [0, 0.3])
async def test_the_request_past_the_rate_waits_then_is_refused_without_reaching_upstream(
    gateway: GatewayFactory, fake_anthropic: FakeAnthropic, max_wait_s: float
) -> None:
    client = await gateway(**rate_quota(max_wait_s))
    for _ in range(PER_MINUTE):
        served = await post_stream(client, "/ai/stream/chat", CHAT)
        assert served.last["type"] == "done"

    started = time.monotonic()
    refused = await post_stream(client, "/ai/stream/chat", CHAT)

    assert time.monotonic() - started >= max_wait_s  # it waited its whole allowance
    assert refused.status == 503
    assert [e["type"] for e in refused.events] == ["error"]
    assert refused.last["code"] == "upstream_quota_exhausted"
    assert "Retry-After" in refused.headers
    assert fake_anthropic.requests == PER_MINUTE
    assert await circuit_of_sonnet(client) == {"state": "closed", "recent_failures": 0, "trips": 0}
