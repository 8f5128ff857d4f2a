"""The benchmark's own parts: a fake that the official SDK reads as a real Anthropic
stream, and a load generator whose counts are right, since every figure rests on them."""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anthropic
import pytest
import yaml

from bench.aiohttp_relay import app as aiohttp_relay_app
from bench.compare import worktree
from bench.fake_upstream import Frames, Gate, Upstream
from bench.load import run
from bench.relay import start as start_relay
from bench.run import KEY, gateway_config
from gateway.app import create_app
from gateway.config import parse_config

CHUNKS = 7


@pytest.fixture
async def fake_url() -> AsyncIterator[str]:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: Upstream(Frames(CHUNKS), ttft=0, gap=0.001), "127.0.0.1", 0
    )
    port = server.sockets[0].getsockname()[1]
    yield f"http://127.0.0.1:{port}"
    server.close()
    await server.wait_closed()


async def read_with_the_sdk(base_url: str) -> tuple[str, anthropic.types.Message]:
    """The text and final message of one streamed answer, as the official SDK reads them."""
    client = anthropic.AsyncAnthropic(api_key="sk-bench", base_url=base_url, max_retries=0)
    try:
        async with client.messages.stream(
            model="claude-sonnet-4-5-20250929",
            max_tokens=64,
            messages=[{"role": "user", "content": "hi"}],
        ) as stream:
            text = "".join([t async for t in stream.text_stream])
            return text, await stream.get_final_message()
    finally:
        await client.close()


async def test_the_sdk_reads_the_fake_as_an_anthropic_stream(fake_url: str) -> None:
    text, message = await read_with_the_sdk(fake_url)

    assert text == "".join(f"word{i} " for i in range(CHUNKS))
    assert message.stop_reason == "end_turn"
    assert (message.usage.input_tokens, message.usage.output_tokens) == (25, CHUNKS)


async def test_load_generator_counts_every_stream_direct_and_through_a_gateway(
    fake_url: str, aiohttp_client: Any
) -> None:
    config = gateway_config(None, None, gap_ms=0, chunks=CHUNKS)
    gateway = await aiohttp_client(create_app(parse_config(yaml.safe_dump(config), environ={})))
    gateway_url = f"http://{gateway.host}:{gateway.port}/ai/stream/chat"

    direct = await run(f"{fake_url}/v1/messages", concurrency=3, count=10, key=None, ramp_per_s=0)
    through = await run(gateway_url, concurrency=3, count=10, key=KEY, ramp_per_s=100)

    for figures in (direct, through):
        assert (figures["streams"], figures["failed"], figures["errors"]) == (10, 0, {})
        assert 0 < figures["ttft_p50_ms"] <= figures["total_p50_ms"]


async def test_load_generator_counts_refused_streams_as_failed(aiohttp_client: Any) -> None:
    config = gateway_config(None, None, gap_ms=0, chunks=CHUNKS)
    gateway = await aiohttp_client(create_app(parse_config(yaml.safe_dump(config), environ={})))
    url = f"http://{gateway.host}:{gateway.port}/ai/stream/chat"

    figures = await run(url, concurrency=2, count=4, key="not-a-tenant-key", ramp_per_s=0)

    assert (figures["streams"], figures["failed"]) == (4, 4)
    assert figures["errors"] == {"error event unauthorized": 4}


async def test_the_byte_relay_passes_the_fakes_stream_through_unchanged(fake_url: str) -> None:
    relay = await start_relay(0, f"{fake_url}/v1/messages")
    relay_url = f"http://127.0.0.1:{relay.sockets[0].getsockname()[1]}"
    try:
        text, _ = await read_with_the_sdk(relay_url)
        figures = await run(f"{relay_url}/any", concurrency=3, count=10, key=None, ramp_per_s=0)
    finally:
        relay.close()
        await relay.wait_closed()

    assert text == "".join(f"word{i} " for i in range(CHUNKS))
    assert (figures["streams"], figures["failed"], figures["errors"]) == (10, 0, {})


async def test_the_relay_on_aiohttp_passes_the_fakes_stream_through_unchanged(
    fake_url: str, aiohttp_client: Any
) -> None:
    relay = await aiohttp_client(aiohttp_relay_app(f"{fake_url}/v1/messages"))
    relay_url = f"http://{relay.host}:{relay.port}"

    text, _ = await read_with_the_sdk(relay_url)
    figures = await run(f"{relay_url}/v1/messages", concurrency=3, count=10, key=None, ramp_per_s=0)

    assert text == "".join(f"word{i} " for i in range(CHUNKS))
    assert (figures["streams"], figures["failed"], figures["errors"]) == (10, 0, {})


async def test_a_holding_fake_sends_no_text_until_its_gate_opens() -> None:
    gate = Gate()
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: Upstream(Frames(1), ttft=0, gap=0, gate=gate), "127.0.0.1", 0
    )
    url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/v1/messages"
    try:
        held = asyncio.create_task(run(url, concurrency=3, count=3, key=None, ramp_per_s=0))
        await asyncio.sleep(0.3)
        assert not held.done()
        gate.open()
        figures = await asyncio.wait_for(held, 5)
        assert (figures["streams"], figures["failed"]) == (3, 0)
        assert figures["ttft_p50_ms"] >= 200  # no text went out before the gate opened
    finally:
        server.close()
        await server.wait_closed()


def test_compare_checks_the_revision_out_and_removes_it_afterwards(tmp_path: Path) -> None:
    repository = tmp_path / "repository"
    git = ["git", "-C", str(repository), "-c", "user.name=t", "-c", "user.email=t@example.com"]
    subprocess.run(["git", "init", "-q", str(repository)], check=True)
    (repository / "file.txt").write_text("first\n")
    subprocess.run([*git, "add", "file.txt"], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "first"], check=True)
    (repository / "file.txt").write_text("second, not committed\n")

    with worktree("HEAD", repository) as tree:
        assert (tree / "file.txt").read_text() == "first\n"

    listed = subprocess.run(
        [*git, "worktree", "list", "--porcelain"], capture_output=True, check=True, text=True
    ).stdout
    assert listed.count("worktree ") == 1  # the repository's own, and no other left behind
