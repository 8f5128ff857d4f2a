"""Normalized types every layer shares, the one interface every provider implements, and
the plug-in API a provider package is built with (`ProviderContext`, `ProviderFactory`).

A provider turns an `UpstreamRequest` into a stream of `TextDelta`s (and, where it serves
tools or thinking, the part deltas of `providers.content`) that ends with exactly one
`StreamEnd`, or raises a `providers.errors.UpstreamError` (before or during the
stream).  It never retries: the policy chain owns retries, fallback and time-outs.
Cancelling the iteration (client gone, deadline hit) must close the upstream connection.
"""

from __future__ import annotations

import math
from collections.abc import AsyncGenerator, Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import date
from typing import TYPE_CHECKING, Any, Literal, Protocol, runtime_checkable

from providers.content import (
    Block,
    Feature,
    ImageBlock,
    Native,
    PartDelta,
    Tool,
    ToolChoice,
    ToolResultBlock,
    ToolUseBlock,
)

if TYPE_CHECKING:
    import aiohttp

Role = Literal["user", "assistant"]


@dataclass(frozen=True, slots=True)
class Message:
    """One turn.  `content` is its text; `blocks`, when the client sent more than text,
    is the whole content in order (text-only providers read `content` alone)."""

    role: Role
    content: str
    blocks: tuple[Block, ...] = ()


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
    # Text of this answer the client already has (mid-stream continuation): the provider
    # asks its model to go on from there, in whatever way the model allows.
    continue_from: str = ""
    tools: tuple[Tool, ...] = ()
    tool_choice: ToolChoice | None = None
    native: Native | None = None  # the client's own body, for a target of its protocol

    def text_length(self) -> int:
        """Characters of prompt text, for token estimates before the upstream counts."""
        length = len(self.system or "") + sum(len(m.content) for m in self.messages)
        if self.tools or any(m.blocks for m in self.messages):
            length += sum(len(repr(t.input_schema)) + len(t.description) for t in self.tools)
            length += sum(_block_length(b) for m in self.messages for b in m.blocks)
        return length

    def needs(self) -> frozenset[Feature]:
        """What a target must serve to take this request at all."""
        needed: set[Feature] = set()
        if self.tools:
            needed.add("tools")
        for message in self.messages:
            for block in message.blocks:
                if isinstance(block, ToolUseBlock | ToolResultBlock):
                    needed.add("tools")
                if isinstance(block, ImageBlock) or (
                    isinstance(block, ToolResultBlock)
                    and any(isinstance(part, ImageBlock) for part in block.content)
                ):
                    needed.add("images")
        return frozenset(needed)

    def with_system(self, system: str) -> UpstreamRequest:
        """This request with `system` as its system prompt, for every protocol."""
        native = self.native
        if native is not None:
            native = replace(native, system=system)
        return replace(self, system=system, native=native)

    def sampling(self) -> dict[str, float | int]:
        """The sampling parameters the client set."""
        given = {"temperature": self.temperature, "top_p": self.top_p, "top_k": self.top_k}
        return {name: value for name, value in given.items() if value is not None}


SAMPLING_PARAMS = ("temperature", "top_p", "top_k")
CONTINUE_PROMPT = (
    "Your previous answer was cut off. Continue it exactly where it stopped, without "
    "repeating any of it and without any preamble."
)


@dataclass(frozen=True, slots=True)
class Capabilities:
    """What a model accepts, where config.yaml says so; None leaves it to the provider."""

    prefill: bool | None = None
    temperature: bool | None = None
    top_p: bool | None = None
    top_k: bool | None = None
    tools: bool | None = None
    images: bool | None = None

    def lacks(self, needed: frozenset[Feature]) -> frozenset[Feature]:
        """What of `needed` config says this model does not take."""
        return frozenset(f for f in needed if getattr(self, f) is False)


@dataclass(frozen=True, slots=True)
class ModelRef:
    """Which upstream model to call, with its per-model options from config.

    `dropped` is filled by the provider: the request fields and content it left out,
    because the model does not accept them or its protocol cannot say them (the gateway
    reports them to the client).
    """

    id: str
    options: Mapping[str, Any] = field(default_factory=dict)
    connect_timeout_s: float = 5.0
    capabilities: Capabilities = field(default_factory=Capabilities)
    dropped: set[str] = field(default_factory=set)


