"""The shared Redis client under a burst: more calls at once than it has connections."""

from __future__ import annotations

import asyncio

from gateway.config import RedisConfig
from gateway.redis_client import redis_client
from policies.limiter import Limiter
from policies.limiter_redis import RedisLimiter
from policies.limits import Limits
from providers.base import Usage


async def test_a_burst_beyond_the_pool_waits_for_redis_instead_of_failing_open(
    redis_server, key_prefix
):
    config = RedisConfig(url=redis_server.url, max_connections=2)
    async with redis_client(config) as client:
        assert client is not None
        limiter = Limiter(RedisLimiter(client, key_prefix))
        await limiter.start()
        try:
            decisions = await asyncio.gather(
                *(limiter.admit("a", Limits(concurrent_streams=200), 10) for _ in range(150))
            )
            admissions = [d.admission for d in decisions if d.admission is not None]
            assert len(admissions) == 150
            assert limiter.state == {"backend": "redis", "redis": "ok"}
            assert {type(a.backend) for a in admissions} == {RedisLimiter}
            await asyncio.gather(*(limiter.release(a, Usage(10, 5), "m") for a in admissions))
            assert limiter.state["redis"] == "ok"
            assert (await limiter.usage("a")).as_dict()["models"]["m"]["requests"] == 150
        finally:
            await limiter.aclose()
