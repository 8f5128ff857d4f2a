"""An admission granted in memory while Redis was unreachable (`fail_open`) belongs to the
memory backend: released after Redis is back, it settles there, is not replayed into
Redis, and leaves Redis's counts as they were.

Redis is a real server whose writes are paused (`CLIENT PAUSE ... WRITE`) until the test
lets them through: the admission script times out meanwhile.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis, RedisCluster

from gateway.config import RedisConfig
from gateway.redis_client import redis_client
from policies.admission.limiter import Limiter, today
from policies.admission.limits import Limits, Plan
from policies.admission.redis_backend import RedisLimiter, keys_for
from providers.base import Usage
from tests.redis_servers import RedisServer
from tests.waiting import wait_until

LIMITS = Limits(concurrent_streams=1)


@pytest.fixture
async def client(own_redis_server: RedisServer) -> AsyncIterator[Redis | RedisCluster]:
    config = RedisConfig(url=own_redis_server.url, socket_timeout_ms=100)
    async with redis_client(config) as client:
        assert client is not None
        yield client


async def test_an_admission_made_in_memory_is_released_to_memory_after_redis_returns(
    own_redis_server: RedisServer, client: Redis | RedisCluster, key_prefix: str
) -> None:
    limiter = Limiter(RedisLimiter(client, key_prefix), "fail_open", probe_interval_s=0.02)
    await limiter.start()
    try:
        assert limiter.redis is not None
        earlier = (await limiter.admit("a", LIMITS, 300)).admission
        assert earlier is not None
        await limiter.release(earlier, Usage(40, 10), "haiku")
        in_redis = (await limiter.redis.usage("a", today())).as_dict()
        assert in_redis["requests"] == 1

        own_redis_server.cli("CLIENT", "PAUSE", "600000", "WRITE")
        try:
            during = (await limiter.admit("a", LIMITS, 500)).admission
            assert during is not None
            assert limiter.state["backend"] == "memory (fail-open)"
        finally:
            own_redis_server.cli("CLIENT", "UNPAUSE")
        await wait_until(lambda: limiter.state["redis"] == "ok", "the probe to find Redis back")

        await limiter.release(during, Usage(100, 20), "sonnet")

        assert limiter.state == {"backend": "redis", "redis": "ok", "unsettled": 0}
        assert (await limiter.memory.usage("a", today())).as_dict() == {
            "tokens": 120,  # the reservation of 500, settled to the use
            "requests": 1,
            "models": {"sonnet": {"input_tokens": 100, "output_tokens": 20, "requests": 1}},
        }
        assert (await limiter.redis.usage("a", today())).as_dict() == in_redis
        assert await client.zcard(keys_for(key_prefix, "a", 0)[2]) == 0  # no slot in Redis
        following = await limiter.memory.admit(Plan("a", LIMITS, 1, "next-lease", 60_000))
        assert following.allowed  # its memory slot (one of one) was handed back
    finally:
        await limiter.aclose()
