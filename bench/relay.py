"""The least a Python proxy can do per stream, to measure this machine's floor.

A byte relay in the same runtime as the gateway (raw asyncio protocols on uvloop): for each
request it reads, it sends one fixed request to the fake upstream over a keep-alive
connection of its own and copies every byte of the answer back, unparsed. It does no
authentication, no rate limiting, no parsing and no re-encoding, so its CPU per stream and
its added time to first token are what any Python proxy pays on this machine for one
upstream read and one client write per chunk. The gateway's own work is what it spends
above that.

    python -m bench.relay --port 9200 --upstream http://127.0.0.1:9100/v1/messages
"""

from __future__ import annotations

import argparse
import asyncio
import json
from typing import cast
from urllib.parse import urlsplit

import uvloop

from bench.http1 import RequestReader

BODY = json.dumps(
    {
        "model": "claude-sonnet-4-5-20250929",
        "messages": [{"role": "user", "content": "Benchmark, please answer."}],
        "max_tokens": 256,
        "stream": True,
    }
).encode()
LAST_CHUNK = b"\r\n0\r\n\r\n"


def upstream_request(url: str) -> bytes:
    parts = urlsplit(url)
    return (
        f"POST {parts.path} HTTP/1.1\r\nHost: {parts.netloc}\r\n"
        f"Content-Type: application/json\r\nx-api-key: sk-bench\r\n"
        f"anthropic-version: 2023-06-01\r\nContent-Length: {len(BODY)}\r\n\r\n"
    ).encode() + BODY


class Upstream(asyncio.Protocol):
    """One keep-alive connection to the fake; forwards each answer to its current client."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.client: asyncio.Transport | None = None
        self.on_end: asyncio.Future[None] | None = None
        self._tail = b""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        if self.on_end is not None and not self.on_end.done():
            self.on_end.set_exception(ConnectionResetError("upstream closed"))

    def data_received(self, data: bytes) -> None:
        if self.client is not None and not self.client.is_closing():
            self.client.write(data)
        window = self._tail + data
        self._tail = window[-len(LAST_CHUNK) :]
        if window.endswith(LAST_CHUNK) and self.on_end is not None:
            self._tail = b""
            self.on_end.set_result(None)


class Relay(asyncio.Protocol):
    """One client connection: each complete request starts one relayed answer."""

    def __init__(self, pool: list[Upstream], host: str, port: int, request: bytes) -> None:
        self._pool, self._host, self._port, self._request = pool, host, port, request
        self._requests = RequestReader()
        self._transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)

    def connection_lost(self, exc: Exception | None) -> None:
        self._transport = None

    def data_received(self, data: bytes) -> None:
        if self._requests.feed(data):
            asyncio.get_running_loop().create_task(self._relay())

    async def _relay(self) -> None:
        loop = asyncio.get_running_loop()
        upstream = self._pool.pop() if self._pool else None
        try:
            if upstream is None or upstream.transport is None:
                _, upstream = await loop.create_connection(Upstream, self._host, self._port)
            assert upstream.transport is not None
            upstream.client, upstream.on_end = self._transport, loop.create_future()
            upstream.transport.write(self._request)
            await upstream.on_end
        except OSError:  # the load generator counts the closed connection as a failure
            if self._transport is not None:
                self._transport.close()
            return
        upstream.client = upstream.on_end = None
        self._pool.append(upstream)


async def start(port: int, upstream_url: str) -> asyncio.Server:
    """A relay listening on 127.0.0.1:`port` (0: any free port) in front of `upstream_url`."""
    parts = urlsplit(upstream_url)
    request = upstream_request(upstream_url)
    pool: list[Upstream] = []
    return await asyncio.get_running_loop().create_server(
        lambda: Relay(pool, parts.hostname or "127.0.0.1", parts.port or 80, request),
        "127.0.0.1",
        port,
        backlog=8192,
    )


async def serve(port: int, upstream_url: str) -> None:
    async with await start(port, upstream_url) as server:
        await server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--upstream", required=True, help="the fake's /v1/messages URL")
    args = parser.parse_args()
    uvloop.run(serve(args.port, args.upstream))


if __name__ == "__main__":
    main()
