"""The shared Redis client (plain or cluster), created and closed by the app lifecycle."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from redis.asyncio import BlockingConnectionPool, Redis, RedisCluster
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from gateway.config import RedisConfig


@asynccontextmanager
async def redis_client(config: RedisConfig) -> AsyncIterator[Redis | RedisCluster | None]:
    """The shared Redis client, with short time-outs so a dead Redis never hangs a request.

    A plain Redis gets a blocking pool: when every connection is busy (a burst of new
    streams), a call waits up to `pool_wait_ms` for one. redis-py's default pool raises at
    once instead, which the limiter would take for Redis being down.
    """
    if not config.url:
        yield None
        return
    timeout = config.socket_timeout_ms / 1000
    no_retry = Retry(NoBackoff(), 0)  # the limiter decides what a failure means, at once
    client: Redis | RedisCluster
    if config.cluster:
        client = RedisCluster.from_url(
            config.url,
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
            retry=no_retry,
            max_connections=config.max_connections,  # per node; beyond it a call fails
        )
    else:
        pool = BlockingConnectionPool.from_url(
            config.url,
            max_connections=config.max_connections,
            timeout=config.pool_wait_ms / 1000,
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
            retry=no_retry,
        )
        client = Redis.from_pool(pool)  # the client closes the pool with itself
    try:
        yield client
    finally:
        await client.aclose()