@dataclass(slots=True)
class Usage:
    """Tokens of one answer, as Anthropic counts them: `input_tokens` are the prompt's
    tokens outside the prompt cache; those written to it and read from it are apart
    (each priced differently), where the upstream reports them."""

    input_tokens: int = 0
    output_tokens: int = 0
    cache_write_tokens: int = 0
    cache_read_tokens: int = 0

    def estimate_output(self, streamed_chars: int) -> None:
        """Until the upstream reports output tokens, count the text streamed so far."""
        self.output_tokens = max(self.output_tokens, estimate_tokens(streamed_chars))

    def add(self, other: Usage) -> None:
        self.input_tokens += other.input_tokens
        self.output_tokens += other.output_tokens
        self.cache_write_tokens += other.cache_write_tokens
        self.cache_read_tokens += other.cache_read_tokens

    @property
    def prompt_tokens(self) -> int:
        """Every token of the prompt, cached or not."""
        return self.input_tokens + self.cache_write_tokens + self.cache_read_tokens

    def as_dict(self) -> dict[str, int]:
        """In the Messages API's names; the cache's only when the upstream used it."""
        fields = {"input_tokens": self.input_tokens, "output_tokens": self.output_tokens}
        if self.cache_write_tokens:
            fields["cache_creation_input_tokens"] = self.cache_write_tokens
        if self.cache_read_tokens:
            fields["cache_read_input_tokens"] = self.cache_read_tokens
        return fields


MICRO = 1_000_000  # money is counted in whole micro-dollars, so sums across replicas are exact


@dataclass(frozen=True, slots=True)
class Price:
    """A model's price in USD per million tokens, by kind of token."""

    input: float
    output: float
    cache_write: float = 0.0
    cache_read: float = 0.0

    def micro_usd(self, usage: Usage) -> int:
        """What `usage` costs, in micro-dollars (rounded up: a budget never undercounts).
        A price per million tokens is exactly micro-dollars per token."""
        cost = (
            usage.input_tokens * self.input
            + usage.output_tokens * self.output
            + usage.cache_write_tokens * self.cache_write
            + usage.cache_read_tokens * self.cache_read
        )
        return math.ceil(cost - 1e-9)


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
    stop_sequence: str | None = None  # the one that matched, when stop_reason says so


Delta = TextDelta | PartDelta | StreamEnd


def _block_length(block: Block) -> int:
    if isinstance(block, ToolUseBlock):
        return len(block.name) + len(repr(block.input))
    if isinstance(block, ToolResultBlock):
        return len(block.text())
    if isinstance(block, ImageBlock):
        return 6400  # ~1,600 tokens, what a large image costs
    return 0  # text is counted in `content`; thinking is not billed as input


class Provider(Protocol):
    """One configured upstream (an entry under `providers:` in config).

    A provider that serves tools or images says so with `features` (see `Serves`);
    without it, a request that needs them skips its targets.
    """

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


@runtime_checkable
class Serves(Protocol):
    """A provider that takes more than text: the `Feature`s its requests may use."""

    features: frozenset[Feature]


@runtime_checkable
class CountsTokens(Protocol):
    """A provider whose upstream counts a request's input tokens without answering it."""

    async def count_tokens(self, request: UpstreamRequest, model: ModelRef) -> int: ...


def features_of(provider: Provider) -> frozenset[Feature]:
    return provider.features if isinstance(provider, Serves) else frozenset()


@dataclass(frozen=True, slots=True)
class ModelLifecycle:
    """A model its provider has deprecated (still answers) or retired (fails every call)."""

    model: str
    retired: bool
    deprecated_on: date
    retires_on: date
    replacement: str

    def describe(self) -> str:
        if self.retired:
            return (
                f"{self.model} was retired on {self.retires_on} and fails every request; "
                f"use {self.replacement}"
            )
        return (
            f"{self.model} is deprecated and retires on {self.retires_on}; "
            f"move to {self.replacement}"
        )


@runtime_checkable
class KnowsModelLifecycle(Protocol):
    """A provider that can tell which of its model ids are deprecated or retired."""

    def model_lifecycle(self, model_id: str, today: date) -> ModelLifecycle | None: ...


@dataclass(frozen=True, slots=True)
class ProviderContext:
    """Shared resources a provider may use; owned and closed by the gateway app."""

    http: aiohttp.ClientSession


ProviderFactory = Callable[[str, Mapping[str, Any], ProviderContext], Provider]
"""`factory(name, options, context)`: one configured provider.  `options` is its mapping
from config.yaml (minus `type`); the factory validates it and raises `ValueError` with a
readable message."""
