"""Several workers on one port (`server.workers`): a real `ai-gateway serve` supervisor and
its worker processes, driven by signals as an orchestrator would."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import pytest
import yaml
from pydantic import ValidationError

from gateway.config import ServerConfig
from gateway.workers import resolve_count
from tests.gateway.test_process_lifecycle import ADMIN, HEADERS, read_events, write_config
from tests.process import GatewayProcess, running_gateway
from tests.sse_client import parse_sse
from tests.waiting import wait_until

WORKERS = 2


def workers_config(tmp_path, redis_url="", limits=None, chunk_delay_ms=100):
    """The lifecycle tests' config, served by two workers."""
    path = write_config(tmp_path, redis_url, prefix=f"workers{os.getpid()}")
    data = yaml.safe_load(path.read_text())
    data["server"]["workers"] = WORKERS
    data["providers"]["demo"]["chunk_delay_ms"] = chunk_delay_ms
    if limits is not None:
        data["tenants"][0]["limits"] = limits
    path.write_text(yaml.safe_dump(data))
    return path


@asynccontextmanager
async def fresh_connections() -> AsyncIterator[aiohttp.ClientSession]:
    """A new connection per request, so that the kernel spreads them over the workers."""
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True)) as s:
        yield s


async def health_by_worker(
    session: aiohttp.ClientSession, url: str, until: Callable[[dict[int, Any]], bool]
) -> dict[int, dict[str, Any]]:
    """Each worker's latest health answer, once `until` holds for them."""
    seen: dict[int, dict[str, Any]] = {}

    async def ask() -> bool:
        async with session.get(f"{url}/ai/stream/health") as response:
            health = await response.json()
        seen[health["worker"]] = health
        return len(seen) == health["workers"] and until(seen)

    await wait_until(ask, "every worker's health")
    return seen


async def every_worker(session, url) -> dict[int, dict[str, Any]]:
    return await health_by_worker(session, url, lambda seen: True)


def log_lines(output: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in output.splitlines() if line.startswith("{")]


async def stopped(gateway: GatewayProcess) -> tuple[int, list[dict[str, Any]]]:
    """SIGTERM to the supervisor; its exit code and every process's log lines."""
    output = await gateway.stop()
    assert gateway.process.returncode is not None
    return gateway.process.returncode, log_lines(output)


async def test_redis_limit_admits_exactly_ten_of_fifty_spread_over_both_workers(
    tmp_path, own_redis_server
):
    config = workers_config(
        tmp_path, own_redis_server.url, limits={"requests_per_minute": 10}, chunk_delay_ms=0
    )
    body = {"prompt": "hi", "max_tokens": 3}
    async with running_gateway(config, env={"ADMIN_KEY": ADMIN}) as gateway:
        async with fresh_connections() as session:
            await every_worker(session, gateway.url)

            async def one() -> int:
                url = f"{gateway.url}/ai/stream/generate"
                async with session.post(url, json=body, headers=HEADERS) as response:
                    await response.read()
                    return response.status

            statuses = await asyncio.gather(*(one() for _ in range(50)))
            admin = {"Authorization": f"Bearer {ADMIN}"}
            scraped = ""

            async def all_counted() -> bool:
                """A worker counts a request after its last byte: scrape until all 50 are
                in (one scrape of any worker sees every worker's)."""
                nonlocal scraped
                async with session.get(f"{gateway.url}/metrics", headers=admin) as response:
                    scraped = await response.text()
                ok = re.search(r'aigw_requests_total\{[^}]*outcome="ok"[^}]*\} 10\.0', scraped)
                return bool(ok and re.search(r"aigw_rate_limited_total\{[^}]*\} 40\.0", scraped))

            await wait_until(all_counted, "every request counted in /metrics")
        code, lines = await stopped(gateway)

    assert sorted(statuses) == [200] * 10 + [429] * 40
    served = [line for line in lines if line["message"] == "request"]
    assert len(served) == 50
    assert {line["worker"] for line in served} == set(range(WORKERS))  # both served some
    assert len({line["pid"] for line in served}) == WORKERS
    assert sum(line["status"] == 200 for line in served) == 10
    # one scrape of any worker counts every worker's requests
    assert re.search(r'aigw_requests_total\{[^}]*outcome="ok"[^}]*\} 10\.0', scraped)
    assert re.search(r"aigw_rate_limited_total\{[^}]*\} 40\.0", scraped)
    assert code == 0


