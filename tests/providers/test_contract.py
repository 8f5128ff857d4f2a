"""The provider adapter contract: one suite that every provider, built-in or plugged in,
must pass.  Network providers run against their fake upstream with every error kind;
offline providers (demo, the example plug-in) have no upstream to fail, so they run the
stream, usage and cancellation parts."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pytest

from providers.base import (
    Message,
    ModelRef,
    Provider,
    ProviderContext,
    StreamEnd,
    TextDelta,
    UpstreamRequest,
)
from providers.errors import (
    UpstreamAuthError,
    UpstreamConnectionError,
    UpstreamError,
    UpstreamNotFound,
    UpstreamOverloaded,
    UpstreamProtocolError,
    UpstreamRateLimited,
    UpstreamRejected,
    UpstreamServerError,
)
from providers.registry import find_factory
from tests.fakes import anthropic_server, openai_server
from tests.fakes.script import Script

REQUEST = UpstreamRequest(messages=(Message("user", "say hello please"),), max_tokens=50)

COMMON_ERRORS: list[tuple[Script, type[UpstreamError]]] = [
    (Script(status=429, retry_after="2"), UpstreamRateLimited),
    (Script(status=500), UpstreamServerError),
    (Script(status=404), UpstreamNotFound),
    (Script(status=400), UpstreamRejected),
    (Script(fault="drop", fault_after=1), UpstreamConnectionError),
    (Script(fault="malformed", fault_after=1), UpstreamProtocolError),
    (Script(fault="truncate", fault_after=2), UpstreamConnectionError),
]


ANTHROPIC_ERRORS = [
    *COMMON_ERRORS,
    (Script(status=529), UpstreamOverloaded),
    (Script(fault="error_event", fault_after=1), UpstreamOverloaded),
]


@dataclass
class Case:
    type: str
    fake: str | None  # which fake upstream fixture serves it
    options: Callable[[str], dict[str, Any]]
    model: str
    errors: list[tuple[Script, type[UpstreamError]]] = field(default_factory=list)


CASES = {
    "anthropic (wire)": Case(
        "anthropic",
        "fake_anthropic",
        lambda url: {"api_key": anthropic_server.API_KEY, "base_url": url, "client": "wire"},
        "claude-sonnet-4-5-20250929",
        ANTHROPIC_ERRORS,
    ),
    "anthropic (wire, API 2026-10-21)": Case(
        "anthropic",
        "fake_anthropic",
        lambda url: {
            "api_key": anthropic_server.API_KEY,
            "base_url": url,
            "client": "wire",
            "api_version": "2026-10-21",
        },
        "claude-sonnet-4-5-20250929",
        ANTHROPIC_ERRORS,
    ),
    "anthropic (sdk)": Case(
        "anthropic",
        "fake_anthropic",
        lambda url: {"api_key": anthropic_server.API_KEY, "base_url": url, "client": "sdk"},
        "claude-sonnet-4-5-20250929",
        ANTHROPIC_ERRORS,
    ),
    "openai_compatible": Case(
        "openai_compatible",
        "fake_openai",
        lambda url: {"api_key": openai_server.API_KEY, "base_url": url},
        "gpt-4o-mini",
        [
            *COMMON_ERRORS,
            (Script(status=503), UpstreamServerError),
            (Script(fault="error_event", fault_after=1), UpstreamServerError),
        ],
    ),
    "demo": Case("demo", None, lambda url: {"chunk_delay_ms": 5}, "demo"),
    "echo (plug-in)": Case("echo", None, lambda url: {"delay_ms": 5}, "echo-1"),
}
NETWORK = [name for name, case in CASES.items() if case.fake]


@pytest.fixture
async def contract(request, fake_anthropic, fake_openai, echo_provider_installed):
    """(provider, fake upstream or None) for the case named by the test's parameter."""
    case = CASES[request.param]
    fake = {"fake_anthropic": fake_anthropic, "fake_openai": fake_openai}.get(case.fake or "")
    async with aiohttp.ClientSession() as http:
        factory = find_factory(case.type)
        provider: Provider = factory(
            case.type, case.options(fake.url if fake else ""), ProviderContext(http)
        )
        yield provider, fake, case
        await provider.aclose()


async def collect(provider: Provider, model: str):
    return [delta async for delta in provider.stream(REQUEST, ModelRef(model))]


@pytest.mark.parametrize("contract", list(CASES), indirect=True)
async def test_stream_is_text_then_exactly_one_end_with_usage(contract):
    provider, _, case = contract
    deltas = await collect(provider, case.model)
    assert all(isinstance(d, TextDelta) and d.text for d in deltas[:-1])
    assert len(deltas) >= 2
    end = deltas[-1]
    assert isinstance(end, StreamEnd)
    assert end.model
    assert end.usage.input_tokens > 0
    assert end.usage.output_tokens > 0


@pytest.mark.parametrize("contract", list(CASES), indirect=True)
async def test_closing_the_stream_midway_stops_it(contract):
    provider, fake, case = contract
    if fake is not None:
        fake.script(Script(chunks=["a"] * 5, fault="stall", fault_after=2))
    stream = provider.stream(REQUEST, ModelRef(case.model))
    first = await anext(stream)
    assert isinstance(first, TextDelta)
    await stream.aclose()
    with pytest.raises(StopAsyncIteration):
        await anext(stream)
    if fake is not None:
        await asyncio.wait_for(fake.seen[-1].finished.wait(), 1.0)
        assert fake.seen[-1].cancelled  # the upstream saw its connection close


@pytest.mark.parametrize(
    ("contract", "script", "expected"),
    [
        pytest.param(name, script, expected, id=f"{name}-{script.fault or script.status}")
        for name in NETWORK
        for script, expected in CASES[name].errors
    ],
    indirect=["contract"],
)
async def test_each_upstream_failure_is_the_typed_error(contract, script, expected):
    provider, fake, case = contract
    fake.script(script)
    with pytest.raises(expected) as info:
        await collect(provider, case.model)
    error = info.value
    assert error.provider == case.type
    assert type(error) is expected
    if expected is UpstreamRateLimited:
        assert error.retry_after == 2


@pytest.mark.parametrize("contract", NETWORK, indirect=True)
async def test_wrong_credentials_are_an_auth_error_without_the_key(contract):
    _, fake, case = contract
    async with aiohttp.ClientSession() as http:
        options = {**case.options(fake.url), "api_key": "sk-wrong-key-123456"}
        provider = find_factory(case.type)(case.type, options, ProviderContext(http))
        with pytest.raises(UpstreamAuthError) as info:
            await collect(provider, case.model)
        await provider.aclose()
    assert "sk-wrong-key-123456" not in str(info.value)


@pytest.mark.parametrize("contract", NETWORK, indirect=True)
async def test_text_that_cannot_be_encoded_is_the_clients_fault_not_the_targets(contract):
    """A lone surrogate fails when the upstream body is encoded: that must never read as
    the upstream misbehaving (retried, counted by the breaker, cause to fall back)."""
    provider, fake, case = contract
    bad = UpstreamRequest(messages=(Message("user", "hi \ud800"),), max_tokens=50)
    with pytest.raises(UpstreamError) as info:
        async for _ in provider.stream(bad, ModelRef(case.model)):
            pass
    error = info.value
    assert (error.code, error.client_status) == ("invalid_text", 422)
    assert not (error.target_fault or error.retryable or error.fallback)
    assert fake.requests == 0
