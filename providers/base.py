"""Normalized types every layer shares, the one interface every provider implements, and
the plug-in API a provider package is built with (`ProviderContext`, `ProviderFactory`).

A provider turns an `UpstreamRequest` into a stream of `TextDelta`s that ends with exactly
one `StreamEnd`, or raises a `providers.errors.UpstreamError` (before or during the
stream).  It never retries: the policy chain owns retries, fallback and time-outs.
Cancelling the iteration (client gone, deadline hit) must close the upstream connection.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol

if TYPE_CHECKING:
    import aiohttp

Role = Literal["user", "assistant"]


@dataclass(frozen=True, slots=True)
class Message:
    role: Role
    content: str


@dataclass(frozen=True, slots=True)
class UpstreamRequest:
    """What the client asked for, independent of any provider's wire format."""

    messages: tuple[Message, ...]
    max_tokens: int
    system: str | None = None
    temperature: float | None = None
    top_p: float | None = None
    top_k: int | None = None
    stop_sequences: tuple[str, ...] = ()
    user_id: str | None = None

    def text_length(self) -> int:
        """Characters of prompt text, for token estimates before the upstream counts."""
        return len(self.system or "") + sum(len(m.content) for m in self.messages)


@dataclass(frozen=True, slots=True)
class ModelRef:
    """Which upstream model to call, with its per-model options from config."""

    id: str
    options: Mapping[str, Any] = field(default_factory=dict)
    connect_timeout_s: float = 5.0


@dataclass(slots=True)
class Usage:
    input_tokens: int = 0
    output_tokens: int = 0

    def estimate_output(self, streamed_chars: int) -> None:
        """Until the upstream reports output tokens, count the text streamed so far."""
        self.output_tokens = max(self.output_tokens, estimate_tokens(streamed_chars))

    def add(self, other: Usage) -> None:
        self.input_tokens += other.input_tokens
        self.output_tokens += other.output_tokens

    def as_dict(self) -> dict[str, int]:
        return {"input_tokens": self.input_tokens, "output_tokens": self.output_tokens}


def estimate_tokens(text_chars: int) -> int:
    """A cheap, deliberately generous estimate: about four characters per token.  Used
    where the upstream has not counted (yet): reservations, and streams cut midway."""
    return -(-text_chars // 4)


@dataclass(frozen=True, slots=True)
class TextDelta:
    text: str


@dataclass(frozen=True, slots=True)
class StreamEnd:
    """The last item of every successful stream: who answered, why it stopped, what it cost."""

    model: str
    stop_reason: str | None
    usage: Usage = field(default_factory=Usage)


Delta = TextDelta | StreamEnd


class Provider(Protocol):
    """One configured upstream (an entry under `providers:` in config)."""

    name: str

    @property
    def has_credentials(self) -> bool:
        """False when the provider could only fail for want of a key (demo mode decides on it)."""
        ...

    def stream(self, request: UpstreamRequest, model: ModelRef) -> AsyncGenerator[Delta, None]:
        """Stream one answer from `model`; raise `UpstreamError` subclasses on failure.

        An async generator (so that `aclose()` cancels the upstream request).
        `model.connect_timeout_s` bounds opening the connection; the policy chain bounds
        the rest.
        """
        ...

    async def aclose(self) -> None:
        """Release clients and connections; called once at shutdown."""
        ...


@dataclass(frozen=True, slots=True)
class ProviderContext:
    """Shared resources a provider may use; owned and closed by the gateway app."""

    http: aiohttp.ClientSession


ProviderFactory = Callable[[str, Mapping[str, Any], ProviderContext], Provider]
"""`factory(name, options, context)`: one configured provider.  `options` is its mapping
from config.yaml (minus `type`); the factory validates it and raises `ValueError` with a
readable message."""
