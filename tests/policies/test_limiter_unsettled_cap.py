"""Releases Redis did not confirm are kept for replay only up to `MAX_UNSETTLED`: those
beyond the cap are dropped, and the replay says how many, once.

Redis is a real server whose writes are paused (`CLIENT PAUSE ... WRITE`) until the test
lets them through with `CLIENT UNPAUSE`: the limiter's scripts time out meanwhile.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis, RedisCluster

import policies.admission.limiter
from gateway.config import RedisConfig
from gateway.redis_client import redis_client
from policies.admission.limiter import Limiter, today
from policies.admission.limits import Admission, Limits
from policies.admission.redis_backend import RedisLimiter
from providers.base import Usage
from tests.redis_servers import RedisServer
from tests.waiting import wait_until

CAP = 2
RESERVED = 500


@pytest.fixture
async def client(own_redis_server: RedisServer) -> AsyncIterator[Redis | RedisCluster]:
    config = RedisConfig(url=own_redis_server.url, socket_timeout_ms=100)
    async with redis_client(config) as client:
        assert client is not None
        yield client


def dropped_warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if "releases were dropped" in r.getMessage()]


async def test_releases_past_the_cap_are_dropped_counted_and_logged_once(
    own_redis_server: RedisServer,
    client: Redis | RedisCluster,
    key_prefix: str,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setattr(policies.admission.limiter, "MAX_UNSETTLED", CAP)
    caplog.set_level(logging.WARNING)
    limiter = Limiter(RedisLimiter(client, key_prefix), probe_interval_s=0.02)
    await limiter.start()
    try:
        admissions: list[Admission] = []
        for _ in range(5):
            decision = await limiter.admit("a", Limits(concurrent_streams=10), RESERVED)
            assert decision.admission is not None
            admissions.append(decision.admission)

        own_redis_server.cli("CLIENT", "PAUSE", "600000", "WRITE")
        try:
            for admission in admissions:
                await limiter.release(admission, Usage(100, 20), "sonnet")
            assert limiter.state["unsettled"] == CAP
        finally:
            own_redis_server.cli("CLIENT", "UNPAUSE")
        await wait_until(
            lambda: limiter.state == {"backend": "redis", "redis": "ok", "unsettled": 0},
            "the kept releases to be replayed",
        )

        assert dropped_warnings(caplog) == [
            f"3 releases were dropped while redis was down (more than {CAP} waited)"
        ]
        usage = (await limiter.usage("a", today())).as_dict()
        assert usage["models"] == {
            "sonnet": {"input_tokens": 200, "output_tokens": 40, "requests": 2}
        }  # the two kept releases, settled once each
        assert usage["tokens"] == 2 * 120 + 3 * RESERVED  # the dropped keep their reservation

        # A later replay, with nothing dropped, says nothing more about dropped releases.
        decision = await limiter.admit("a", Limits(), RESERVED)
        assert decision.admission is not None
        own_redis_server.cli("CLIENT", "PAUSE", "600000", "WRITE")
        try:
            await limiter.release(decision.admission, Usage(1, 1), "sonnet")
            assert limiter.state["unsettled"] == 1
        finally:
            own_redis_server.cli("CLIENT", "UNPAUSE")
        await wait_until(lambda: limiter.state["unsettled"] == 0, "the second replay")
        assert len(dropped_warnings(caplog)) == 1
    finally:
        await limiter.aclose()
