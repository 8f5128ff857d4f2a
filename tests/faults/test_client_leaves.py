"""A client that leaves at any phase of a stream leaves nothing behind.

Phases: before its headers were complete, during admission, before the first token,
mid-stream, and during the settle after `done`.  After each: no stream is open, the
request's reservation is settled once (or nothing was admitted), its concurrency slot is
free, and no error was logged.  Each runs on the in-process limiter, Redis and Redis Cluster;
the admission phase is held in Redis with CLIENT PAUSE (the in-process backend decides
without waiting: its cancelled admissions are covered in test_admission_cancelled.py).

The gateway is served as `ai-gateway serve` serves it: with handler cancellation, so a
client that leaves cancels its handler wherever it is.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from redis.asyncio import Redis

from gateway.app import create_app
from gateway.cli import hash_api_key
from gateway.sse import Redactor
from gateway.state import STATE, Shared
from gateway.streaming import SseStream, StreamOptions, StreamOutcome
from policies.admission.limiter import today
from policies.admission.limits import Limits
from providers.base import StreamEnd, TextDelta, Usage
from tests.conftest import CHAT, build_config
from tests.fakes.anthropic_server import FakeAnthropic
from tests.fakes.script import Script
from tests.waiting import wait_until

KEY = "key-of-the-tenant-0001"
HEADERS = {"Authorization": f"Bearer {KEY}"}
RESERVED = 500  # CHAT's max_tokens: what an unsettled reservation would leave counted


@dataclass
class Served:
    client: TestClient[Any, Any]
    nodes: list[Redis]  # every Redis node, each addressed directly; none in memory

    @property
    def shared(self) -> Shared:
        return self.client.server.app[STATE].current.shared

    async def paused(self, ms: int = 20_000) -> None:
        """Hold every script that writes (admissions, releases) until `unpause`."""
        for node in self.nodes:
            await node.execute_command("CLIENT", "PAUSE", ms, "WRITE")

    async def unpause(self) -> None:
        for node in self.nodes:
            await node.execute_command("CLIENT", "UNPAUSE")

    async def scripts_waiting(self) -> bool:
        blocked = [int((await n.info("clients"))["blocked_clients"]) for n in self.nodes]
        return sum(blocked) >= 1

    async def assert_nothing_left(self, *, admitted: bool) -> dict[str, Any]:
        """No open stream, the reservation settled once, the slot free; the day's usage."""
        shared = self.shared
        await wait_until(lambda: len(shared.streams) == 0, "every stream to close")

        async def settled() -> bool:
            usage = (await shared.limiter.usage("t", today())).as_dict()
            return usage["requests"] == (1 if admitted else 0)

        await wait_until(settled, "the request to be settled")
        usage = (await shared.limiter.usage("t", today())).as_dict()
        assert usage["tokens"] < RESERVED, f"the reservation was not settled: {usage}"
        probe = await shared.limiter.admit("t", Limits(concurrent_streams=1), 0)
        assert probe.admission is not None, f"a slot leaked: {probe.refusal}"
        await shared.limiter.release(probe.admission, Usage(), None)
        return usage


@pytest.fixture(params=["memory", "redis", "cluster"])
async def served(
    request, aiohttp_client, fake_anthropic: FakeAnthropic, key_prefix
) -> AsyncIterator[Served]:
    node_urls: list[str] = []
    redis: dict[str, Any] = {"key_prefix": key_prefix, "socket_timeout_ms": 10_000}
    if request.param == "redis":
        server = request.getfixturevalue("redis_server")
        redis["url"], node_urls = server.url, [server.url]
    elif request.param == "cluster":
        cluster = request.getfixturevalue("redis_cluster")
        redis["url"], redis["cluster"] = cluster.url, True
        node_urls = [node.url for node in cluster.nodes]
    config = build_config(
        anthropic_url=fake_anthropic.url,
        auth={"mode": "api_key"},
        redis=redis,
        tenants=[{"id": "t", "keys": [hash_api_key(KEY)], "limits": {"concurrent_streams": 1}}],
        chains={"default": {"targets": ["sonnet"], "retry": {"max_attempts": 1}}},
    )
    client = await aiohttp_client(create_app(config), server_kwargs={"handler_cancellation": True})
    nodes = [Redis.from_url(url) for url in node_urls]
    yield Served(client, nodes)
    for node in nodes:
        with contextlib.suppress(Exception):
            await node.execute_command("CLIENT", "UNPAUSE")
        await node.aclose()


@pytest.fixture(autouse=True)
def no_errors_logged(caplog):
    yield
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert not errors, [r.getMessage() for r in errors]


async def _raw(served: Served, data: bytes) -> None:
    """Send `data` on a socket of its own, then hang up."""
    server = served.client.server
    _, writer = await asyncio.open_connection(server.host, server.port)
    writer.write(data)
    await writer.drain()
    writer.close()
    await writer.wait_closed()


