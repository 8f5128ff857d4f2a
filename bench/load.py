"""Load generator: hold C concurrent streams until N have finished; print JSON figures.

Time to first token (TTFT) is measured to the first text of the answer: a
`content_block_delta` from the fake upstream, or a `content` event from the gateway, so
that direct and gateway runs compare like with like.

Built for minimal CPU, like the fake upstream, because it shares the machine with what it
measures: raw asyncio protocols on uvloop, one keep-alive HTTP/1.1 connection per worker,
and no parsing beyond finding the markers and the end of each response.

    python -m bench.load --url http://127.0.0.1:8080/ai/stream/chat -c 100 -n 2000
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import uvloop

FIRST_TEXT = (b"content_block_delta", b'"type":"content"')
FINAL = (b"message_stop", b'"type":"done"')
ERROR = b'"type":"error"'
BODY = json.dumps(
    {"messages": [{"role": "user", "content": "Benchmark, please answer."}], "max_tokens": 256}
).encode()
TAIL = 32  # bytes kept from the previous read, so that a marker cut in two is still found


@dataclass
class Response:
    """What one response showed, filled in as its bytes arrive."""

    started: float
    done: asyncio.Future[None]
    ttft: float | None = None
    status: int = 0
    outcome: str = "no final event"
    head: bytes = b""
    seen: bytes = b""
    length: int | None = None  # Content-Length, or None for a chunked body
    body_read: int = 0
    errors: list[str] = field(default_factory=list)


class Client(asyncio.Protocol):
    """One keep-alive connection that sends a request and watches its response."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None  # set by the caller of connect
        self.response: Response | None = None
        self.closed = False

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.response is not None and not self.response.done.done():
            self.response.done.set_exception(ConnectionResetError("connection lost"))

    def send(self, request: bytes) -> Response:
        assert self.transport is not None
        loop = asyncio.get_running_loop()
        self.response = Response(time.perf_counter(), loop.create_future())
        self.transport.write(request)
        return self.response

    def data_received(self, data: bytes) -> None:
        r = self.response
        if r is None:
            return
        if not r.status:
            r.head += data
            end = r.head.find(b"\r\n\r\n")
            if end < 0:
                return
            head, data = r.head[:end].lower(), r.head[end + 4 :]
            r.status = int(head[9:12])
            if b"content-length:" in head:
                r.length = int(head.split(b"content-length:")[1].split(b"\r\n")[0])
        window = r.seen + data
        if r.ttft is None and any(m in window for m in FIRST_TEXT):
            r.ttft = time.perf_counter() - r.started
        if any(m in window for m in FINAL):
            r.outcome = "ok" if r.status == 200 else f"http {r.status}"
        elif ERROR in window:
            code = window.split(b'"code":"', 1)[-1].split(b'"', 1)[0]
            r.outcome = f"error event {code.decode(errors='replace')}"
        r.seen = window[-TAIL:]
        r.body_read += len(data)
        finished = (
            r.body_read >= r.length if r.length is not None else window.endswith(b"\r\n0\r\n\r\n")
        )
        if finished and not r.done.done():
            r.done.set_result(None)


def request_bytes(url: str, key: str | None) -> tuple[str, int, bytes]:
    parts = urlsplit(url)
    auth = f"Authorization: Bearer {key}\r\nx-api-key: {key}\r\n" if key else ""
    head = (
        f"POST {parts.path} HTTP/1.1\r\nHost: {parts.netloc}\r\n"
        f"Content-Type: application/json\r\nAccept: text/event-stream\r\n{auth}"
        f"Content-Length: {len(BODY)}\r\n\r\n"
    )
    return parts.hostname or "127.0.0.1", parts.port or 80, head.encode() + BODY


async def run(
    url: str, concurrency: int, count: int, key: str | None, ramp_per_s: float
) -> dict[str, object]:
    loop = asyncio.get_running_loop()
    host, port, request = request_bytes(url, key)
    results: list[tuple[float, float, str]] = []
    errors: dict[str, int] = {}
    remaining = count

    def note(kind: str) -> None:
        errors[kind] = errors.get(kind, 0) + 1

    async def worker(index: int) -> None:
        nonlocal remaining
        if ramp_per_s:
            await asyncio.sleep(index / ramp_per_s)
        client: Client | None = None
        while remaining > 0:
            remaining -= 1
            try:
                if client is None or client.closed:
                    transport, client = await loop.create_connection(Client, host, port)
                    client.transport = transport
                response = client.send(request)
                await asyncio.wait_for(response.done, 600)
            except (OSError, TimeoutError) as exc:
                note(type(exc).__name__)
                client = None
                continue
            total = time.perf_counter() - response.started
            results.append((response.ttft or total, total, response.outcome))
            if response.outcome != "ok":
                note(response.outcome)
        if client is not None and client.transport is not None:
            client.transport.close()

    started = time.perf_counter()
    await asyncio.gather(*(worker(i) for i in range(concurrency)))
    elapsed = time.perf_counter() - started
    ttfts = sorted(r[0] for r in results)
    totals = sorted(r[1] for r in results)
    return {
        "streams": len(results),
        "failed": sum(errors.values()),
        "errors": errors,
        "elapsed_s": elapsed,
        "rps": len(results) / elapsed if elapsed else 0,
        "ttft_p50_ms": _pct(ttfts, 50) * 1000,
        "ttft_p99_ms": _pct(ttfts, 99) * 1000,
        "total_p50_ms": _pct(totals, 50) * 1000,
        "total_p99_ms": _pct(totals, 99) * 1000,
    }


def _pct(values: list[float], p: float) -> float:
    if not values:
        return 0.0
    return values[min(len(values) - 1, round(p / 100 * (len(values) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--url", required=True)
    parser.add_argument("-c", "--concurrency", type=int, default=1)
    parser.add_argument("-n", "--count", type=int, default=100)
    parser.add_argument("--key")
    parser.add_argument(
        "--ramp", type=float, default=0, help="open at most this many streams per second"
    )
    args = parser.parse_args()
    figures = uvloop.run(run(args.url, args.concurrency, args.count, args.key, args.ramp))
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
