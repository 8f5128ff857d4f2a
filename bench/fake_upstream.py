"""A fake Anthropic Messages streaming server built for minimal CPU, for benchmarks.

Raw asyncio protocols on uvloop (no web framework): it reads one HTTP/1.1 request at a
time per connection (keep-alive), then answers with a chunked `text/event-stream` whose
frames are encoded once at start-up: message_start, content_block_start, N text deltas
`--gap-ms` apart after `--ttft-ms`, then content_block_stop, message_delta (usage) and
message_stop.  With `--hold`, every answer waits before its first text delta until the
fake receives SIGUSR1, however long opening all the streams takes.

    python -m bench.fake_upstream --port 9100 --chunks 50 --ttft-ms 0 --gap-ms 0
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
from typing import cast

import uvloop

from bench.http1 import RequestReader


def _chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


def _event(name: str, data: dict[str, object]) -> bytes:
    return _chunk(f"event: {name}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n".encode())


class Frames:
    def __init__(self, chunks: int) -> None:
        self.head = (
            b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream; charset=utf-8\r\n"
            b"Transfer-Encoding: chunked\r\nCache-Control: no-cache\r\n\r\n"
        )
        self.start = _event(
            "message_start",
            {
                "type": "message_start",
                "message": {
                    "id": "msg_bench",
                    "type": "message",
                    "role": "assistant",
                    "content": [],
                    "model": "claude-sonnet-4-5-20250929",
                    "stop_reason": None,
                    "stop_sequence": None,
                    "usage": {"input_tokens": 25, "output_tokens": 1},
                },
            },
        ) + _event(
            "content_block_start",
            {
                "type": "content_block_start",
                "index": 0,
                "content_block": {"type": "text", "text": ""},
            },
        )
        self.deltas = [
            _event(
                "content_block_delta",
                {
                    "type": "content_block_delta",
                    "index": 0,
                    "delta": {"type": "text_delta", "text": f"word{i} "},
                },
            )
            for i in range(chunks)
        ]
        self.end = (
            _event("content_block_stop", {"type": "content_block_stop", "index": 0})
            + _event(
                "message_delta",
                {
                    "type": "message_delta",
                    "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                    "usage": {"output_tokens": chunks},
                },
            )
            + _event("message_stop", {"type": "message_stop"})
            + b"0\r\n\r\n"
        )


class Gate:
    """Where held answers wait for their first text delta until `open` (SIGUSR1)."""

    def __init__(self) -> None:
        self._opened = asyncio.Event()

    def open(self) -> None:
        self._opened.set()
        self._opened = asyncio.Event()  # answers that start later wait for the next signal

    async def wait(self) -> None:
        await self._opened.wait()


class Upstream(asyncio.Protocol):
    def __init__(self, frames: Frames, ttft: float, gap: float, gate: Gate | None = None) -> None:
        self._frames, self._ttft, self._gap, self._gate = frames, ttft, gap, gate
        self._requests = RequestReader()
        self._transport: asyncio.Transport | None = None
        self._task: asyncio.Task[None] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass

    def connection_lost(self, exc: Exception | None) -> None:
        if self._task is not None:
            self._task.cancel()
        self._transport = None

    def data_received(self, data: bytes) -> None:
        if self._requests.feed(data):
            self._task = asyncio.get_running_loop().create_task(self._answer())

    async def _answer(self) -> None:
        frames, transport = self._frames, self._transport
        if transport is None:
            return
        transport.write(frames.head + frames.start)
        if self._gate is not None:
            await self._gate.wait()
        if self._ttft:
            await asyncio.sleep(self._ttft)
        for delta in frames.deltas:
            if self._transport is None:
                return
            transport.write(delta)
            if self._gap:
                await asyncio.sleep(self._gap)
        if self._transport is not None:
            transport.write(frames.end)


async def serve(port: int, chunks: int, ttft_ms: float, gap_ms: float, hold: bool) -> None:
    frames = Frames(chunks)
    loop = asyncio.get_running_loop()
    gate = Gate() if hold else None
    if gate is not None:
        loop.add_signal_handler(signal.SIGUSR1, gate.open)
    server = await loop.create_server(
        lambda: Upstream(frames, ttft_ms / 1000, gap_ms / 1000, gate),
        "127.0.0.1",
        port,
        backlog=8192,
    )
    async with server:
        await server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--chunks", type=int, default=50)
    parser.add_argument("--ttft-ms", type=float, default=0)
    parser.add_argument("--gap-ms", type=float, default=0)
    parser.add_argument("--hold", action="store_true", help="first text only on SIGUSR1")
    args = parser.parse_args()
    uvloop.run(serve(args.port, args.chunks, args.ttft_ms, args.gap_ms, args.hold))


if __name__ == "__main__":
    main()
