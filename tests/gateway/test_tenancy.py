"""Tenants over HTTP: keys, permissions, limits and their headers, against a real Redis."""

from __future__ import annotations

import asyncio
import logging
import time

import pytest
from redis.asyncio import Redis

from gateway.access_log import JsonFormatter
from gateway.app import create_app
from gateway.cli import hash_api_key
from policies.admission.limits import DAY_MS
from policies.admission.redis_backend import keys_for
from providers.base import estimate_tokens
from tests.conftest import CHAT, build_config, post_stream
from tests.fakes.anthropic_server import Script

KEY_A, KEY_B = "key-of-tenant-a-0001", "key-of-tenant-b-0002"
NO_RETRY = {"default": {"targets": ["sonnet"], "retry": {"max_attempts": 1}}}


def tenancy(redis_url: str, prefix: str, limits_a=None, limits_b=None, **redis) -> dict:
    return {
        "auth": {"mode": "api_key"},
        "redis": {"url": redis_url, "key_prefix": prefix, **redis},
        "tenants": [
            {"id": "a", "keys": [hash_api_key(KEY_A)], "limits": limits_a or {}},
            {
                "id": "b",
                "keys": [hash_api_key(KEY_B)],
                "chains": ["haiku"],
                "limits": limits_b or {},
            },
        ],
        "chains": NO_RETRY,
        "server": {"date_context": {"enabled": False}},
    }


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@pytest.fixture
async def redis(redis_server):
    client = Redis.from_url(redis_server.url)
    yield client
    await client.aclose()


async def day_tokens(redis: Redis, prefix: str, tenant: str) -> int:
    day = int(time.time() * 1000) // DAY_MS
    return int(await redis.hget(keys_for(prefix, tenant, day)[3], "tokens") or 0)


async def test_missing_and_unknown_keys_are_401(gateway, redis_server, key_prefix):
    client = await gateway(**tenancy(redis_server.url, key_prefix))
    missing = await post_stream(client, "/ai/stream/chat", CHAT)
    unknown = await post_stream(client, "/ai/stream/chat", CHAT, headers=bearer("nope"))
    assert missing.status == unknown.status == 401
    assert "Authorization: Bearer" in missing.last["error"]
    assert unknown.last["error"] == "Unknown API key."


async def test_bearer_and_x_api_key_both_authenticate(gateway, redis_server, key_prefix, caplog):
    caplog.set_level(logging.DEBUG)
    client = await gateway(**tenancy(redis_server.url, key_prefix))
    by_bearer = await post_stream(client, "/ai/stream/chat", CHAT, headers=bearer(KEY_A))
    by_header = await post_stream(client, "/ai/stream/chat", CHAT, headers={"X-API-Key": KEY_A})
    assert by_bearer.last["type"] == by_header.last["type"] == "done"
    for _ in range(50):  # the access line is written just after the stream's last byte
        if len([r for r in caplog.records if r.name == "gateway.access"]) == 2:
            break
        await asyncio.sleep(0.02)
    formatter = JsonFormatter()
    lines = [formatter.format(r) for r in caplog.records]
    assert not [line for line in lines if KEY_A in line]
    access = [r.fields for r in caplog.records if r.name == "gateway.access"]
    assert [a["tenant"] for a in access] == ["a", "a"]


async def test_model_the_tenant_may_not_use_is_403(gateway, redis_server, key_prefix):
    client = await gateway(**tenancy(redis_server.url, key_prefix))
    refused = await post_stream(
        client, "/ai/stream/chat", {**CHAT, "model": "sonnet"}, headers=bearer(KEY_B)
    )
    default = await post_stream(client, "/ai/stream/chat", CHAT, headers=bearer(KEY_B))
    assert refused.status == 403
    assert "Allowed: haiku" in refused.last["error"]
    assert default.last["model"] == "claude-haiku-4-5-20251001"  # its only chain


async def test_an_unknown_model_is_told_only_the_names_the_tenant_may_use(
    gateway, redis_server, key_prefix
):
    client = await gateway(**tenancy(redis_server.url, key_prefix))
    result = await post_stream(
        client, "/ai/stream/chat", {**CHAT, "model": "gpt-9"}, headers=bearer(KEY_B)
    )
    assert (result.status, result.last["code"]) == (400, "unknown_model")
    assert result.last["error"] == "Unknown model 'gpt-9'. Valid names: haiku."


