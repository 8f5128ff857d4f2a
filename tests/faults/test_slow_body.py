"""A body that does not arrive in time is a 408 with one error frame, and admits nothing."""

from __future__ import annotations

import asyncio

from gateway.state import STATE
from tests.sse_client import parse_sse


async def test_a_body_that_stops_arriving_is_a_408_error_frame(gateway, fake_anthropic):
    client = await gateway(server={"body_timeout_s": 0.2})
    reader, writer = await asyncio.open_connection(client.server.host, client.server.port)
    writer.write(
        b"POST /ai/stream/chat HTTP/1.1\r\nHost: gw\r\nContent-Type: application/json\r\n"
        b"Content-Length: 100\r\n\r\n"
        b'{"messages": [{"role": "user", '  # and then nothing more
    )
    await writer.drain()

    async with asyncio.timeout(30):  # only a guard against a hung test
        head = (await reader.readuntil(b"\r\n\r\n")).decode()
        length = int(head.lower().split("content-length:")[1].split("\r\n")[0])
        body = await reader.readexactly(length)
    writer.close()

    assert head.startswith("HTTP/1.1 408 ")
    assert "Content-Type: text/event-stream; charset=utf-8" in head
    events, _ = parse_sse(body)
    assert [(e["type"], e["code"]) for e in events] == [("error", "request_timeout")]
    assert "0.2 s" in events[0]["error"]
    assert fake_anthropic.requests == 0
    limiter = client.server.app[STATE].current.shared.limiter
    assert not limiter._in_flight and not limiter._active
