"""The in-process stream log stays bounded, whatever is thrown at it: per stream, in
time, and all streams together (a flood of abandoned streams)."""

from __future__ import annotations

import pytest

from gateway.resume.log import EventsTrimmed, StreamGone
from gateway.resume.memory_log import MemoryStreamLog
from tests.clock import FakeClock


def store(max_events: int = 10, max_total: int = 100) -> tuple[MemoryStreamLog, FakeClock]:
    clock = FakeClock()
    return MemoryStreamLog(60, max_events, max_total, clock.clock.monotonic), clock


async def write(log: MemoryStreamLog, stream: str, count: int, end: bool = True) -> None:
    assert await log.create("t", stream)
    frames = [f"data: {i}\n\n".encode() for i in range(count)]
    await log.append("t", stream, 1, frames, end)


async def replay(log: MemoryStreamLog, stream: str, after: int = 0) -> list[int]:
    return [event.seq async for event in log.follow("t", stream, after)]


async def test_a_flood_of_finished_streams_never_holds_more_than_the_cap():
    log, _ = store(max_total=100)
    for n in range(50):
        await write(log, f"s{n}", 10)
        assert log.describe()["events"] <= 100
    with pytest.raises(StreamGone):  # the oldest went first
        await replay(log, "s0")
    assert await replay(log, "s49") == list(range(1, 11))


async def test_when_only_running_streams_are_left_a_new_one_is_not_kept():
    log, _ = store(max_events=50, max_total=100)
    await write(log, "a", 50, end=False)
    await write(log, "b", 50, end=False)
    assert not await log.create("t", "c")  # it streams on, without X-Stream-ID
    await log.append("t", "a", 51, [b"data: more\n\n"], False)  # a running one keeps its newest
    assert log.describe()["events"] == 100
    with pytest.raises(EventsTrimmed):
        await replay(log, "a")


async def test_a_stream_keeps_its_last_max_events():
    log, _ = store(max_events=10)
    await write(log, "s", 25)
    assert await replay(log, "s", after=15) == list(range(16, 26))
    with pytest.raises(EventsTrimmed):
        await replay(log, "s", after=3)


async def test_a_finished_stream_is_dropped_ttl_after_it_ended_and_health_says_so():
    log, clock = store()
    await write(log, "s", 5)
    assert log.describe() == {
        "store": "memory",
        "streams": 1,
        "events": 5,
        "bytes": sum(len(f"data: {i}\n\n") for i in range(5)),
        "max_events": 100,
    }
    clock.advance(61)
    with pytest.raises(StreamGone):
        await replay(log, "s")
    assert log.describe()["events"] == 0 and log.describe()["bytes"] == 0
