"""Slow and silent clients against a real `ai-gateway serve` process: a request's headers
must arrive within `server.header_timeout_s`, at most `server.max_connections` stay
open, and neither limit cuts a stream that is being answered.

No test waits for a guessed time: each waits until the gateway closes the socket (or a
count reaches a value), and `GUARD_S` only stops a test that would otherwise hang.
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import aiohttp
import yaml

from tests.process import GatewayProcess, free_port, running_gateway
from tests.sse_client import read_stream

GUARD_S = 20.0
HEADER_TIMEOUT_S = 0.5


def write_config(tmp_path: Path, **server: Any) -> Path:
    config = {
        "server": {"date_context": {"enabled": False}, **server},
        "providers": {"demo": {"type": "demo", "chunk_delay_ms": 100, "words": 40}},
        "models": {"talk": {"provider": "demo", "model": "demo"}},
        "chains": {"default": {"targets": ["talk"]}},
    }
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


async def connect(gateway: GatewayProcess) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    host, port = gateway.url.removeprefix("http://").split(":")
    return await asyncio.open_connection(host, int(port))


async def until_closed_by_gateway(reader: asyncio.StreamReader) -> bytes:
    """Everything the gateway sends before it closes the connection."""
    received = b""
    try:
        async with asyncio.timeout(GUARD_S):
            while chunk := await reader.read(65536):
                received += chunk
    except ConnectionResetError:
        pass
    except TimeoutError:
        raise AssertionError(f"the gateway kept the connection open for {GUARD_S:.0f} s") from None
    return received


async def test_a_silent_connection_is_closed_after_the_header_timeout(tmp_path):
    config = write_config(tmp_path, header_timeout_s=HEADER_TIMEOUT_S)
    async with running_gateway(config) as gateway:
        reader, writer = await connect(gateway)
        try:
            assert await until_closed_by_gateway(reader) == b""
        finally:
            writer.close()


async def test_headers_trickled_a_byte_at_a_time_are_cut_at_the_header_timeout(tmp_path):
    config = write_config(tmp_path, header_timeout_s=HEADER_TIMEOUT_S)
    async with running_gateway(config) as gateway:
        reader, writer = await connect(gateway)

        async def trickle() -> None:
            writer.write(b"POST /ai/stream/chat HTTP/1.1\r\nHost: gw\r\nX-Slow: ")
            try:
                while True:  # never ends the header: only the gateway can end this
                    writer.write(b"a")
                    await writer.drain()
                    await asyncio.sleep(0.02)
            except ConnectionError:
                pass

        trickling = asyncio.create_task(trickle())
        try:
            assert await until_closed_by_gateway(reader) == b""
        finally:
            trickling.cancel()
            writer.close()


async def test_an_idle_keepalive_connection_is_closed_after_the_header_timeout(tmp_path):
    config = write_config(tmp_path, header_timeout_s=HEADER_TIMEOUT_S)
    async with running_gateway(config) as gateway:
        reader, writer = await connect(gateway)
        try:
            writer.write(b"GET /livez HTTP/1.1\r\nHost: gw\r\n\r\n")
            head = await reader.readuntil(b"\r\n\r\n")
            assert head.startswith(b"HTTP/1.1 200")
            length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
            await reader.readexactly(length)
            assert await until_closed_by_gateway(reader) == b""
        finally:
            writer.close()


async def test_a_stream_lasting_many_header_timeouts_is_not_cut(tmp_path):
    config = write_config(tmp_path, header_timeout_s=HEADER_TIMEOUT_S)
    async with running_gateway(config) as gateway, aiohttp.ClientSession() as session:
        started = time.monotonic()
        body = {"prompt": "a long story", "max_tokens": 100}
        async with session.post(f"{gateway.url}/ai/stream/generate", json=body) as response:
            result = await read_stream(response)
        lasted = time.monotonic() - started
    assert lasted > 3 * HEADER_TIMEOUT_S  # 40 chunks 100 ms apart: the test means something
    result.assert_one_terminal()
    assert result.last["type"] == "done"


async def test_a_connection_over_the_cap_gets_a_503_and_open_streams_go_on(tmp_path):
    cap = 3
    metrics_port = free_port()
    config = write_config(tmp_path, header_timeout_s=60, max_connections=cap)
    config.write_text(config.read_text() + yaml.safe_dump({"metrics": {"port": metrics_port}}))
    metrics_url = f"http://127.0.0.1:{metrics_port}/metrics"
    async with running_gateway(config) as gateway, aiohttp.ClientSession() as session:

        async def metric(name: str) -> float | None:
            async with session.get(metrics_url) as response:
                for line in (await response.text()).splitlines():
                    if line.startswith(name + " "):
                        return float(line.split()[1])
            return None

        async def until_open(count: int) -> None:
            async with asyncio.timeout(GUARD_S):
                while True:
                    if await metric("aigw_open_connections") == count:
                        return
                    await asyncio.sleep(0.01)

        await until_open(0)  # the start-up health check has gone
        body = {"prompt": "a long story", "max_tokens": 100}
        async with session.post(f"{gateway.url}/ai/stream/generate", json=body) as streaming:
            assert streaming.status == 200
            await streaming.content.readuntil(b'"type":"content"')
            idle = [await connect(gateway) for _ in range(cap - 1)]
            await until_open(cap)

            reader, writer = await connect(gateway)
            refused = await until_closed_by_gateway(reader)
            writer.close()
            head, _, answer = refused.partition(b"\r\n\r\n")
            assert head.startswith(b"HTTP/1.1 503")
            assert json.loads(answer)["code"] == "too_many_connections"

            _, first_idle = idle.pop()
            first_idle.close()
            await until_open(cap - 1)
            reader, writer = await connect(gateway)  # a freed place is taken again
            writer.write(b"GET /livez HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n")
            assert (await until_closed_by_gateway(reader)).startswith(b"HTTP/1.1 200")
            writer.close()

            rest = await streaming.content.read()
        last = json.loads(rest.rstrip(b"\n").rsplit(b"\n\n", 1)[-1].removeprefix(b"data: "))
        assert last["type"] == "done"
        assert await metric("aigw_connections_refused_total") == 1
        for _, writer in idle:
            writer.close()
