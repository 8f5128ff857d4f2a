"""Stream lifecycle: keep-alives, the commit point, and client disconnects."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

from aiohttp import web

from gateway.sse import Redactor
from gateway.streaming import SseStream, StreamOptions, StreamOutcome
from providers.base import Delta, StreamEnd, TextDelta
from providers.errors import ShuttingDown
from tests.conftest import CHAT, post_stream
from tests.fakes.anthropic_server import Script

NO_RETRY = {"chains": {"default": {"targets": ["sonnet"], "retry": {"max_attempts": 1}}}}


async def test_keepalive_comments_flow_while_upstream_is_silent(gateway, fake_anthropic):
    fake_anthropic.script(Script(first_token_delay=0.75))
    client = await gateway(server={"keepalive_seconds": 0.2})
    result = await post_stream(client, "/ai/stream/chat", CHAT)

    assert result.status == 200
    assert result.comments.count("keep-alive") >= 2
    assert result.raw.startswith(b": keep-alive\n\n")
    assert result.text == "Hello, world!"
    result.assert_one_terminal()


async def test_failure_after_a_keepalive_is_an_error_event_in_a_200(gateway, fake_anthropic):
    fake_anthropic.script(Script(first_token_delay=0.5, fault="error_event", fault_after=0))
    client = await gateway(server={"keepalive_seconds": 0.2}, **NO_RETRY)
    result = await post_stream(client, "/ai/stream/chat", CHAT)

    assert result.status == 200
    assert [e["type"] for e in result.events] == ["error"]


async def test_client_disconnect_cancels_the_upstream(gateway, fake_anthropic, caplog):
    fake_anthropic.script(Script(fault="stall", fault_after=2))
    client = await gateway()
    response = await client.post("/ai/stream/chat", json=CHAT)
    received = b""
    while received.count(b'"type":"content"') < 2:
        received += await response.content.readany()
    response.close()

    seen = fake_anthropic.seen[-1]
    await seen.finished.wait()  # the fake stalls for an hour unless its request is cancelled
    assert seen.cancelled
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


async def test_disconnect_while_waiting_for_first_token_cancels_upstream(gateway, fake_anthropic):
    fake_anthropic.script(Script(first_token_delay=30))
    client = await gateway()
    task = asyncio.create_task(client.post("/ai/stream/chat", json=CHAT))
    await fake_anthropic.arrived.wait()
    task.cancel()
    seen = fake_anthropic.seen[-1]
    await seen.finished.wait()  # its first token would come in 30 s: only a cancel ends it
    assert seen.cancelled


async def test_many_concurrent_streams_each_end_once(gateway, fake_anthropic):
    fake_anthropic.default = Script(chunks=["a"] * 20, chunk_delay=0.001)
    client = await gateway()
    results = await asyncio.gather(
        *(post_stream(client, "/ai/stream/chat", CHAT) for _ in range(40))
    )
    for result in results:
        result.assert_one_terminal()
        assert result.text == "a" * 20


async def test_a_stream_ended_while_its_headers_are_being_prepared_ends_with_the_error(
    aiohttp_client,
):
    """The commit runs in the handler's own task: a shutdown that lands while a response
    hook is still preparing the headers waits for them, then ends the stream with its
    error event, rather than leave the client with a cut connection."""
    preparing, release = asyncio.Event(), asyncio.Event()

    async def slow_hook(request: web.Request, response: web.StreamResponse) -> None:
        preparing.set()
        await release.wait()

    async def deltas() -> AsyncIterator[Delta]:
        yield TextDelta("hi")
        yield StreamEnd("a-model", "end_turn")

    async def handler(request: web.Request) -> web.StreamResponse:
        options = StreamOptions("req-1", 15, Redactor([]), {})
        stream = SseStream(request, deltas(), StreamOutcome(), options)

        async def shut_down_while_preparing() -> None:
            await preparing.wait()
            stream.end(ShuttingDown())
            release.set()

        ending = asyncio.create_task(shut_down_while_preparing())
        try:
            return await stream.run()
        finally:
            await ending

    app = web.Application()
    app.on_response_prepare.append(slow_hook)
    app.router.add_post("/stream", handler)
    client = await aiohttp_client(app)

    result = await post_stream(client, "/stream", {})

    assert result.status == 200
    assert result.events[-1]["type"] == "error" and result.events[-1]["code"] == "shutdown"
    result.assert_one_terminal()
