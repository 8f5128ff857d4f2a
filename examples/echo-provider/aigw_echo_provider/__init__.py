"""An example provider package: streams the last user message back, word by word.

Use it in config.yaml once installed (`pip install ./examples/echo-provider`):

    providers:
      echo: {type: echo, prefix: "You said: "}
    models:
      parrot: {provider: echo, model: echo-1}
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict

from providers.base import (
    Delta,
    ModelRef,
    ProviderContext,
    StreamEnd,
    TextDelta,
    UpstreamRequest,
    Usage,
)


class EchoSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    prefix: str = ""
    delay_ms: float = 0


class EchoProvider:
    def __init__(self, name: str, settings: EchoSettings) -> None:
        self.name = name
        self._settings = settings

    @property
    def has_credentials(self) -> bool:
        return True  # needs none, and must not be replaced by the demo provider

    async def stream(
        self, request: UpstreamRequest, model: ModelRef
    ) -> AsyncGenerator[Delta, None]:
        prompt = next((m.content for m in reversed(request.messages) if m.role == "user"), "")
        words = (self._settings.prefix + prompt).split(" ")
        for i, word in enumerate(words[: request.max_tokens]):
            if self._settings.delay_ms:
                await asyncio.sleep(self._settings.delay_ms / 1000)
            yield TextDelta(word if i == 0 else " " + word)
        usage = Usage(input_tokens=len(prompt.split()), output_tokens=len(words))
        yield StreamEnd(model=model.id, stop_reason="end_turn", usage=usage)

    async def aclose(self) -> None:
        return None


def create_echo_provider(
    name: str, options: Mapping[str, Any], context: ProviderContext
) -> EchoProvider:
    return EchoProvider(name, EchoSettings.model_validate(dict(options)))
