"""A Redis that answers PING but holds writes stays marked down until writes go through.

Such a Redis (paused, out of memory, a read-only replica after a failover) used to be
marked up by every probe's PING and down again by the next admission, a warning and a
new probe task each time.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis, RedisCluster

from gateway.config import RedisConfig
from gateway.redis_client import redis_client
from policies.admission.limiter import Limiter
from policies.admission.limits import Limits
from policies.admission.redis_backend import RedisLimiter
from tests.waiting import wait_until


@pytest.fixture
async def client(own_redis_server) -> AsyncIterator[Redis | RedisCluster]:
    async with redis_client(RedisConfig(url=own_redis_server.url, socket_timeout_ms=100)) as c:
        assert c is not None
        yield c


async def test_a_redis_that_answers_ping_but_holds_writes_stays_down(
    own_redis_server, client, key_prefix, caplog
):
    limiter = Limiter(RedisLimiter(client, key_prefix), probe_interval_s=0.02)
    await limiter.start()
    try:
        own_redis_server.cli("CLIENT", "PAUSE", "60000", "WRITE")
        await limiter.admit("a", Limits(concurrent_streams=5), 1)  # times out: down
        assert limiter.state["redis"] == "down"

        seen: set[str | int] = set()
        for _ in range(25):  # some 25 probes: PING answers all along
            await asyncio.sleep(0.02)
            seen.add(limiter.state["redis"])
        assert seen == {"down"}

        own_redis_server.cli("CLIENT", "UNPAUSE")
        await wait_until(lambda: limiter.state["redis"] == "ok", "a probe's write to succeed")
        warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
        assert len(warnings) == 1, [r.getMessage() for r in warnings]
        assert len(limiter._tasks) == 1  # the lease renewal; finished probes are gone
    finally:
        own_redis_server.cli("CLIENT", "UNPAUSE")
        await limiter.aclose()
