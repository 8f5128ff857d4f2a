"""FakeRedisClock drives every clock fakeredis reads: TIME, in and out of Lua, and expiry.

If a fakeredis upgrade reads the wall clock somewhere new, these fail first, and name it.
"""

from __future__ import annotations

import fakeredis
import pytest

from tests.fakeredis_clock import FakeRedisClock

START_MS = 1_700_000_000_123


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeRedisClock:
    return FakeRedisClock(monkeypatch, START_MS)


@pytest.fixture
async def redis():
    client = fakeredis.FakeAsyncRedis(server=fakeredis.FakeServer())
    yield client
    await client.aclose()


async def test_time_command_reports_the_fake_clock(clock, redis):
    assert await redis.time() == (1_700_000_000, 123_000)
    clock.advance(60_000)
    assert await redis.time() == (1_700_000_060, 123_000)


async def test_time_inside_a_lua_script_reports_the_fake_clock(clock, redis):
    clock.advance(877)
    assert await redis.eval("return redis.call('TIME')", 0) == [b"1700000001", b"0"]


async def test_px_key_expires_when_the_clock_passes_its_ttl(clock, redis):
    await redis.set("k", "v", px=1_000)
    clock.advance(1_000)
    assert await redis.pttl("k") == 0
    clock.advance(1)
    assert await redis.exists("k") == 0


async def test_pexpire_set_inside_a_lua_script_runs_on_the_fake_clock(clock, redis):
    await redis.eval(
        "redis.call('HSET', KEYS[1], 'f', 1) redis.call('PEXPIRE', KEYS[1], 500)", 1, "h"
    )
    clock.advance(400)
    assert await redis.pttl("h") == 100
    clock.advance(101)
    assert await redis.exists("h") == 0


async def test_hash_field_expires_when_the_clock_passes_its_ttl(clock, redis):
    await redis.hset("h", mapping={"gone": 1, "kept": 2})
    await redis.hpexpire("h", 1_000, "gone")
    clock.advance(1_001)
    assert await redis.hgetall("h") == {b"kept": b"2"}
