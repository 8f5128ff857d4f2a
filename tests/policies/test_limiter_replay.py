"""Releases that Redis did not confirm are replayed once it answers, and counted once."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis, RedisCluster

from gateway.config import RedisConfig
from gateway.redis_client import redis_client
from policies.admission.limiter import Limiter, today
from policies.admission.limits import Admission, Limits
from policies.admission.redis_backend import RedisLimiter, keys_for
from providers.base import Usage


@pytest.fixture
async def client(own_redis_server) -> AsyncIterator[Redis | RedisCluster]:
    config = RedisConfig(url=own_redis_server.url, socket_timeout_ms=100)
    async with redis_client(config) as client:
        assert client is not None
        yield client


async def release_during_a_stall(limiter: Limiter, server, pause_ms: int) -> None:
    """Admit three streams, then release them while scripts that write wait (and time
    out) for `pause_ms`; PING still answers meanwhile."""
    admissions: list[Admission] = []
    for _ in range(3):
        admission = (await limiter.admit("a", Limits(concurrent_streams=5), 500)).admission
        assert admission is not None
        admissions.append(admission)
    server.cli("CLIENT", "PAUSE", str(pause_ms), "WRITE")
    for admission in admissions:
        await limiter.release(admission, Usage(100, 20), "sonnet")
    assert (limiter.state["redis"], limiter.state["unsettled"]) == ("down", 3)


async def assert_settled_once(limiter: Limiter, client: Redis | RedisCluster, prefix: str) -> None:
    assert limiter.redis is not None
    usage = (await limiter.redis.usage("a", today())).as_dict()  # in Redis, however it is marked
    assert usage["tokens"] == 3 * 120  # the reservations of 500 settled to the use
    assert usage["models"] == {"sonnet": {"input_tokens": 300, "output_tokens": 60, "requests": 3}}
    assert await client.zcard(keys_for(prefix, "a", 0)[2]) == 0  # slots free


async def test_releases_during_a_redis_stall_are_replayed_once_it_answers(
    own_redis_server, client, key_prefix
):
    limiter = Limiter(RedisLimiter(client, key_prefix), probe_interval_s=0.05)
    await limiter.start()
    try:
        await release_during_a_stall(limiter, own_redis_server, 1000)
        for _ in range(100):
            if limiter.state == {"backend": "redis", "redis": "ok", "unsettled": 0}:
                break
            await asyncio.sleep(0.05)
        else:
            pytest.fail(f"the releases were not replayed: {limiter.state}")
        await assert_settled_once(limiter, client, key_prefix)
    finally:
        await limiter.aclose()


async def test_a_stopping_limiter_replays_what_it_can_before_its_probe_ran(
    own_redis_server, client, key_prefix
):
    limiter = Limiter(RedisLimiter(client, key_prefix), probe_interval_s=60)
    await limiter.start()
    await release_during_a_stall(limiter, own_redis_server, 300)
    await asyncio.sleep(0.4)  # Redis answers again; the probe would only look in a minute

    await limiter.aclose()

    assert limiter.state["unsettled"] == 0
    await assert_settled_once(limiter, client, key_prefix)
