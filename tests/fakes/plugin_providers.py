"""Test-double providers that the gateway finds as it finds any third-party provider:
through an `ai_gateway.providers` entry point.

`plug_in` declares the entry points in distribution metadata written to a temporary
folder that is put on `sys.path` for one test, so nothing is installed into the
environment (unlike the `echo_provider_installed` fixture, which runs pip).

- `crashing`: its first `crashes` streams raise `RuntimeError` (a bug, not an upstream
  failure), before any text or after some; later streams answer normally.
- `gated`: streams "before ", waits for its `gate`, then streams "after" and ends;
  it counts the streams it started and its `aclose()` calls.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import pytest
from pydantic import BaseModel, ConfigDict

from providers.base import Delta, ModelRef, StreamEnd, TextDelta, UpstreamRequest, Usage

if TYPE_CHECKING:
    from providers.base import ProviderContext

ENTRY_POINT_GROUP = "ai_gateway.providers"
SECRET_DETAIL = "bug-detail-7f3a: must stay in the gateway's logs"
PLUGINS = {
    "crashing": f"{__name__}:create_crashing_provider",
    "gated": f"{__name__}:create_gated_provider",
}


def plug_in(directory: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Make the provider types of `PLUGINS` available to the gateway for this test."""
    dist_info = directory / "aigw_test_doubles-0.0.0.dist-info"
    dist_info.mkdir(parents=True)
    (dist_info / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: aigw-test-doubles\nVersion: 0.0.0\n"
    )
    lines = [f"[{ENTRY_POINT_GROUP}]", *(f"{k} = {v}" for k, v in PLUGINS.items())]
    (dist_info / "entry_points.txt").write_text("\n".join(lines) + "\n")
    monkeypatch.syspath_prepend(str(directory))


class _Options(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CrashingOptions(_Options):
    crashes: int = 1
    when: Literal["before_text", "after_text"] = "before_text"


class CrashingProvider:
    def __init__(self, name: str, options: CrashingOptions) -> None:
        self.name = name
        self._options = options
        self.streams = 0

    @property
    def has_credentials(self) -> bool:
        return True

    async def stream(
        self, request: UpstreamRequest, model: ModelRef
    ) -> AsyncGenerator[Delta, None]:
        self.streams += 1
        crash = self.streams <= self._options.crashes
        if crash and self._options.when == "before_text":
            raise RuntimeError(SECRET_DETAIL)
        yield TextDelta("partial ")
        if crash:
            raise RuntimeError(SECRET_DETAIL)
        yield TextDelta("answer")
        yield StreamEnd(model=model.id, stop_reason="end_turn", usage=Usage(5, 2))

    async def aclose(self) -> None:
        return None


class GatedProvider:
    def __init__(self, name: str) -> None:
        self.name = name
        self.gate = asyncio.Event()
        self.gate.set()
        self.streams = 0
        self.aclose_calls = 0

    @property
    def has_credentials(self) -> bool:
        return True

    async def stream(
        self, request: UpstreamRequest, model: ModelRef
    ) -> AsyncGenerator[Delta, None]:
        self.streams += 1
        yield TextDelta("before ")
        await self.gate.wait()
        yield TextDelta("after")
        yield StreamEnd(model=model.id, stop_reason="end_turn", usage=Usage(3, 2))

    async def aclose(self) -> None:
        self.aclose_calls += 1


def create_crashing_provider(
    name: str, options: Mapping[str, Any], context: ProviderContext
) -> CrashingProvider:
    return CrashingProvider(name, CrashingOptions.model_validate(dict(options)))


def create_gated_provider(
    name: str, options: Mapping[str, Any], context: ProviderContext
) -> GatedProvider:
    _Options.model_validate(dict(options))
    return GatedProvider(name)
