from __future__ import annotations

import copy
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
import yaml
from aiohttp.test_utils import TestClient

from gateway.app import create_app
from gateway.config import GatewayConfig, parse_config
from gateway.state import Clock
from tests.fakes.anthropic_server import API_KEY, FakeAnthropic
from tests.fakes.openai_server import FakeOpenAI
from tests.sse_client import StreamResult, read_stream

BASE_CONFIG: dict[str, Any] = {
    "server": {
        "keepalive_seconds": 15,
        "cors": {"allow_origins": ["http://localhost:3000"]},
        "date_context": {"enabled": True},
    },
    "providers": {
        "anthropic": {
            "type": "anthropic",
            "api_key": "${ANTHROPIC_API_KEY}",
            "base_url": "${ANTHROPIC_BASE_URL}",
        },
        "demo": {"type": "demo", "chunk_delay_ms": 0},
    },
    "models": {
        # Retired on 2026-11-30, kept for the tests: it takes a prefill and temperature, so
        # continuation and sampling are tested on that kind of model too.
        "sonnet": {
            "provider": "anthropic",
            "model": "claude-sonnet-4-5-20250929",
            "allow_retired": True,
        },
        "haiku": {"provider": "anthropic", "model": "claude-haiku-4-5-20251001"},
    },
    "chains": {"default": {"targets": ["sonnet"]}},
    "default_chain": "default",
}


def merge(base: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = value
    return out


def build_config(
    anthropic_url: str = "http://127.0.0.1:9",
    api_key: str = API_KEY,
    env: dict[str, str] | None = None,
    **overrides: Any,
) -> GatewayConfig:
    text = yaml.safe_dump(merge(BASE_CONFIG, overrides))
    env = {"ANTHROPIC_API_KEY": api_key, "ANTHROPIC_BASE_URL": anthropic_url, **(env or {})}
    return parse_config(text, environ=env)


@pytest.fixture
async def fake_anthropic(aiohttp_server: Any) -> FakeAnthropic:
    fake = FakeAnthropic()
    server = await aiohttp_server(fake.app)
    fake.url = str(server.make_url(""))
    return fake


@pytest.fixture
async def fake_openai(aiohttp_server: Any) -> FakeOpenAI:
    fake = FakeOpenAI()
    server = await aiohttp_server(fake.app)
    fake.url = str(server.make_url("/v1"))
    return fake


@pytest.fixture(scope="session")
def echo_provider_installed() -> None:
    """The example third-party provider package, installed by the install step as a user
    would install it; the gateway then finds it through its entry point."""
    import importlib.util

    if importlib.util.find_spec("aigw_echo_provider") is None:
        pytest.fail(
            "examples/echo-provider is not installed: run the README's test command, whose "
            "install step installs it (pip install ./examples/echo-provider)"
        )


GatewayFactory = Callable[..., Awaitable[TestClient[Any, Any]]]


@pytest.fixture
def gateway(aiohttp_client: Any, fake_anthropic: FakeAnthropic) -> GatewayFactory:
    """Start a gateway in front of the fake Anthropic; keyword arguments override config,
    and `clock` (say a `tests.clock.FakeClock().clock`) replaces the system's."""

    async def start(clock: Clock | None = None, **overrides: Any) -> TestClient[Any, Any]:
        overrides.setdefault("anthropic_url", fake_anthropic.url)
        return await aiohttp_client(create_app(build_config(**overrides), clock))

    return start


async def post_stream(
    client: TestClient[Any, Any], path: str, body: Any, **kwargs: Any
) -> StreamResult:
    async with client.post(path, json=body, **kwargs) as response:
        return await read_stream(response)


CHAT = {"messages": [{"role": "user", "content": "What is FastAPI?"}], "max_tokens": 500}
GENERATE = {"prompt": "Write a haiku about coding", "max_tokens": 100, "temperature": 0.7}


@pytest.fixture(scope="session")
def redis_server():
    """One real redis-server for the session; tests isolate themselves by key prefix."""
    from tests.redis_servers import start_server

    server = start_server()
    yield server
    server.stop()


@pytest.fixture
def own_redis_server():
    """A redis-server of this test alone, which it may kill and restart."""
    from tests.redis_servers import start_server

    server = start_server()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def redis_cluster():
    from tests.redis_servers import start_cluster

    cluster = start_cluster()
    yield cluster
    cluster.stop()


@pytest.fixture
def key_prefix() -> str:
    import uuid

    return f"t{uuid.uuid4().hex[:12]}"
