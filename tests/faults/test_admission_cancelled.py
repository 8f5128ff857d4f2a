"""A caller that gives up while its admission is decided leaks no slot and no tokens.

The backends here are the real ones with their reply held back after the decision was
made: what a client that hangs up during a slow Redis round trip looks like to the
limiter.  Without admission and release being one unit, the lease taken by the script
would be owned by nobody.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis, RedisCluster

from policies.admission.limiter import Limiter, today
from policies.admission.limits import Admission, Decision, Limits, Plan
from policies.admission.memory_backend import MemoryLimiter
from policies.admission.redis_backend import RedisLimiter
from providers.base import Usage

LIMITS = Limits(concurrent_streams=1, tokens_per_minute=100_000, daily_tokens=1_000_000)


class _Held:
    """Mixed in before a real backend: an admission is decided and its reply then held; a
    release is held before it is sent.  Each until `go` is set."""

    def _hold_init(self) -> None:
        self.waiting = asyncio.Event()
        self.go = asyncio.Event()
        self.hold: set[str] = set()  # "admit", "release"

    async def _wait(self, what: str) -> None:
        if what in self.hold:
            self.waiting.set()
            await self.go.wait()

    async def admit(self, plan: Plan) -> Decision:
        decision: Decision = await super().admit(plan)  # type: ignore[misc]
        await self._wait("admit")
        return decision

    async def release(
        self, admission: Admission, used: Usage, model: str, micro_usd: int = 0
    ) -> None:
        await self._wait("release")
        await super().release(admission, used, model, micro_usd)  # type: ignore[misc]


class HeldMemory(_Held, MemoryLimiter):
    def __init__(self) -> None:
        super().__init__()
        self._hold_init()


class HeldRedis(_Held, RedisLimiter):
    def __init__(self, client: Redis | RedisCluster, prefix: str) -> None:
        super().__init__(client, prefix)
        self._hold_init()


@pytest.fixture(params=["memory", "redis", "cluster"])
async def held(request, key_prefix) -> AsyncIterator[tuple[Limiter, HeldMemory | HeldRedis]]:
    client: Redis | RedisCluster | None = None
    backend: HeldMemory | HeldRedis
    if request.param == "memory":
        backend = HeldMemory()
        limiter = Limiter(None, memory=backend)
    else:
        if request.param == "redis":
            client = Redis.from_url(request.getfixturevalue("redis_server").url)
        else:
            client = RedisCluster.from_url(request.getfixturevalue("redis_cluster").url)
        backend = HeldRedis(client, key_prefix)
        limiter = Limiter(backend)
    await limiter.start()
    yield limiter, backend
    await limiter.aclose()
    if client is not None:
        await client.aclose()


async def test_an_admission_whose_caller_gave_up_is_released_unused(held):
    limiter, backend = held
    backend.hold = {"admit"}
    waiting = asyncio.create_task(limiter.admit("a", LIMITS, 500))
    await backend.waiting.wait()  # the slot and the tokens are taken now
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting

    backend.go.set()
    await limiter.aclose()  # waits for whatever is still in flight

    assert (await backend.usage("a", today())).tokens == 0  # the 500 reserved, settled to 0
    again = await backend.admit(Plan("a", LIMITS, 1, "next", 60_000))
    assert again.allowed, f"the slot leaked: {again.refusal}"


async def test_a_release_whose_caller_gave_up_still_settles(held):
    limiter, backend = held
    admission = (await limiter.admit("a", LIMITS, 500)).admission
    assert admission is not None
    backend.hold = {"release"}

    releasing = asyncio.create_task(limiter.release(admission, Usage(100, 20), "sonnet"))
    await backend.waiting.wait()  # the release is on its way: now its caller goes away
    releasing.cancel()
    with pytest.raises(asyncio.CancelledError):
        await releasing
    backend.go.set()
    await limiter.aclose()

    usage = (await backend.usage("a", today())).as_dict()
    assert usage["tokens"] == 120
    assert usage["models"] == {"sonnet": {"input_tokens": 100, "output_tokens": 20, "requests": 1}}
    assert (await backend.admit(Plan("a", LIMITS, 1, "next", 60_000))).allowed
