"""Releases that Redis did not confirm are replayed once it answers, and counted once."""

from __future__ import annotations

import asyncio

import pytest

from gateway.config import RedisConfig
from gateway.redis_client import redis_client
from policies.limiter import Limiter
from policies.limiter_redis import RedisLimiter, keys_for
from policies.limits import Limits
from providers.base import Usage


async def test_releases_during_a_redis_stall_are_replayed_once_it_answers(
    own_redis_server, key_prefix
):
    config = RedisConfig(url=own_redis_server.url, socket_timeout_ms=100)
    async with redis_client(config) as client:
        assert client is not None
        limiter = Limiter(RedisLimiter(client, key_prefix), probe_interval_s=0.05)
        await limiter.start()
        try:
            limits = Limits(concurrent_streams=5)
            admissions = [(await limiter.admit("a", limits, 500)).admission for _ in range(3)]
            # Scripts that write now wait, and time out, while PING still answers.
            own_redis_server.cli("CLIENT", "PAUSE", "1000", "WRITE")
            for admission in admissions:
                assert admission is not None
                await limiter.release(admission, Usage(100, 20), "sonnet")
            assert (limiter.state["redis"], limiter.state["unsettled"]) == ("down", 3)

            for _ in range(100):
                if limiter.state == {"backend": "redis", "redis": "ok", "unsettled": 0}:
                    break
                await asyncio.sleep(0.05)
            else:
                pytest.fail(f"the releases were not replayed: {limiter.state}")

            usage = (await limiter.usage("a")).as_dict()
            assert usage["tokens"] == 3 * 120  # the reservations of 500 settled to the use
            assert usage["models"] == {
                "sonnet": {"input_tokens": 300, "output_tokens": 60, "requests": 3}
            }
            assert await client.zcard(keys_for(key_prefix, "a", 0)[2]) == 0  # slots free
        finally:
            await limiter.aclose()
