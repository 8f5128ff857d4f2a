"""Offline, deterministic provider: lets `ai-gateway serve` stream with no key and no network.

The answer is built from the last user message so that two identical requests stream
identical text, in word-sized chunks, `chunk_delay_ms` apart.
"""

from __future__ import annotations

import asyncio
import itertools
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
    """The demo's answer as word-sized chunks (one "token" per chunk).

    `words` is the answer's natural length: it ends on the last whole sentence that fits
    (the sentences repeat for long answers), or, when not even the first one fits, after
    `words` words.  `max_tokens` cuts it wherever it falls, as it cuts a real model's
    answer, and the provider then reports `stop_reason: max_tokens`.
    """
    topic = " ".join(prompt.split()[:12])
    sentences = [
        "This is the offline demo provider of ai-stream-gateway.",
        f'You asked: "{topic}".' if topic else "You sent no text.",
        "No API key is set, so no model is called and nothing is billed.",
        "Export ANTHROPIC_API_KEY and restart the gateway for real answers.",
        "Everything else is live: validation, the policy chain, rate limits and "
        "Server-Sent Events.",
        "The done event names the model that answered.",
    ]
    answer: list[str] = []
    for i in itertools.count():
        sentence = sentences[i % len(sentences)].split()
        if len(answer) + len(sentence) > words:
            break
        answer += sentence
    if not answer:
        answer = sentences[0].split()[:words]
    count = min(len(answer), max_tokens)
    return [(" " if i else "") + word for i, word in enumerate(answer[:count])]


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
