"""Redis restarted under load: admission returns to Redis once it answers, and stays.

After a restart every pooled connection is stale.  Each of them failing once must not
mark Redis down again (a `fail_closed` gateway would refuse traffic while Redis is
healthy, a `fail_open` one would count in memory): the pool checks connections as it
hands them out, and a command that cannot connect is sent once more on a new one.
"""

from __future__ import annotations

import asyncio
import logging

import pytest

from gateway.app import create_app
from gateway.cli import hash_api_key
from gateway.state import STATE
from policies.admission.limiter import Limiter, today
from tests.conftest import CHAT, build_config
from tests.waiting import wait_until

KEY = "key-of-the-tenant-0001"
HEADERS = {"Authorization": f"Bearer {KEY}"}


async def _load(client, requests: int, concurrency: int = 8) -> list[int]:
    """Statuses of `requests` chat streams, `concurrency` at a time, each read to its end."""
    statuses: list[int] = []
    queue = list(range(requests))

    async def worker() -> None:
        while queue:
            queue.pop()
            async with client.post("/ai/stream/chat", json=CHAT, headers=HEADERS) as response:
                await response.read()
                statuses.append(response.status)

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return statuses


@pytest.mark.parametrize("on_error", ["fail_open", "fail_closed"])
async def test_admission_returns_to_redis_after_a_restart_and_stays(
    own_redis_server, aiohttp_client, fake_anthropic, key_prefix, on_error, caplog
):
    config = build_config(
        anthropic_url=fake_anthropic.url,
        auth={"mode": "api_key"},
        redis={"url": own_redis_server.url, "key_prefix": key_prefix, "on_error": on_error},
        tenants=[{"id": "t", "keys": [hash_api_key(KEY)], "limits": {"concurrent_streams": 50}}],
    )
    client = await aiohttp_client(create_app(config))
    limiter: Limiter = client.server.app[STATE].current.shared.limiter
    assert set(await _load(client, 32)) == {200}  # the pool now holds several connections

    own_redis_server.stop()
    await _load(client, 4)  # noticed: in memory (fail_open) or refused (fail_closed)
    assert limiter.state["redis"] == "down"
    own_redis_server.start()
    await wait_until(lambda: limiter.state["redis"] == "ok", "the probe to find Redis back")
    caplog.clear()

    statuses = await _load(client, 40)

    assert statuses == [200] * 40
    assert limiter.state == {"backend": "redis", "redis": "ok", "unsettled": 0}
    marked_down = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert not marked_down, [r.getMessage() for r in marked_down]
    assert limiter.redis is not None
    usage = await limiter.redis.usage("t", today())  # the restarted Redis counted them all
    assert usage.as_dict()["requests"] == 40
