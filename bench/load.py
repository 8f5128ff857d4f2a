"""Load generator: hold C concurrent streams until N have finished; print JSON figures.

Time to first token (TTFT) is measured to the first text of the answer: a
`content_block_delta` from the fake upstream, or a `content` event from the gateway, so
that direct and gateway runs compare like with like.

    python -m bench.load --url http://127.0.0.1:8080/ai/stream/chat -c 100 -n 2000
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time

import aiohttp

MARKERS = (b"content_block_delta", b'"type":"content"')
BODY = {"messages": [{"role": "user", "content": "Benchmark, please answer."}], "max_tokens": 256}


async def one_stream(
    session: aiohttp.ClientSession, url: str, headers: dict[str, str]
) -> tuple[float, float, str]:
    """(time to first text, total time, outcome: "ok", "http <status>" or an error code)."""
    started = time.perf_counter()
    ttft = None
    outcome = "no final event"
    async with session.post(url, json=BODY, headers=headers) as response:
        async for chunk in response.content.iter_any():
            if ttft is None and any(m in chunk for m in MARKERS):
                ttft = time.perf_counter() - started
            if b"message_stop" in chunk or b'"type":"done"' in chunk:
                outcome = "ok" if response.status == 200 else f"http {response.status}"
            elif b'"type":"error"' in chunk:
                code = chunk.split(b'"code":"', 1)[-1].split(b'"', 1)[0].decode(errors="replace")
                outcome = f"error event {code}"
    total = time.perf_counter() - started
    return (ttft if ttft is not None else total), total, outcome


async def run(
    url: str, concurrency: int, count: int, key: str | None, ramp_per_s: float
) -> dict[str, object]:
    headers = {"Authorization": f"Bearer {key}", "x-api-key": key} if key else {}
    connector = aiohttp.TCPConnector(limit=0, force_close=False)
    timeout = aiohttp.ClientTimeout(total=600)
    results: list[tuple[float, float, str]] = []
    errors: dict[str, int] = {}
    remaining = count

    async def worker(index: int) -> None:
        nonlocal remaining, errors
        if ramp_per_s:
            await asyncio.sleep(index / ramp_per_s)
        while remaining > 0:
            remaining -= 1
            try:
                result = await one_stream(session, url, headers)
            except (TimeoutError, aiohttp.ClientError) as exc:
                errors[type(exc).__name__] = errors.get(type(exc).__name__, 0) + 1
                continue
            results.append(result)
            if result[2] != "ok":
                errors[result[2]] = errors.get(result[2], 0) + 1

    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
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
    print(json.dumps(asyncio.run(run(args.url, args.concurrency, args.count, args.key, args.ramp))))


if __name__ == "__main__":
    main()
