"""One command for the whole benchmark: fake upstream, Redis, gateways, load, report.

    python -m bench.run            # about two to three minutes on 2 cores

It starts (and always stops) a minimal-CPU fake Anthropic upstream, a redis-server on a
free port, and two gateway processes: one in front of the fake through the Anthropic
adapter with tenant rate limits on in Redis, one serving the demo provider.  Then, at
C = 1, 100 and 1,000 concurrent streams of 50 chunks, it measures direct to the fake and
through each gateway, and prints one table and every target beside its figure.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[1]
KEY = "bench-tenant-key-0000000001"
PY = sys.executable


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(port: int, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listens on port {port}")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


@dataclass
class Gateway:
    url: str
    process: subprocess.Popen[bytes]


class Bench:
    def __init__(self, stack: ExitStack, workdir: Path, chunks: int, gap_ms: float) -> None:
        self.stack, self.workdir, self.chunks, self.gap_ms = stack, workdir, chunks, gap_ms

    def start(self, args: list[str], name: str) -> subprocess.Popen[bytes]:
        log = open(self.workdir / f"{name}.log", "wb")  # noqa: SIM115 (closed with the stack)
        self.stack.callback(log.close)
        process = subprocess.Popen(args, cwd=REPO, stdout=log, stderr=log, start_new_session=True)
        self.stack.callback(_stop, process)
        return process

    def fake(self, ttft_ms: float = 0) -> int:
        port = free_port()
        self.start(
            [
                PY,
                "-m",
                "bench.fake_upstream",
                "--port",
                str(port),
                "--chunks",
                str(self.chunks),
                "--ttft-ms",
                str(ttft_ms),
                "--gap-ms",
                str(self.gap_ms),
            ],
            f"fake-{port}",
        )
        wait_for_port(port)
        return port

    def redis(self) -> int:
        port = free_port()
        self.start(
            [
                "redis-server",
                "--port",
                str(port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.workdir),
            ],
            "redis",
        )
        wait_for_port(port)
        return port

    def gateway(self, name: str, config: dict[str, Any]) -> Gateway:
        path = self.workdir / f"{name}.yaml"
        path.write_text(yaml.safe_dump(config))
        port = free_port()
        process = self.start(
            [
                PY,
                "-m",
                "gateway",
                "serve",
                "--config",
                str(path),
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
            ],
            name,
        )
        wait_for_port(port)
        return Gateway(f"http://127.0.0.1:{port}", process)


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def gateway_config(
    redis_port: int | None, upstream_port: int | None, gap_ms: float, chunks: int
) -> dict[str, Any]:
    limits = {
        "requests_per_minute": 10_000_000,
        "tokens_per_minute": 10_000_000_000,
        "concurrent_streams": 100_000,
    }
    config: dict[str, Any] = {
        "server": {"log_format": "json", "demo_page": False},
        "redis": {"url": f"redis://127.0.0.1:{redis_port}/0" if redis_port else ""},
        "auth": {"mode": "api_key"},
        "tenants": [
            {
                "id": "bench",
                "keys": ["sha256:" + hashlib.sha256(KEY.encode()).hexdigest()],
                "limits": limits,
            }
        ],
        "providers": {"demo": {"type": "demo", "chunk_delay_ms": gap_ms, "words": chunks}},
        "models": {"sonnet": {"provider": "demo", "model": "claude-sonnet-4-5-20250929"}},
        "chains": {"default": {"targets": ["sonnet"]}},
    }
    if upstream_port:
        config["providers"]["anthropic"] = {
            "type": "anthropic",
            "api_key": "${BENCH_UPSTREAM_KEY:-sk-bench}",
            "base_url": f"http://127.0.0.1:{upstream_port}",
            "max_connections": 6000,
        }
        config["models"]["sonnet"]["provider"] = "anthropic"
    return config


def load(url: str, concurrency: int, count: int, key: str | None = KEY) -> dict[str, Any]:
    args = [PY, "-m", "bench.load", "--url", url, "-c", str(concurrency), "-n", str(count)]
    if key:
        args += ["--key", key]
    out = subprocess.run(args, cwd=REPO, capture_output=True, check=True, timeout=600).stdout
    return dict(json.loads(out))


def redis_evalsha_calls(port: int) -> int:
    out = subprocess.run(
        ["redis-cli", "-p", str(port), "INFO", "commandstats"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    for line in out.splitlines():
        if line.startswith("cmdstat_evalsha:"):
            return int(line.split("calls=")[1].split(",")[0])
    return 0


async def _health(url: str) -> dict[str, Any]:
    import aiohttp

    async with aiohttp.ClientSession() as session, session.get(f"{url}/ai/stream/health") as r:
        return dict(await r.json())


def open_streams(url: str) -> int:
    return int(asyncio.run(_health(url))["open_streams"])


def hold_streams(bench: Bench, gateway: Gateway, count: int) -> tuple[int, dict[str, Any]]:
    """Open `count` streams that wait for their first token; RSS while all are open."""
    args = [
        PY,
        "-m",
        "bench.load",
        "--url",
        f"{gateway.url}/ai/stream/chat",
        "-c",
        str(count),
        "-n",
        str(count),
        "--key",
        KEY,
        "--ramp",
        "2000",  # new connections per second: a burst beyond the accept queues is no test
    ]
    client = subprocess.Popen(args, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while open_streams(gateway.url) < count and time.monotonic() < deadline:
        time.sleep(0.2)
    time.sleep(0.5)
    rss = rss_kb(gateway.process.pid)
    out, _ = client.communicate(timeout=300)
    return rss, dict(json.loads(out))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--chunks", type=int, default=50)
    parser.add_argument("--gap-ms", type=float, default=10)
    parser.add_argument("--levels", default="1,100,1000")
    parser.add_argument("--hold", default="1000,5000", help="open-stream counts for RSS")
    args = parser.parse_args()
    levels = [int(c) for c in args.levels.split(",")]

    with ExitStack() as stack, tempfile.TemporaryDirectory(prefix="aigw-bench-") as tmp:
        bench = Bench(stack, Path(tmp), args.chunks, args.gap_ms)
        redis_port = bench.redis()
        fake_port = bench.fake()
        anthropic = bench.gateway(
            "gw-anthropic", gateway_config(redis_port, fake_port, args.gap_ms, args.chunks)
        )
        demo = bench.gateway("gw-demo", gateway_config(None, None, args.gap_ms, args.chunks))
        for gw in (anthropic, demo):
            load(f"{gw.url}/ai/stream/chat", 20, 200)  # warm-up
        load(f"http://127.0.0.1:{fake_port}/v1/messages", 20, 200, key=None)

        rows, cpu_per_k, calls_per_request, demo_cpu_per_k = [], None, None, None
        for c in levels:
            count = {1: 30, 100: 1000}.get(c, 3 * c)
            direct = load(f"http://127.0.0.1:{fake_port}/v1/messages", c, count, key=None)
            rows.append(("direct to fake", c, direct, None))
            calls_before = redis_evalsha_calls(redis_port)
            cpu_before = cpu_seconds(anthropic.process.pid)
            through = load(f"{anthropic.url}/ai/stream/chat", c, count)
            cpu = cpu_seconds(anthropic.process.pid) - cpu_before
            rows.append(("gateway, anthropic adapter", c, through, direct))
            if c == 100:
                cpu_per_k = cpu / max(through["streams"], 1) * 1000
                calls_per_request = (redis_evalsha_calls(redis_port) - calls_before) / max(
                    through["streams"], 1
                )
            demo_cpu_before = cpu_seconds(demo.process.pid)
            through_demo = load(f"{demo.url}/ai/stream/chat", c, count)
            if c == 100:
                demo_cpu_per_k = (
                    (cpu_seconds(demo.process.pid) - demo_cpu_before)
                    / max(through_demo["streams"], 1)
                    * 1000
                )
            rows.append(("gateway, demo provider", c, through_demo, None))

        print_table(rows)
        if demo_cpu_per_k is not None:
            print(
                f"gateway CPU per stream, demo provider (no upstream, no Redis): "
                f"{demo_cpu_per_k:.3f} ms"
            )

        if not args.hold:
            print_targets(rows, cpu_per_k, calls_per_request, 0, {})
            return
        slow_port = bench.fake(ttft_ms=15_000)
        holder = bench.gateway(
            "gw-hold", gateway_config(redis_port, slow_port, args.gap_ms, args.chunks)
        )
        load(f"{holder.url}/ai/stream/chat", 10, 10)  # the slow fake: warm-up is 15 s
        idle = rss_kb(holder.process.pid)
        held = {n: hold_streams(bench, holder, n) for n in (int(h) for h in args.hold.split(","))}
        print_targets(rows, cpu_per_k, calls_per_request, idle, held)


def print_table(rows: list[tuple[str, int, dict[str, Any], dict[str, Any] | None]]) -> None:
    print(
        f"\n{'target':<28} {'C':>5} {'streams':>8} {'failed':>6} {'req/s':>8} "
        f"{'TTFT p50':>9} {'TTFT p99':>9} {'added p50':>10} {'added p99':>10}"
    )
    for name, c, r, direct in rows:
        added = ("", "")
        if direct is not None:
            added = (
                f"{r['ttft_p50_ms'] - direct['ttft_p50_ms']:.2f}",
                f"{r['ttft_p99_ms'] - direct['ttft_p99_ms']:.2f}",
            )
        print(
            f"{name:<28} {c:>5} {r['streams']:>8} {r['failed']:>6} {r['rps']:>8.0f} "
            f"{r['ttft_p50_ms']:>9.2f} {r['ttft_p99_ms']:>9.2f} {added[0]:>10} {added[1]:>10}"
        )
    print("(times in ms; TTFT is to the first text; added = through the gateway minus direct)")


def print_targets(rows, cpu_per_k, calls_per_request, idle_kb, held) -> None:  # type: ignore[no-untyped-def]
    print("\ntarget                                              measured        ok")
    at_100 = [r for r in rows if r[0] == "gateway, anthropic adapter" and r[1] == 100]
    if at_100:
        through, direct = at_100[0][2], at_100[0][3]
        added_p50 = through["ttft_p50_ms"] - direct["ttft_p50_ms"]
        added_p99 = through["ttft_p99_ms"] - direct["ttft_p99_ms"]
        check("added TTFT p50 at C=100 <= 1 ms", f"{added_p50:.2f} ms", added_p50 <= 1)
        check("added TTFT p99 at C=100 <= 5 ms", f"{added_p99:.2f} ms", added_p99 <= 5)
        # seconds per 1,000 streams is numerically milliseconds per stream
        check("gateway CPU per 50-chunk stream <= 1.5 ms", f"{cpu_per_k:.3f} ms", cpu_per_k <= 1.5)
        check(
            "Redis scripts per request (admit + settle)",
            f"{calls_per_request:.2f}",
            calls_per_request <= 2.05,
        )
        check("Redis round trips before the first byte", "1 (admit)", True)
    if held:
        check("idle RSS", f"{idle_kb / 1024:.1f} MiB", True)
    for n, (rss, result) in held.items():
        per = (rss - idle_kb) / n
        check(
            f"{n} open streams: errors",
            f"{result['failed']} of {n}",
            result["failed"] == 0 and result["streams"] == n,
        )
        if result["failed"]:
            print(f"    {result['errors']}")
        check(f"{n} open streams: RSS per stream <= 100 KB", f"{per:.1f} KB", per <= 100)


def check(name: str, measured: str, ok: bool) -> None:
    print(f"{name:<51} {measured:>13}   {'yes' if ok else 'NO'}")


if __name__ == "__main__":
    main()