async def test_limited_request_gets_429_retry_after_and_ratelimit_headers(
    gateway, redis_server, key_prefix
):
    client = await gateway(**tenancy(redis_server.url, key_prefix, {"requests_per_minute": 2}))
    first = await post_stream(client, "/ai/stream/chat", CHAT, headers=bearer(KEY_A))
    second = await post_stream(client, "/ai/stream/chat", CHAT, headers=bearer(KEY_A))
    third = await post_stream(client, "/ai/stream/chat", CHAT, headers=bearer(KEY_A))

    assert first.headers["RateLimit-Limit"] == "2"
    assert first.headers["RateLimit-Remaining"] == "1"
    assert second.headers["RateLimit-Remaining"] == "0"
    assert third.status == 429
    assert int(third.headers["Retry-After"]) >= 1
    assert third.headers["RateLimit-Remaining"] == "0"
    assert int(third.headers["RateLimit-Reset"]) >= 1
    assert [e["type"] for e in third.events] == ["error"]
    assert third.last["error"].startswith("Rate limit exceeded")


async def test_limit_of_10_admits_exactly_10_of_50_concurrent_requests(
    gateway, redis_server, key_prefix
):
    # The test client and the gateway share one event loop here, and 50 requests at once
    # can hold it longer than the default 250 ms Redis time-out on a slow machine: the
    # limiter would then rightly fail open, which is not what this test is about.
    limits = {"requests_per_minute": 10}
    client = await gateway(**tenancy(redis_server.url, key_prefix, limits, socket_timeout_ms=2000))
    results = await asyncio.gather(
        *(post_stream(client, "/ai/stream/chat", CHAT, headers=bearer(KEY_A)) for _ in range(50))
    )
    statuses = sorted(r.status for r in results)
    assert statuses == [200] * 10 + [429] * 40


async def test_two_gateway_instances_on_one_redis_share_the_limit(
    aiohttp_client, fake_anthropic, redis_server, key_prefix
):
    config = build_config(
        fake_anthropic.url, **tenancy(redis_server.url, key_prefix, {"requests_per_minute": 4})
    )
    first = await aiohttp_client(create_app(config))
    second = await aiohttp_client(create_app(config))
    results = await asyncio.gather(
        *(
            post_stream(c, "/ai/stream/chat", CHAT, headers=bearer(KEY_A))
            for c in [first, second] * 5
        )
    )
    assert sorted(r.status for r in results) == [200] * 4 + [429] * 6


async def test_tenant_a_exhausting_its_limits_never_affects_b(gateway, redis_server, key_prefix):
    limits = {"requests_per_minute": 2, "concurrent_streams": 1}
    client = await gateway(**tenancy(redis_server.url, key_prefix, limits, limits))
    for _ in range(4):
        await post_stream(client, "/ai/stream/chat", CHAT, headers=bearer(KEY_A))
    exhausted = await post_stream(client, "/ai/stream/chat", CHAT, headers=bearer(KEY_A))
    fresh = await post_stream(client, "/ai/stream/chat", CHAT, headers=bearer(KEY_B))
    assert exhausted.status == 429
    assert fresh.status == 200


async def test_tokens_are_reconciled_to_the_real_usage_after_success(
    gateway, redis_server, key_prefix, redis
):
    client = await gateway(**tenancy(redis_server.url, key_prefix))
    result = await post_stream(client, "/ai/stream/chat", CHAT, headers=bearer(KEY_A))
    usage = result.last["usage"]
    assert (
        await day_tokens(redis, key_prefix, "a") == usage["input_tokens"] + usage["output_tokens"]
    )


async def test_tokens_are_refunded_when_the_upstream_fails(
    gateway, fake_anthropic, redis_server, key_prefix, redis
):
    fake_anthropic.script(Script(status=500))
    client = await gateway(**tenancy(redis_server.url, key_prefix))
    result = await post_stream(client, "/ai/stream/chat", CHAT, headers=bearer(KEY_A))
    assert result.status == 502
    assert await day_tokens(redis, key_prefix, "a") == 0


