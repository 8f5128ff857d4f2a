"""The limiter's Lua scripts on fakeredis, with a clock the test moves: no redis-server, no
sleep.  Exact arithmetic of each limit, and every key's expiry.

These run beside tests/policies/test_limiter.py, never instead of it: that file runs the
same scripts on real Redis and Redis Cluster, and stays the reference.
"""

from __future__ import annotations

import importlib.util

import fakeredis
import pytest

from policies.admission.limits import DAY_MS, Admission, Limits, Plan
from policies.admission.redis_backend import SETTLE_WINDOW_MS, RedisLimiter, keys_for
from providers.base import Usage
from tests.fakeredis_clock import FakeRedisClock

PREFIX = "rl"
TENANT = "acme"
NOON_MS = 20_000 * DAY_MS + DAY_MS // 2  # midday UTC of day 20000
RETENTION_DAYS = 35
KEY_NAMES = ("rpm", "tpm", "slots", "day", "unsettled", "month")


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeRedisClock:
    return FakeRedisClock(monkeypatch, NOON_MS)


@pytest.fixture
async def redis():
    if importlib.util.find_spec("lupa") is None:
        pytest.fail("fakeredis runs Lua through lupa: install the test extra, fakeredis[lua]")
    client = fakeredis.FakeAsyncRedis(server=fakeredis.FakeServer())
    yield client
    await client.aclose()


@pytest.fixture
def limiter(redis) -> RedisLimiter:
    return RedisLimiter(redis, PREFIX, usage_retention_days=RETENTION_DAYS)


