"""Resumable streams end to end, on the in-process store, Redis and Redis Cluster: a client
dropped midway resumes (on another replica, with Redis) with `Last-Event-ID` and gets
exactly the rest; a finished stream replays; another tenant's stream is not found; a
DELETE stops the upstream; an expired stream is gone."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Any

import pytest
from redis.asyncio import Redis

from tests.clock import FakeClock
from tests.conftest import CHAT
from tests.fakes.script import Script
from tests.gateway.test_tenancy import KEY_A, KEY_B, bearer, day_tokens, tenancy
from tests.waiting import wait_until

WORDS = [f"w{i} " for i in range(30)]
RESUME = {"enabled": True, "ttl_s": 60}


@dataclass
class Frame:
    id: str | None
    event: dict[str, Any]


def frames(raw: bytes) -> list[Frame]:
    """The data frames of an SSE body, with their `id:` (comments left out)."""
    found = []
    for block in raw.decode().split("\n\n"):
        lines = [line for line in block.split("\n") if line and not line.startswith(":")]
        data = [line[6:] for line in lines if line.startswith("data: ")]
        ids = [line[4:] for line in lines if line.startswith("id: ")]
        if data:
            found.append(Frame(ids[0] if ids else None, json.loads("\n".join(data))))
    return found


def text_of(found: list[Frame]) -> str:
    return "".join(f.event["text"] for f in found if f.event["type"] == "content")


def terminals(found: list[Frame]) -> list[Frame]:
    return [f for f in found if f.event["type"] in ("done", "error")]


@pytest.fixture(params=["memory", "redis", "cluster"])
def store(request, redis_server, key_prefix) -> dict[str, Any]:
    """Config for each store; the Redis ones shared by every replica of a test."""
    if request.param == "memory":
        return {"auth_setup": {}}
    if request.param == "redis":
        redis = {"url": redis_server.url, "key_prefix": key_prefix, "cluster": False}
        return {"auth_setup": {"redis": redis}}
    cluster = request.getfixturevalue("redis_cluster")
    redis = {"url": cluster.url, "cluster": True, "key_prefix": key_prefix}
    return {"auth_setup": {"redis": redis}}


@pytest.fixture
def replicas(gateway, store, redis_server, key_prefix):
    """`start()` → a gateway replica with resume on, tenants a and b, and the store."""

    async def start(**resume: Any) -> Any:
        setup = tenancy(redis_server.url, key_prefix)
        setup.pop("redis")
        setup.update(store["auth_setup"])
        return await gateway(**setup, resume={**RESUME, **resume})

    return start


async def read_some(response, count: int) -> bytes:
    """The body up to `count` data frames, then nothing more is read."""
    raw = b""
    while raw.count(b"data: ") < count:
        raw += await response.content.readany()
    return raw


async def test_a_dropped_stream_resumes_on_another_replica_with_nothing_lost_or_repeated(
    replicas, fake_anthropic, store
):
    fake_anthropic.script(Script(chunks=WORDS, chunk_delay=0.01))
    one, two = await replicas(), await replicas()
    if not store["auth_setup"]:
        two = one  # the in-process store: one replica

    response = await one.post("/ai/stream/chat", json=CHAT, headers=bearer(KEY_A))
    stream_id = response.headers["X-Stream-ID"]
    first = frames(await read_some(response, 3))
    response.close()  # the phone changed networks
    last_id = [f.id for f in first if f.id][-1]
    assert last_id.startswith(stream_id + ":")

    async with two.get(
        f"/ai/stream/resume/{stream_id}", headers={**bearer(KEY_A), "Last-Event-ID": last_id}
    ) as resumed:
        assert resumed.status == 200
        rest = frames(await resumed.read())

    seqs = [int(f.id.rsplit(":", 1)[1]) for f in first + rest if f.id]
    assert seqs == list(range(1, len(seqs) + 1))  # every event once, in order
    assert text_of(first) + text_of(rest) == "".join(WORDS)
    (done,) = terminals(first + rest)
    assert done.event["type"] == "done"
    if store["auth_setup"].get("redis", {}).get("cluster") is False:
        # Settled once, by the replica that ran it, however many read it.
        redis = Redis.from_url(store["auth_setup"]["redis"]["url"])
        expected = sum(done.event["usage"].values())
        prefix = store["auth_setup"]["redis"]["key_prefix"]
        await wait_until(
            lambda: _equals(day_tokens(redis, prefix, "a"), expected), "the stream settled"
        )
        await redis.aclose()


async def _equals(value: Any, expected: int) -> bool:
    return await value == expected


async def test_a_finished_stream_replays_from_the_start_or_after_an_event(replicas):
    client = await replicas()
    async with client.post("/ai/stream/chat", json=CHAT, headers=bearer(KEY_A)) as response:
        stream_id = response.headers["X-Stream-ID"]
        whole = frames(await response.read())

    async with client.get(f"/ai/stream/resume/{stream_id}", headers=bearer(KEY_A)) as replay:
        assert frames(await replay.read()) == whole
    async with client.get(
        f"/ai/stream/resume/{stream_id}?after=2", headers=bearer(KEY_A)
    ) as replay:
        assert frames(await replay.read()) == whole[2:]


async def test_another_tenants_stream_is_not_found(replicas):
    client = await replicas()
    async with client.post("/ai/stream/chat", json=CHAT, headers=bearer(KEY_A)) as response:
        stream_id = response.headers["X-Stream-ID"]
        await response.read()
    async with client.get(f"/ai/stream/resume/{stream_id}", headers=bearer(KEY_B)) as other:
        assert other.status == 404
        (error,) = frames(await other.read())
        assert error.event["code"] == "not_found"
    async with client.get("/ai/stream/resume/nope", headers=bearer(KEY_A)) as unknown:
        assert unknown.status == 404


async def test_delete_stops_the_upstream_on_any_replica(replicas, fake_anthropic, store):
    fake_anthropic.script(Script(chunks=WORDS, chunk_delay=0.05))
    one, two = await replicas(), await replicas()
    if not store["auth_setup"]:
        two = one
    response = await one.post("/ai/stream/chat", json=CHAT, headers=bearer(KEY_A))
    stream_id = response.headers["X-Stream-ID"]
    await read_some(response, 2)

    stopped = await two.delete(f"/ai/stream/resume/{stream_id}", headers=bearer(KEY_A))
    assert stopped.status == 204
    rest = frames(await response.read())
    assert [t.event.get("code") for t in terminals(rest)] == ["stopped"]
    await wait_until(lambda: fake_anthropic.seen[-1].ended is not None, "the upstream call ends")
    assert fake_anthropic.seen[-1].cancelled  # the upstream call was closed
    assert text_of(rest).count("w") < len(WORDS)

    refused = await two.delete(f"/ai/stream/resume/{stream_id}", headers=bearer(KEY_B))
    assert refused.status == 404


async def test_a_client_that_leaves_does_not_stop_its_answer(replicas, fake_anthropic):
    fake_anthropic.script(Script(chunks=WORDS, chunk_delay=0.01))
    client = await replicas()
    response = await client.post("/ai/stream/chat", json=CHAT, headers=bearer(KEY_A))
    stream_id = response.headers["X-Stream-ID"]
    await read_some(response, 1)
    response.close()

    await wait_until(lambda: fake_anthropic.seen[-1].ended is not None, "the answer ends")
    assert not fake_anthropic.seen[-1].cancelled  # the upstream answered to the end
    async with client.get(f"/ai/stream/resume/{stream_id}", headers=bearer(KEY_A)) as replay:
        assert text_of(frames(await replay.read())) == "".join(WORDS)


async def test_without_continue_a_leaving_client_ends_the_stream_and_its_log_says_so(
    replicas, fake_anthropic
):
    fake_anthropic.script(Script(chunks=WORDS, chunk_delay=0.05))
    client = await replicas(continue_after_disconnect=False)
    response = await client.post("/ai/stream/chat", json=CHAT, headers=bearer(KEY_A))
    stream_id = response.headers["X-Stream-ID"]
    await read_some(response, 1)
    response.close()

    async def replayed() -> list[Frame]:
        async with client.get(f"/ai/stream/resume/{stream_id}", headers=bearer(KEY_A)) as r:
            return frames(await r.read())

    found = await asyncio.wait_for(replayed(), timeout=10)
    assert [t.event.get("code") for t in terminals(found)] == ["client_disconnected"]


async def test_a_finished_stream_expires_after_ttl(gateway):
    clock = FakeClock()
    client = await gateway(clock=clock.clock, resume=RESUME)
    async with client.post("/ai/stream/chat", json=CHAT) as response:
        stream_id = response.headers["X-Stream-ID"]
        await response.read()
    clock.advance(59)
    async with client.get(f"/ai/stream/resume/{stream_id}") as kept:
        assert kept.status == 200
    clock.advance(2)
    async with client.get(f"/ai/stream/resume/{stream_id}") as gone:
        assert gone.status == 404


async def test_streams_without_resume_have_no_stream_id(gateway):
    client = await gateway()
    async with client.post("/ai/stream/chat", json=CHAT) as response:
        assert "X-Stream-ID" not in response.headers
        assert all(f.id is None for f in frames(await response.read()))


async def test_use_chats_resume_gets_the_running_stream_or_204(replicas, fake_anthropic):
    fake_anthropic.script(Script(chunks=WORDS, chunk_delay=0.01))
    client = await replicas()
    chat = {
        "id": "chat-1",
        "messages": [{"id": "m1", "role": "user", "parts": [{"type": "text", "text": "Hi?"}]}],
        "trigger": "submit-message",
    }
    async with client.get("/ai/stream/chat/chat-1/stream", headers=bearer(KEY_A)) as none:
        assert none.status == 204  # nothing running yet

    response = await client.post("/ai/stream/chat?format=ui", json=chat, headers=bearer(KEY_A))
    await read_some(response, 4)
    response.close()  # the page reloaded
    async with client.get("/ai/stream/chat/chat-1/stream?format=ui", headers=bearer(KEY_A)) as r:
        assert r.status == 200
        assert r.headers["x-vercel-ai-ui-message-stream"] == "v1"
        resumed = await r.read()
    parts = [json.loads(line[6:]) for line in resumed.decode().split("\n") if line[:7] == "data: {"]
    assert parts[0]["type"] == "start" and parts[-1]["type"] == "finish"
    assert "".join(p["delta"] for p in parts if p["type"] == "text-delta") == "".join(WORDS)
    assert resumed.endswith(b"data: [DONE]\n\n")

    async with client.get("/ai/stream/chat/chat-1/stream", headers=bearer(KEY_A)) as ended:
        assert ended.status == 204  # it finished: nothing to resume
    async with client.get("/ai/stream/chat/chat-1/stream", headers=bearer(KEY_B)) as other:
        assert other.status == 204  # another tenant's chat is not found


async def test_a_resume_waits_through_silences_longer_than_the_redis_time_out(
    replicas, fake_anthropic
):
    """A model that thinks before it answers leaves the log silent for longer than the
    Redis client's 250 ms socket time-out: the follower's blocking reads must outlast it."""
    fake_anthropic.script(Script(chunks=["a ", "b ", "c"], chunk_delay=0.6))
    client = await replicas()
    response = await client.post("/ai/stream/chat", json=CHAT, headers=bearer(KEY_A))
    stream_id = response.headers["X-Stream-ID"]
    first = frames(await read_some(response, 1))
    response.close()
    headers = {**bearer(KEY_A), "Last-Event-ID": first[-1].id}
    async with client.get(f"/ai/stream/resume/{stream_id}", headers=headers) as resumed:
        assert resumed.status == 200
        rest = frames(await resumed.read())
    assert text_of(first) + text_of(rest) == "a b c"
    assert [t.event["type"] for t in terminals(rest)] == ["done"]

    # Resumed after its terminal event (what EventSource does when the server closes):
    # nothing more, at once.
    headers["Last-Event-ID"] = rest[-1].id
    async with client.get(f"/ai/stream/resume/{stream_id}", headers=headers) as after_end:
        assert after_end.status == 200
        assert frames(await after_end.read()) == []


async def test_a_resume_while_redis_is_down_is_a_503_with_one_error_frame(
    gateway, own_redis_server, key_prefix
):
    client = await gateway(**tenancy(own_redis_server.url, key_prefix), resume=RESUME)
    own_redis_server.stop()

    response = await client.get("/ai/stream/resume/any-stream-id", headers=bearer(KEY_A))

    assert response.status == 503
    found = frames(await response.read())
    assert [(f.event["type"], f.event["code"]) for f in found] == [("error", "unavailable")]
