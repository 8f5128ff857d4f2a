"""The shared Redis client under a burst: more calls at once than it has connections."""

from __future__ import annotations

import asyncio

import pytest
from redis.exceptions import RedisError

from gateway.config import RedisConfig
from gateway.redis_client import redis_client
from policies.admission.limiter import Limiter
from policies.admission.limits import Limits
from policies.admission.redis_backend import RedisLimiter
from providers.base import Usage


@pytest.mark.parametrize("kind", ["redis", "cluster"])
async def test_a_burst_beyond_the_pool_waits_for_redis_instead_of_failing_open(
    request, kind, key_prefix
):
    server = request.getfixturevalue("redis_server" if kind == "redis" else "redis_cluster")
    # 2 s rather than the default 250 ms: a test process that has run many tests can stall
    # its event loop longer than that (a timed-out connect, and the limiter rightly fails
    # open); a pool that refuses calls beyond its size still fails this test at once.
    config = RedisConfig(
        url=server.url, cluster=kind == "cluster", max_connections=2, socket_timeout_ms=2000
    )
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
            assert limiter.state == {"backend": "redis", "redis": "ok", "unsettled": 0}
            assert {type(a.backend) for a in admissions} == {RedisLimiter}
            await asyncio.gather(*(limiter.release(a, Usage(10, 5), "m") for a in admissions))
            assert limiter.state["redis"] == "ok"
            assert (await limiter.usage("a")).as_dict()["models"]["m"]["requests"] == 150
        finally:
            await limiter.aclose()


async def test_a_call_that_waits_too_long_for_a_connection_fails_as_redis_unavailable(
    redis_cluster,
):
    config = RedisConfig(url=redis_cluster.url, cluster=True, max_connections=1, pool_wait_ms=0)
    async with redis_client(config) as client:
        assert client is not None
        results = await asyncio.gather(*(client.ping() for _ in range(3)), return_exceptions=True)
        errors = [r for r in results if isinstance(r, Exception)]
        assert errors, results
        assert all(isinstance(e, RedisError) for e in errors)  # what the limiter catches
        assert {str(e) for e in errors} == {"No connection available."}