async def test_leaving_before_the_headers_are_complete(served):
    await _raw(served, b"POST /ai/stream/chat HTTP/1.1\r\nHost: gw\r\nContent-Type: appl")
    await _raw(
        served,
        b"POST /ai/stream/chat HTTP/1.1\r\nHost: gw\r\nContent-Type: application/json\r\n"
        + f"Authorization: Bearer {KEY}\r\nContent-Length: 200\r\n\r\n".encode()
        + b'{"messages": [',
    )
    await served.assert_nothing_left(admitted=False)
    async with served.client.post("/ai/stream/chat", json=CHAT, headers=HEADERS) as response:
        assert response.status == 200  # and the gateway serves on


@pytest.mark.parametrize("served", ["redis", "cluster"], indirect=True)
async def test_leaving_during_admission(served):
    await served.paused()
    leaving = asyncio.create_task(served.client.post("/ai/stream/chat", json=CHAT, headers=HEADERS))
    await wait_until(served.scripts_waiting, "the admission script to wait in Redis")
    leaving.cancel()
    with pytest.raises(asyncio.CancelledError):
        await leaving
    await wait_until(lambda: len(served.shared.limiter._in_flight) == 1, "the handler to go")
    await served.unpause()

    usage = await served.assert_nothing_left(admitted=True)
    assert usage["tokens"] == 0


async def test_leaving_before_the_first_token(served, fake_anthropic):
    fake_anthropic.script(Script(hold=asyncio.Event()))
    leaving = asyncio.create_task(served.client.post("/ai/stream/chat", json=CHAT, headers=HEADERS))
    await fake_anthropic.arrived.wait()
    leaving.cancel()
    with pytest.raises(asyncio.CancelledError):
        await leaving

    await fake_anthropic.seen[-1].finished.wait()
    assert fake_anthropic.seen[-1].cancelled
    usage = await served.assert_nothing_left(admitted=True)
    assert usage["tokens"] == 0  # no text reached the client: nothing is charged


async def test_leaving_mid_stream(served, fake_anthropic):
    fake_anthropic.script(Script(chunks=["one ", "two ", "three"], fault="stall", fault_after=2))
    response = await served.client.post("/ai/stream/chat", json=CHAT, headers=HEADERS)
    received = b""
    while received.count(b'"type":"content"') < 2:
        received += await response.content.readany()
    response.close()

    await fake_anthropic.seen[-1].finished.wait()
    usage = await served.assert_nothing_left(admitted=True)
    assert 0 < usage["tokens"] < RESERVED  # the input and the text that was sent, estimated


async def test_leaving_during_the_settle(served, fake_anthropic):
    hold = asyncio.Event()
    fake_anthropic.script(Script(hold=hold))
    posting = asyncio.create_task(served.client.post("/ai/stream/chat", json=CHAT, headers=HEADERS))
    await fake_anthropic.arrived.wait()
    if served.nodes:
        await served.paused()
    hold.set()
    response = await posting  # its headers come with the first text
    received = b""
    while b'"type":"done"' not in received:
        received += await response.content.readany()
    if served.nodes:
        await wait_until(served.scripts_waiting, "the settle script to wait in Redis")
    response.close()  # the handler is cancelled while it settles
    if served.nodes:
        await wait_until(lambda: len(served.shared.streams) == 0, "the handler to go")
        await served.unpause()

    usage = await served.assert_nothing_left(admitted=True)
    model = usage["models"]["claude-sonnet-4-5-20250929"]
    assert model["requests"] == 1
    assert usage["tokens"] == model["input_tokens"] + model["output_tokens"]  # done's usage


async def test_a_client_that_leaves_mid_write_is_a_disconnect_not_a_failure(aiohttp_client):
    """The client's socket closed while a frame was written, before aiohttp cancelled the
    handler: counted as `client_disconnected`, logged as nothing."""
    outcome = StreamOutcome()

    async def handler(request: web.Request) -> web.StreamResponse:
        async def deltas() -> Any:
            yield TextDelta("first")
            assert request.transport is not None
            request.transport.close()  # gone, and the handler not cancelled yet
            yield TextDelta("second")
            yield StreamEnd("model", "end_turn")

        options = StreamOptions("request-id", 15, Redactor([]), {})
        return await SseStream(request, deltas(), outcome, options).run()

    app = web.Application()
    app.router.add_post("/stream", handler)
    client = await aiohttp_client(app)
    with contextlib.suppress(aiohttp.ClientError):
        async with client.post("/stream") as response:
            await response.read()

    await wait_until(lambda: outcome.outcome != "pending", "the stream to end")
    assert outcome.outcome == "client_disconnected"
    assert outcome.error is None