async def test_disconnect_settles_tokens_and_releases_the_slot(
    gateway, fake_anthropic, redis_server, key_prefix, redis
):
    fake_anthropic.script(Script(fault="stall", fault_after=2))
    client = await gateway(**tenancy(redis_server.url, key_prefix, {"concurrent_streams": 1}))
    response = await client.post("/ai/stream/chat", json=CHAT, headers=bearer(KEY_A))
    received = b""
    while received.count(b'"type":"content"') < 2:
        received += await response.content.readany()
    slots_key = keys_for(key_prefix, "a", 0)[2]
    assert await redis.zcard(slots_key) == 1
    response.close()
    await asyncio.wait_for(fake_anthropic.seen[-1].finished.wait(), 2)
    await asyncio.sleep(0.1)

    assert await redis.zcard(slots_key) == 0
    prompt_tokens = estimate_tokens(len(CHAT["messages"][0]["content"]))
    assert await day_tokens(redis, key_prefix, "a") == prompt_tokens + estimate_tokens(
        len("Hello, ")
    )
    again = await post_stream(client, "/ai/stream/chat", CHAT, headers=bearer(KEY_A))
    assert again.status == 200


async def test_fail_open_survives_redis_death_and_recovers(gateway, own_redis_server, key_prefix):
    client = await gateway(
        **tenancy(own_redis_server.url, key_prefix, {"requests_per_minute": 100})
    )
    assert (await post_stream(client, "/ai/stream/chat", CHAT, headers=bearer(KEY_A))).status == 200

    own_redis_server.stop()
    started = time.monotonic()
    during = await post_stream(client, "/ai/stream/chat", CHAT, headers=bearer(KEY_A))
    assert during.status == 200
    assert time.monotonic() - started < 1.0  # a dead Redis never hangs a request
    async with client.get("/ai/stream/health") as response:
        assert (await response.json())["limiter"]["redis"] == "down"

    own_redis_server.start()
    for _ in range(40):
        async with client.get("/ai/stream/health") as response:
            if (await response.json())["limiter"]["redis"] == "ok":
                break
        await asyncio.sleep(0.1)
    else:
        pytest.fail("the limiter did not go back to Redis")
    after = await post_stream(client, "/ai/stream/chat", CHAT, headers=bearer(KEY_A))
    redis = Redis.from_url(own_redis_server.url)
    try:
        assert after.status == 200
        assert await day_tokens(redis, key_prefix, "a") > 0  # counted in the new Redis
    finally:
        await redis.aclose()


async def test_fail_closed_refuses_with_503_while_redis_is_down(
    gateway, own_redis_server, key_prefix
):
    client = await gateway(**tenancy(own_redis_server.url, key_prefix, on_error="fail_closed"))
    own_redis_server.stop()
    result = await post_stream(client, "/ai/stream/chat", CHAT, headers=bearer(KEY_A))
    assert result.status == 503
    assert result.last["code"] == "rate_limiter_unavailable"
    assert "Retry-After" in result.headers


async def test_upstream_quota_bounds_concurrency_at_the_provider(gateway, fake_anthropic):
    fake_anthropic.default = Script(first_token_delay=0.5)
    client = await gateway(
        providers={"anthropic": {"quota": {"concurrent_requests": 1, "max_wait_s": 0.1}}},
        chains=NO_RETRY,
    )
    results = await asyncio.gather(
        post_stream(client, "/ai/stream/chat", CHAT), post_stream(client, "/ai/stream/chat", CHAT)
    )
    assert sorted(r.status for r in results) == [200, 503]
    refused = next(r for r in results if r.status == 503)
    assert refused.last["code"] == "upstream_quota_exhausted"
    assert fake_anthropic.requests == 1


async def test_upstream_quota_waits_a_bounded_time_for_a_slot(gateway, fake_anthropic):
    fake_anthropic.default = Script(first_token_delay=0.2)
    client = await gateway(
        providers={"anthropic": {"quota": {"concurrent_requests": 1, "max_wait_s": 2}}},
        chains=NO_RETRY,
    )
    results = await asyncio.gather(
        post_stream(client, "/ai/stream/chat", CHAT), post_stream(client, "/ai/stream/chat", CHAT)
    )
    assert [r.status for r in results] == [200, 200]
    first, second = fake_anthropic.seen
    assert second.started >= first.ended  # the second waited for the first's slot
