"""Offline, deterministic provider: lets `ai-gateway serve` stream with no key and no network.

The answer is built from the last user message so that two identical requests stream
identical text, in word-sized chunks, `chunk_delay_ms` apart.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from providers.base import (
    Delta,
    ModelRef,
    ProviderContext,
    StreamEnd,
    TextDelta,
    UpstreamRequest,
    Usage,
)

DEMO_MODEL = "demo"


class DemoSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    chunk_delay_ms: float = Field(default=30, ge=0, le=10_000)
    words: int = Field(default=60, ge=1, le=10_000, description="length of the answer")


class DemoProvider:
    def __init__(self, name: str, settings: DemoSettings) -> None:
        self.name = name
        self._settings = settings

    @property
    def has_credentials(self) -> bool:
        return False

    async def stream(
        self, request: UpstreamRequest, model: ModelRef
    ) -> AsyncGenerator[Delta, None]:
        prompt = next((m.content for m in reversed(request.messages) if m.role == "user"), "")
        chunks = demo_answer_chunks(prompt, self._settings.words, request.max_tokens)
        delay = self._settings.chunk_delay_ms / 1000
        for chunk in chunks:
            if delay:
                await asyncio.sleep(delay)
            yield TextDelta(chunk)
        stop_reason = "max_tokens" if len(chunks) >= request.max_tokens else "end_turn"
        usage = Usage(input_tokens=_count_words(request), output_tokens=len(chunks))
        yield StreamEnd(model=DEMO_MODEL, stop_reason=stop_reason, usage=usage)

    async def aclose(self) -> None:
        return None


def demo_answer_chunks(prompt: str, words: int, max_tokens: int) -> list[str]:
    """The demo's answer as word-sized chunks (one "token" per chunk)."""
    topic = " ".join(prompt.split()[:12]) or "your request"
    text = (
        f'This is the offline demo provider of ai-stream-gateway answering: "{topic}". '
        "No API key is configured, so no model is called; set ANTHROPIC_API_KEY and restart "
        "to stream real answers. Everything else is live: the request was validated, passed "
        "through the policy chain and is streamed to you as Server-Sent Events, one content "
        "event per chunk, followed by one done event that names the model. "
    )
    vocabulary = text.split(" ")
    vocabulary = [w for w in vocabulary if w]
    count = min(words, max_tokens)
    return [(" " if i else "") + vocabulary[i % len(vocabulary)] for i in range(count)]


def _count_words(request: UpstreamRequest) -> int:
    total = len((request.system or "").split())
    return total + sum(len(m.content.split()) for m in request.messages)


def create_demo_provider(
    name: str, options: Mapping[str, Any], context: ProviderContext
) -> DemoProvider:
    return DemoProvider(name, DemoSettings.model_validate(dict(options)))


def demo_provider_for(providers: Mapping[str, Any]) -> DemoProvider:
    """The configured demo provider for demo mode, or one with default settings."""
    configured = (p for p in providers.values() if isinstance(p, DemoProvider))
    return next(configured, None) or DemoProvider("demo", DemoSettings())
