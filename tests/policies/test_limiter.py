"""The tenant limiter, the same tests on every backend: in-process, Redis, Redis Cluster."""

from __future__ import annotations

import asyncio
import time

import pytest
from redis.asyncio import Redis, RedisCluster

from policies.admission.limiter import Limiter
from policies.admission.limits import Limits, Plan
from policies.admission.redis_backend import RedisLimiter
from providers.base import Usage
from tests.waiting import wait_until


@pytest.fixture(params=["memory", "redis", "cluster"])
async def make_limiter(request, key_prefix):
    """Build limiters that share one backend (so two of them act like two replicas)."""
    clients = []

    async def make(lease_ttl_s: float = 60.0) -> Limiter:
        if request.param == "memory":
            return shared_memory
        if request.param == "redis":
            client = Redis.from_url(request.getfixturevalue("redis_server").url)
        else:
            client = RedisCluster.from_url(request.getfixturevalue("redis_cluster").url)
        clients.append(client)
        limiter = Limiter(RedisLimiter(client, key_prefix), lease_ttl_s=lease_ttl_s)
        limiters.append(limiter)
        await limiter.start()
        return limiter

    shared_memory = Limiter(None)
    limiters: list[Limiter] = [shared_memory]
    await shared_memory.start()
    yield make
    for limiter in limiters:
        await limiter.aclose()
    for client in clients:
        await client.aclose()


async def test_limit_of_n_admits_exactly_n_of_50_concurrent(make_limiter):
    limiter = await make_limiter()
    decisions = await asyncio.gather(
        *(limiter.admit("a", Limits(requests_per_minute=10), 1) for _ in range(50))
    )
    assert sum(d.allowed for d in decisions) == 10
    refused = [d.refusal for d in decisions if d.refusal is not None]
    assert {r.limit_name for r in refused} == {"requests_per_minute"}
    assert all(0 < r.retry_after_s <= 6.1 for r in refused)


async def test_two_limiters_on_one_backend_enforce_one_limit(make_limiter):
    first, second = await make_limiter(), await make_limiter()
    limits = Limits(requests_per_minute=6)
    decisions = await asyncio.gather(
        *(limiter.admit("a", limits, 1) for limiter in [first, second] * 10)
    )
    assert sum(d.allowed for d in decisions) == 6


async def test_tenant_a_exhausted_never_affects_tenant_b(make_limiter):
    limiter = await make_limiter()
    limits = Limits(requests_per_minute=3, tokens_per_minute=1000, concurrent_streams=2)
    for _ in range(5):
        await limiter.admit("a", limits, 10)
    assert not (await limiter.admit("a", limits, 10)).allowed
    assert all([(await limiter.admit("b", limits, 10)).allowed for _ in range(2)])


async def test_tokens_per_minute_reserve_and_reconcile(make_limiter):
    limiter = await make_limiter()
    limits = Limits(tokens_per_minute=1000)
    first = await limiter.admit("a", limits, 600)
    assert first.allowed
    refused = await limiter.admit("a", limits, 600)
    assert refused.refusal is not None and refused.refusal.limit_name == "tokens_per_minute"
    assert first.admission is not None
    await limiter.release(first.admission, Usage(60, 40), "m")  # far less than it reserved
    assert (await limiter.admit("a", limits, 600)).allowed


async def test_daily_usage_counts_the_real_usage_exactly_by_model(make_limiter):
    limiter = await make_limiter()
    admissions = []
    for _ in range(3):
        decision = await limiter.admit("a", Limits(), 500)
        admissions.append(decision.admission)
    assert (await limiter.usage("a")).tokens == 1500  # reserved while streaming
    settled = [(Usage(100, 20), "sonnet"), (Usage(), None), (Usage(30, 7), "haiku")]
    for admission, (used, model) in zip(admissions, settled, strict=True):
        await limiter.release(admission, used, model)
        await limiter.release(admission, used, model)  # a second release changes nothing
    usage = (await limiter.usage("a")).as_dict()
    assert usage == {
        "tokens": 157,
        "requests": 3,
        "models": {
            "haiku": {"input_tokens": 30, "output_tokens": 7, "requests": 1},
            "none": {"input_tokens": 0, "output_tokens": 0, "requests": 1},
            "sonnet": {"input_tokens": 100, "output_tokens": 20, "requests": 1},
        },
    }


async def test_a_backend_settles_a_release_sent_twice_once(make_limiter):
    """A replayed release whose first send did reach Redis must not count twice."""
    limiter = await make_limiter()
    admission = (await limiter.admit("a", Limits(tokens_per_minute=100_000), 500)).admission
    assert admission is not None
    for _ in range(2):
        await admission.backend.release(admission, Usage(100, 20), "sonnet")
    usage = (await limiter.usage("a")).as_dict()
    assert usage["tokens"] == 120
    assert usage["models"] == {"sonnet": {"input_tokens": 100, "output_tokens": 20, "requests": 1}}


async def test_daily_budget_refuses_once_spent(make_limiter):
    limiter = await make_limiter()
    limits = Limits(daily_tokens=1000)
    decision = await limiter.admit("a", limits, 900)
    await limiter.release(decision.admission, Usage(400, 500), "m")
    refused = await limiter.admit("a", limits, 200)
    assert refused.refusal is not None and refused.refusal.limit_name == "daily_tokens"
    assert (await limiter.admit("a", limits, 100)).allowed


async def test_concurrent_slots_are_released(make_limiter):
    limiter = await make_limiter()
    limits = Limits(concurrent_streams=2)
    held = [(await limiter.admit("a", limits, 1)).admission for _ in range(2)]
    refused = await limiter.admit("a", limits, 1)
    assert refused.refusal is not None and refused.refusal.limit_name == "concurrent_streams"
    await limiter.release(held[0], Usage(1, 0), "m")
    assert (await limiter.admit("a", limits, 1)).allowed


async def test_leases_of_a_dead_replica_expire_and_live_ones_are_renewed(make_limiter):
    limiter = await make_limiter(lease_ttl_s=2.0)
    limits = Limits(concurrent_streams=2)
    backend = limiter.redis or limiter.memory
    await backend.admit(Plan("a", limits, 1, "dead-replica-lease", 2000))  # never renewed
    live_since = time.monotonic()
    live = await limiter.admit("a", limits, 1)
    assert live.allowed
    assert not (await limiter.admit("a", limits, 1)).allowed

    async def slot_free() -> bool:
        return (await limiter.admit("a", limits, 1)).allowed

    await wait_until(slot_free, "the dead replica's lease to run out")
    # Past the live lease's first expiry too (it was taken a moment after the dead one):
    await asyncio.sleep(max(0.0, live_since + 2.2 - time.monotonic()))
    assert not (await limiter.admit("a", limits, 1)).allowed  # it was renewed


async def test_quota_headers_count_down(make_limiter):
    limiter = await make_limiter()
    limits = Limits(requests_per_minute=5)
    remaining = []
    for _ in range(5):
        decision = await limiter.admit("a", limits, 1)
        remaining.append(decision.admission.quota.remaining)
    assert remaining == [4, 3, 2, 1, 0]
    refused = await limiter.admit("a", limits, 1)
    assert refused.refusal.quota.headers()["RateLimit-Remaining"] == "0"
    assert refused.refusal.quota.limit == 5
