"""After a config reload the old config's providers are closed, but only once the streams
that started on the old config have ended; such a stream keeps working until its end.

The open stream is a real one through the fake Anthropic, held after its first text by
`Script.hold`; with `client: sdk` the provider owns an HTTP client, so closing it early
would break that stream.  Each old provider's `aclose` is observed by a counting wrapper
around the real method.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from redis.asyncio import Redis

from gateway.app import reload
from gateway.state import STATE
from providers.base import Provider
from tests.conftest import BASE_CONFIG, CHAT, GatewayFactory, merge, post_stream
from tests.fakes.anthropic_server import API_KEY, FakeAnthropic
from tests.fakes.script import Script
from tests.waiting import wait_until


class CloseCounter:
    """Wraps each provider's `aclose`, counting the calls and passing them on."""

    def __init__(self, providers: dict[str, Provider], monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls = dict.fromkeys(providers, 0)
        for name, provider in providers.items():
            monkeypatch.setattr(provider, "aclose", self._counting(name, provider.aclose))

    def _counting(
        self, name: str, aclose: Callable[[], Awaitable[None]]
    ) -> Callable[[], Awaitable[None]]:
        async def counted() -> None:
            self.calls[name] += 1
            await aclose()

        return counted


@pytest.mark.parametrize("anthropic_client", ["wire", "sdk"])
async def test_old_providers_are_closed_once_the_streams_started_on_them_end(
    gateway: GatewayFactory,
    fake_anthropic: FakeAnthropic,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    anthropic_client: str,
) -> None:
    overrides: dict[str, Any] = {
        "providers": {"anthropic": {"client": anthropic_client}},
        "chains": {"default": {"targets": ["sonnet"], "retry": {"max_attempts": 1}}},
    }
    client = await gateway(**overrides)
    old = client.app[STATE].current
    closes = CloseCounter(old.providers, monkeypatch)
    hold = asyncio.Event()
    fake_anthropic.script(Script(chunks=["Hello", " again"], hold=hold))
    open_on_old = asyncio.create_task(post_stream(client, "/ai/stream/chat", CHAT))
    await wait_until(lambda: fake_anthropic.requests == 1, "the first stream to reach the fake")

    try:
        monkeypatch.setenv("ANTHROPIC_API_KEY", API_KEY)
        monkeypatch.setenv("ANTHROPIC_BASE_URL", fake_anthropic.url)
        path = tmp_path / "config.yaml"
        path.write_text(yaml.safe_dump(merge(BASE_CONFIG, overrides)))
        assert await reload(client.app, path)
        new = client.app[STATE].current
        assert not {id(p) for p in new.providers.values()} & {id(p) for p in old.providers.values()}
        new_closes = CloseCounter(new.providers, monkeypatch)

        on_new = await post_stream(client, "/ai/stream/chat", CHAT)  # served by the new config
        assert on_new.last["type"] == "done"
        assert set(closes.calls.values()) == {0}  # a stream on the old config is still open
    finally:
        hold.set()  # (also when an assertion above failed: the stream ends)
    result = await open_on_old
    assert result.status == 200
    assert result.text == "Hello again"
    assert result.last["type"] == "done"
    result.assert_one_terminal()

    await wait_until(
        lambda: set(closes.calls.values()) == {1}, "every old provider to be closed once"
    )
    assert set(new_closes.calls.values()) == {0}


async def test_a_request_still_being_admitted_keeps_its_configs_providers_open(
    gateway: GatewayFactory,
    fake_anthropic: FakeAnthropic,
    redis_server: Any,
    key_prefix: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A request counts from the moment it read its config, not from its first byte: a
    reload while its admission waits for Redis must not close the SDK client under it."""
    overrides: dict[str, Any] = {
        "providers": {"anthropic": {"client": "sdk"}},
        "chains": {"default": {"targets": ["sonnet"], "retry": {"max_attempts": 1}}},
        "redis": {"url": redis_server.url, "key_prefix": key_prefix, "socket_timeout_ms": 10_000},
    }
    client = await gateway(**overrides)
    redis = Redis.from_url(redis_server.url)
    try:
        await redis.execute_command("CLIENT", "PAUSE", 20_000, "WRITE")
        admitting = asyncio.create_task(post_stream(client, "/ai/stream/chat", CHAT))

        async def admission_waits() -> bool:
            return int((await redis.info("clients"))["blocked_clients"]) >= 1

        await wait_until(admission_waits, "the admission script to wait in Redis")
        monkeypatch.setenv("ANTHROPIC_API_KEY", API_KEY)
        monkeypatch.setenv("ANTHROPIC_BASE_URL", fake_anthropic.url)
        path = tmp_path / "config.yaml"
        path.write_text(yaml.safe_dump(merge(BASE_CONFIG, overrides)))
        assert await reload(client.app, path)
        for _ in range(20):  # let a close of the old providers run, if it would
            await asyncio.sleep(0)
    finally:
        await redis.execute_command("CLIENT", "UNPAUSE")
        await redis.aclose()

    result = await admitting
    assert (result.status, result.last["type"]) == (200, "done")
    assert fake_anthropic.requests == 1
