"""Building the shared Redis client: pool, time-outs, retry, and the cluster's waiting.

Imported by `gateway.redis_client` only when `redis.url` is set: redis-py, with the
OpenTelemetry metrics SDK it loads, is about 7 MiB of a process's memory.
"""

from __future__ import annotations

import asyncio
from typing import Any

from redis.asyncio import BlockingConnectionPool, Redis, RedisCluster
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.maint_notifications import MaintNotificationsConfig

from gateway.config import RedisConfig


def connect(config: RedisConfig) -> Redis | RedisCluster:
    """A client for `config.url` (which is set), as `gateway.redis_client` describes."""
    timeout = config.socket_timeout_ms / 1000
    wait = config.pool_wait_ms / 1000
    retry_once = Retry(NoBackoff(), 1, supported_errors=(RedisConnectionError,))
    if config.cluster:
        return WaitingRedisCluster.from_url(
            config.url,
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
            retry=retry_once,
            max_connections=config.max_connections,
            pool_wait_s=wait,
        )
    pool = BlockingConnectionPool.from_url(
        config.url,
        max_connections=config.max_connections,
        timeout=wait,
        socket_timeout=timeout,
        socket_connect_timeout=timeout,
        retry=retry_once,
        maint_notifications_config=MaintNotificationsConfig(enabled=False),
    )
    return Redis.from_pool(pool)  # the client closes the pool with itself


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