def plan(
    clock: FakeRedisClock, limits: Limits, cost: int = 1, lease: str = "l1", ttl_ms: int = 60_000
) -> Plan:
    return Plan(TENANT, limits, cost, lease, ttl_ms, day=clock.now_ms // DAY_MS)


async def admitted(limiter: RedisLimiter, request: Plan) -> Admission:
    decision = await limiter.admit(request)
    assert decision.admission is not None, decision.refusal
    return decision.admission


async def refused_by(limiter: RedisLimiter, request: Plan) -> tuple[str, float]:
    decision = await limiter.admit(request)
    assert decision.refusal is not None, "admitted"
    return decision.refusal.limit_name, decision.refusal.retry_after_s


def key(name: str, clock: FakeRedisClock) -> str:
    """One of the tenant's keys today: rpm, tpm, slots, day, unsettled or month (0)."""
    return dict(zip(KEY_NAMES, keys_for(PREFIX, TENANT, clock.now_ms // DAY_MS), strict=True))[name]


async def test_requests_per_minute_admits_the_limit_then_refuses_for_one_interval(clock, limiter):
    limits = Limits(requests_per_minute=6)  # one request per 10 s
    for n in range(6):
        await admitted(limiter, plan(clock, limits, lease=f"l{n}"))
    seventh = plan(clock, limits, lease="l6")
    assert await refused_by(limiter, seventh) == ("requests_per_minute", 10.0)
    clock.advance(9_999)
    assert await refused_by(limiter, seventh) == ("requests_per_minute", 0.001)
    clock.advance(1)
    await admitted(limiter, seventh)
    assert await refused_by(limiter, plan(clock, limits, lease="l7")) == (
        "requests_per_minute",
        10.0,
    )


async def test_tokens_per_minute_release_hands_back_unused_reservation(clock, limiter):
    limits = Limits(tokens_per_minute=1000)  # 60 ms a token
    first = await admitted(limiter, plan(clock, limits, cost=600, lease="first"))
    second = plan(clock, limits, cost=600, lease="second")
    assert await refused_by(limiter, second) == ("tokens_per_minute", 12.0)
    await limiter.release(first, Usage(60, 40), "m")  # 100 used: 500 tokens come back
    await admitted(limiter, second)
    # 100 + 600 tokens spent: another 600 fits once 300 of them have run out, in 18 s
    third = plan(clock, limits, cost=600, lease="third")
    assert await refused_by(limiter, third) == ("tokens_per_minute", 18.0)


async def test_tokens_per_minute_release_charges_usage_beyond_the_reservation(clock, limiter):
    limits = Limits(tokens_per_minute=1000)
    admission = await admitted(limiter, plan(clock, limits, cost=100))
    await limiter.release(admission, Usage(300, 400), "m")  # 600 more than reserved
    following = plan(clock, limits, cost=400, lease="l2")
    assert await refused_by(limiter, following) == ("tokens_per_minute", 6.0)


async def test_release_of_a_fully_elapsed_reservation_deletes_the_tokens_key(clock, limiter, redis):
    limits = Limits(tokens_per_minute=1000)
    admission = await admitted(limiter, plan(clock, limits, cost=600))
    clock.advance(30_000)
    await limiter.release(admission, Usage(), "m")
    assert await redis.exists(key("tpm", clock)) == 0


async def test_concurrency_lease_not_renewed_expires_after_lease_ttl(clock, limiter):
    limits = Limits(concurrent_streams=1)
    await admitted(limiter, plan(clock, limits, lease="dead-replica", ttl_ms=30_000))
    following = plan(clock, limits, lease="next")
    assert await refused_by(limiter, following) == ("concurrent_streams", 1.0)
    clock.advance(29_999)
    assert await refused_by(limiter, following) == ("concurrent_streams", 1.0)
    clock.advance(1)
    await admitted(limiter, following)


async def test_renew_keeps_a_lease_past_its_ttl(clock, limiter):
    limits = Limits(concurrent_streams=1)
    live = await admitted(limiter, plan(clock, limits, lease="live", ttl_ms=30_000))
    clock.advance(20_000)
    await limiter.renew([live], 30_000)  # now held until 50 s
    following = plan(clock, limits, lease="next")
    clock.advance(29_999)
    assert await refused_by(limiter, following) == ("concurrent_streams", 1.0)
    clock.advance(1)
    await admitted(limiter, following)


async def test_renew_does_not_bring_back_a_released_lease(clock, limiter):
    limits = Limits(concurrent_streams=1)
    done = await admitted(limiter, plan(clock, limits, lease="done"))
    await limiter.release(done, Usage(1, 1), "m")
    await limiter.renew([done], 60_000)  # a renewal racing the release
    await admitted(limiter, plan(clock, limits, lease="next"))


async def test_release_sent_twice_settles_once(clock, limiter, redis):
    limits = Limits(tokens_per_minute=100_000, concurrent_streams=2)
    admission = await admitted(limiter, plan(clock, limits, cost=500))
    await limiter.release(admission, Usage(100, 20), "sonnet")
    after_first = await redis.get(key("tpm", clock)), await redis.hgetall(key("day", clock))
    await limiter.release(admission, Usage(100, 20), "sonnet")
    after_second = await redis.get(key("tpm", clock)), await redis.hgetall(key("day", clock))
    assert after_second == after_first
    usage = (await limiter.usage(TENANT, clock.now_ms // DAY_MS)).as_dict()
    assert usage == {
        "tokens": 120,
        "requests": 1,
        "models": {"sonnet": {"input_tokens": 100, "output_tokens": 20, "requests": 1}},
    }


async def test_admission_sent_twice_with_one_lease_id_is_counted_once(clock, limiter, redis):
    limits = Limits(
        requests_per_minute=2, tokens_per_minute=1000, concurrent_streams=2, daily_tokens=10_000
    )
    first = await limiter.admit(plan(clock, limits, cost=100, lease="retried"))
    again = await limiter.admit(plan(clock, limits, cost=100, lease="retried"))
    assert first.allowed and first.admission is not None and first.admission.quota is not None
    assert again.allowed and again.admission is not None and again.admission.quota is None
    assert (await limiter.usage(TENANT, clock.now_ms // DAY_MS)).tokens == 100
    assert await redis.zcard(key("slots", clock)) == 1
    assert await redis.zcard(key("unsettled", clock)) == 1
    await admitted(limiter, plan(clock, limits, cost=100, lease="other"))  # rpm 2: one left
    third = plan(clock, limits, lease="third")
    assert await refused_by(limiter, third) == ("requests_per_minute", 30.0)


async def test_daily_tokens_refuse_once_spent_until_the_next_utc_day(clock, limiter):
    limits = Limits(daily_tokens=1000)
    admission = await admitted(limiter, plan(clock, limits, cost=900))
    await limiter.release(admission, Usage(400, 500), "m")
    over_budget = plan(clock, limits, cost=200, lease="l2")
    assert await refused_by(limiter, over_budget) == ("daily_tokens", 12 * 3600.0)  # midnight
    await admitted(limiter, plan(clock, limits, cost=100, lease="l3"))
    clock.advance(DAY_MS // 2)
    await admitted(limiter, plan(clock, limits, cost=200, lease="l4"))


async def test_day_usage_key_expires_after_usage_retention(clock, limiter, redis):
    day_key = key("day", clock)
    admission = await admitted(limiter, plan(clock, Limits(), cost=10))
    await limiter.release(admission, Usage(5, 5), "m")
    clock.advance(RETENTION_DAYS * DAY_MS)
    assert await redis.hget(day_key, "tokens") == b"10"
    clock.advance(1)
    assert await redis.exists(day_key) == 0


async def test_every_key_written_by_admit_release_and_renew_carries_a_ttl(clock, limiter, redis):
    limits = Limits(
        requests_per_minute=60,
        tokens_per_minute=10_000,
        concurrent_streams=5,
        daily_tokens=10**6,
        monthly_usd=1.0,
    )
    done = await admitted(limiter, spend_plan(clock, limits, 500, "done"))
    live = await admitted(limiter, spend_plan(clock, limits, 500, "live"))
    await limiter.release(done, Usage(200, 100), "m")
    await limiter.renew([live], 60_000)
    keys = sorted([k async for k in redis.scan_iter(match="*")])
    assert keys == sorted(key(name, clock).encode() for name in KEY_NAMES)
    ttls = {k: await redis.pttl(k) for k in keys}
    assert all(ttl > 0 for ttl in ttls.values()), ttls


async def test_every_key_expires_once_the_tenant_is_idle(clock, limiter, redis):
    limits = Limits(
        requests_per_minute=60, tokens_per_minute=10_000, concurrent_streams=5, daily_tokens=10**6
    )
    admission = await admitted(limiter, plan(clock, limits, cost=500))
    await limiter.release(admission, Usage(200, 100), "m")
    await admitted(limiter, plan(clock, limits, cost=500, lease="never-released"))
    clock.advance(max(SETTLE_WINDOW_MS, RETENTION_DAYS * DAY_MS) + 1)
    assert await redis.dbsize() == 0


async def test_a_daily_usd_budget_reserves_the_worst_case_and_settles_to_the_real_cost(
    clock, limiter, redis
):
    limits = Limits(daily_usd=0.01)  # 10,000 micro-dollars
    day_ends_in = DAY_MS - clock.now_ms % DAY_MS
    first = await admitted(limiter, spend_plan(clock, limits, 6_000, "first"))
    assert await refused_by(limiter, spend_plan(clock, limits, 6_000, "second")) == (
        "daily_usd",
        day_ends_in / 1000,
    )
    await limiter.release(first, Usage(10, 10), "m", micro_usd=1_500)  # it cost less
    await admitted(limiter, spend_plan(clock, limits, 6_000, "second"))
    assert int(await redis.hget(key("day", clock), "usd")) == 7_500
    assert int(await redis.hget(key("day", clock), "usd:m")) == 1_500  # the real cost


async def test_a_monthly_usd_budget_refuses_until_the_month_ends(clock, limiter):
    limits = Limits(monthly_usd=0.005)
    await admitted(limiter, spend_plan(clock, limits, 4_000, "first", month_end=90_000))
    refused = await refused_by(limiter, spend_plan(clock, limits, 4_000, "second", 90_000))
    assert refused == ("monthly_usd", 90.0)


def spend_plan(
    clock: FakeRedisClock, limits: Limits, spend: int, lease: str, month_end: int = 3_600_000
) -> Plan:
    """A plan of 500 tokens that reserves `spend` micro-dollars, in a month (0) ending
    `month_end` ms from now."""
    day = clock.now_ms // DAY_MS
    return Plan(TENANT, limits, 500, lease, 60_000, day, spend, 0, clock.now_ms + month_end)
