"""The shared Redis client (plain or cluster), created and closed by the app lifecycle."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

from gateway.config import RedisConfig

if TYPE_CHECKING:
    from redis.asyncio import Redis, RedisCluster


@asynccontextmanager
async def redis_client(config: RedisConfig) -> AsyncIterator[Redis | RedisCluster | None]:
    """The shared Redis client, with short time-outs so a dead Redis never hangs a request;
    None when `redis.url` is empty (redis-py is not even imported then).

    When every connection is busy (a burst of new streams), a call waits up to
    `pool_wait_ms` for one. redis-py's own pools raise at once instead, which the limiter
    would take for Redis being down.

    After a Redis restart every pooled connection is stale.  The pool checks a connection
    as it hands it out (redis-py skips that check while maintenance notifications are on,
    which only managed Redis services send), and a command that still fails to connect is
    sent once more on a fresh connection, so one stale socket does not count as Redis being
    down.  Time-outs are not retried: the command may have run.  The limiter's scripts are
    safe to send twice.
    """
    if not config.url:
        yield None
        return
    from gateway.redis_connect import connect  # redis-py costs ~7 MiB: only with a Redis

    client = connect(config)
    try:
        yield client
    finally:
        await client.aclose()
