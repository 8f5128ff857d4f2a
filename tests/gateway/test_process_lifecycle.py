"""Signals to a real `ai-gateway serve` process: graceful drain (SIGTERM) and reload (SIGHUP)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time

import aiohttp
import yaml
from redis.asyncio import Redis

from gateway.cli import hash_api_key, main
from policies.admission.limits import DAY_MS
from policies.admission.redis_backend import keys_for
from providers.base import estimate_tokens
from tests.process import running_gateway
from tests.sse_client import naive_events, parse_sse

KEY = "process-test-tenant-key-01"
ADMIN = "process-test-admin-key-01"


def write_config(tmp_path, redis_url="", prefix="aigw", **extra):
    config = {
        "server": {"drain_seconds": 1, "date_context": {"enabled": False}},
        "redis": {"url": redis_url, "key_prefix": prefix},
        "providers": {"demo": {"type": "demo", "chunk_delay_ms": 100, "words": 200}},
        "models": {"talk": {"provider": "demo", "model": "demo"}},
        "chains": {"default": {"targets": ["talk"]}},
        "auth": {"mode": "api_key"},
        "admin": {"api_key": "${ADMIN_KEY}"},
        "tenants": [
            {"id": "app", "keys": [hash_api_key(KEY)], "limits": {"concurrent_streams": 5}}
        ],
        **extra,
    }
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


HEADERS = {"Authorization": f"Bearer {KEY}"}


async def read_events(response, until_contents: int | None = None):
    """Read chunks; stop after `until_contents` content events, or at the end."""
    chunks = []
    while True:
        chunk = await response.content.readany()
        if not chunk:
            break
        chunks.append(chunk)
        if until_contents is not None and b"".join(chunks).count(b'"content"') >= until_contents:
            break
    return chunks


async def test_sigterm_drains_then_ends_open_streams_and_settles_them(tmp_path, own_redis_server):
    config = write_config(tmp_path, own_redis_server.url, "drain")
    body = {"prompt": "tell me a long story", "max_tokens": 150}
    async with running_gateway(config, env={"ADMIN_KEY": ADMIN}) as gateway:
        async with aiohttp.ClientSession() as session:
            long = await session.post(
                f"{gateway.url}/ai/stream/generate", json=body, headers=HEADERS
            )
            chunks = await read_events(long, until_contents=3)
            short = await session.post(
                f"{gateway.url}/ai/stream/generate", json={**body, "max_tokens": 5}, headers=HEADERS
            )
            gateway.process.send_signal(signal.SIGTERM)
            signalled = time.monotonic()
            short_chunks, rest = await asyncio.gather(read_events(short), read_events(long))
            ended_after = time.monotonic() - signalled
            try:
                async with session.post(
                    f"{gateway.url}/ai/stream/generate", json=body, headers=HEADERS
                ) as late:
                    late_status = late.status
            except aiohttp.ClientConnectionError:
                late_status = "refused"
        exit_code = await asyncio.wait_for(gateway.process.wait(), 10)

    events, _ = parse_sse(b"".join(chunks + rest))
    assert naive_events(chunks + rest) == events
    assert events[-1]["type"] == "error" and events[-1]["code"] == "shutdown"
    assert [e["type"] for e in events].count("error") == 1
    assert "done" not in [e["type"] for e in events]
    assert 0.9 < ended_after < 4
    short_events, _ = parse_sse(b"".join(short_chunks))
    assert short_events[-1]["type"] == "done"  # finished within the drain deadline
    assert late_status in ("refused", 503)
    assert exit_code == 0

    redis = Redis.from_url(own_redis_server.url)
    try:
        assert await redis.zcard(keys_for("drain", "app", 0)[2]) == 0  # every slot released
        day = int(time.time() * 1000) // DAY_MS
        usage = await redis.hgetall(keys_for("drain", "app", day)[3])
    finally:
        await redis.aclose()
    sent = "".join(e["text"] for e in events if e["type"] == "content")
    cut_short = estimate_tokens(len(body["prompt"])) + estimate_tokens(len(sent))
    done_usage = short_events[-1]["usage"]
    expected = cut_short + done_usage["input_tokens"] + done_usage["output_tokens"]
    assert int(usage[b"tokens"]) == expected  # reservations (max_tokens) were settled
    assert int(usage[b"req:demo"]) == 2


async def test_sighup_reloads_a_good_file_and_keeps_the_old_on_a_bad_one(tmp_path):
    config = write_config(tmp_path)
    async with running_gateway(config, env={"ADMIN_KEY": ADMIN}) as gateway:
        async with aiohttp.ClientSession() as session:
            open_stream = await session.post(
                f"{gateway.url}/ai/stream/generate",
                json={"prompt": "keep streaming", "max_tokens": 20},
                headers=HEADERS,
            )
            await read_events(open_stream, until_contents=1)

            data = yaml.safe_load(config.read_text())
            data["models"]["chatty"] = {"provider": "demo", "model": "demo"}
            config.write_text(yaml.safe_dump(data))
            gateway.process.send_signal(signal.SIGHUP)
            names = await wait_for_models(session, gateway.url, "chatty")
            assert "chatty" in names

            config.write_text("providers: [this is not valid")
            gateway.process.send_signal(signal.SIGHUP)
            await asyncio.sleep(0.5)
            async with session.get(f"{gateway.url}/ai/stream/health") as response:
                assert "chatty" in (await response.json())["models"]  # the old config stays

            rest = await read_events(open_stream)
            events, _ = parse_sse(b"".join(rest))
            assert events[-1]["type"] == "done"  # the open stream was not dropped
        output = await gateway.stop()
    lines = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
    messages = [line["message"] for line in lines]
    assert any(m.startswith("config reloaded") for m in messages)
    assert any("config reload refused" in m and "not valid YAML" in m for m in messages)


async def wait_for_models(session, url, name):
    for _ in range(50):
        async with session.get(f"{url}/ai/stream/health") as response:
            names = (await response.json())["models"]
        if name in names:
            return names
        await asyncio.sleep(0.1)
    return names


async def test_usage_command_and_metrics_port_of_a_running_gateway(tmp_path, capsys):
    from tests.process import free_port

    metrics_port = free_port()
    config = write_config(tmp_path, metrics={"port": metrics_port})
    async with running_gateway(config, env={"ADMIN_KEY": ADMIN}) as gateway:
        async with aiohttp.ClientSession() as session:
            body = {"prompt": "count", "max_tokens": 3}
            async with session.post(
                f"{gateway.url}/ai/stream/generate", json=body, headers=HEADERS
            ) as response:
                await response.read()
            await asyncio.sleep(0.1)
            async with session.get(f"http://127.0.0.1:{metrics_port}/metrics") as response:
                scraped = await response.text()
            async with session.get(f"{gateway.url}/metrics") as response:
                assert response.status == 404  # only on its own port
        os.environ["AI_GATEWAY_ADMIN_KEY"] = ADMIN
        try:
            code = await asyncio.to_thread(main, ["usage", "--url", gateway.url])
        finally:
            del os.environ["AI_GATEWAY_ADMIN_KEY"]
    labels = 'model="demo",outcome="ok",route="/ai/stream/generate",tenant="app"'
    assert f"aigw_requests_total{{{labels}}} 1.0" in scraped
    assert code == 0
    table = capsys.readouterr().out
    assert "app" in table and "demo" in table
    row = next(line for line in table.splitlines() if line.startswith("app"))
    assert row.split()[2:] == ["1", "1", "3", "-"]  # (the demo model has no price)
