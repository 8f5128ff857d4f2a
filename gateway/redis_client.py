"""The shared Redis client (plain or cluster), created and closed by the app lifecycle."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from redis.asyncio import BlockingConnectionPool, Redis, RedisCluster
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.maint_notifications import MaintNotificationsConfig

from gateway.config import RedisConfig


@asynccontextmanager
async def redis_client(config: RedisConfig) -> AsyncIterator[Redis | RedisCluster | None]:
    """The shared Redis client, with short time-outs so a dead Redis never hangs a request.

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
    timeout = config.socket_timeout_ms / 1000
    wait = config.pool_wait_ms / 1000
    retry_once = Retry(NoBackoff(), 1, supported_errors=(RedisConnectionError,))
    no_notifications = MaintNotificationsConfig(enabled=False)
    client: Redis | RedisCluster
    if config.cluster:
        client = WaitingRedisCluster.from_url(
            config.url,
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
            retry=retry_once,
            max_connections=config.max_connections,
            pool_wait_s=wait,
        )
    else:
        pool = BlockingConnectionPool.from_url(
            config.url,
            max_connections=config.max_connections,
            timeout=wait,
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
            retry=retry_once,
            maint_notifications_config=no_notifications,
        )
        client = Redis.from_pool(pool)  # the client closes the pool with itself
    try:
        yield client
    finally:
        await client.aclose()


class WaitingRedisCluster(RedisCluster):
    """A cluster client whose calls wait for a free connection, as the blocking pool's do.

    redis-py's cluster client has no blocking pool: a node's pool that is full raises
    MaxConnectionsError. At most `max_connections` calls run at once here (so no node's
    pool can fill up); the others wait up to `pool_wait_s` for their turn.
    """

    def __init__(self, *, pool_wait_s: float, max_connections: int, **kwargs: Any) -> None:
        super().__init__(max_connections=max_connections, **kwargs)
        self._turns = asyncio.Semaphore(max_connections)
        self._pool_wait_s = pool_wait_s

    async def execute_command(self, *args: Any, **kwargs: Any) -> Any:
        if self._turns.locked():
            try:
                async with asyncio.timeout(self._pool_wait_s):
                    await self._turns.acquire()
            except TimeoutError:
                raise RedisConnectionError("No connection available.") from None
        else:
            await self._turns.acquire()
        try:
            return await super().execute_command(*args, **kwargs)
        finally:
            self._turns.release()