async def test_sigterm_drains_every_worker_then_the_supervisor_exits_0(tmp_path):
    # Streams are opened until each worker holds one; the kernel may send several in a row
    # to the same worker, so its in-process limit (5 open by default here) must not refuse.
    config = workers_config(tmp_path, limits={"concurrent_streams": 100})
    body = {"prompt": "tell me a long story", "max_tokens": 150}
    async with running_gateway(config, env={"ADMIN_KEY": ADMIN}) as gateway:
        async with fresh_connections() as session:
            streams = []

            async def one_stream_on_each() -> bool:
                response = await session.post(
                    f"{gateway.url}/ai/stream/generate", json=body, headers=HEADERS
                )
                streams.append((response, await read_events(response, until_contents=1)))
                health = await health_by_worker(session, gateway.url, lambda seen: True)
                return all(h["open_streams"] >= 1 for h in health.values())

            await wait_until(one_stream_on_each, "a stream open on each worker")
            gateway.process.send_signal(signal.SIGTERM)
            rests = await asyncio.gather(*(read_events(response) for response, _ in streams))
        code, lines = await stopped(gateway)

    for (_, first), rest in zip(streams, rests, strict=True):
        events, _ = parse_sse(b"".join(first + rest))
        last = events[-1]
        assert last["type"] == "done" or (last["type"] == "error" and last["code"] == "shutdown")
    assert {line.get("worker") for line in lines if line["message"] == "stopped"} == {0, 1}
    assert code == 0


async def test_sighup_reloads_every_worker_and_warns_once_of_per_worker_limits(tmp_path):
    config = workers_config(tmp_path)
    async with running_gateway(config, env={"ADMIN_KEY": ADMIN}) as gateway:
        async with fresh_connections() as session:
            await every_worker(session, gateway.url)
            data = yaml.safe_load(config.read_text())
            data["models"]["chatty"] = {"provider": "demo", "model": "demo"}
            config.write_text(yaml.safe_dump(data))
            gateway.process.send_signal(signal.SIGHUP)
            await health_by_worker(
                session,
                gateway.url,
                lambda seen: all("chatty" in h["models"] for h in seen.values()),
            )
        code, lines = await stopped(gateway)

    reloaded = [line for line in lines if line["message"].startswith("config reloaded")]
    assert sorted(line["worker"] for line in reloaded) == [0, 1]
    per_worker = [line for line in lines if "keeps its own in-process limits" in line["message"]]
    assert len(per_worker) == 1 and "worker" not in per_worker[0]  # once, by the supervisor
    assert code == 0


async def test_a_worker_killed_with_sigkill_is_replaced_by_a_new_process(tmp_path):
    config = workers_config(tmp_path)
    async with running_gateway(config, env={"ADMIN_KEY": ADMIN}) as gateway:
        async with fresh_connections() as session:
            before = await every_worker(session, gateway.url)
            killed = before[1]["pid"]
            os.kill(killed, signal.SIGKILL)
            after = await health_by_worker(
                session, gateway.url, lambda seen: seen[1]["pid"] not in (killed, None)
            )
        code, lines = await stopped(gateway)

    assert after[0]["pid"] == before[0]["pid"]  # the other worker served on
    assert after[1]["pid"] != killed
    assert any(
        f"worker 1 (pid {killed}) exited unexpectedly (killed by SIGKILL)" in line["message"]
        for line in lines
    )
    assert code == 0


def test_workers_is_a_number_from_one_or_auto():
    def with_workers(value: object):
        return ServerConfig.model_validate({"workers": value}).workers

    assert with_workers("auto") == "auto"
    assert with_workers(4) == 4
    for wrong in (0, "all"):
        with pytest.raises(ValidationError):
            with_workers(wrong)
    assert resolve_count("auto") >= 1
    assert resolve_count(3) == 3
