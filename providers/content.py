"""Content beyond plain text, in the gateway's normalized form: the blocks a message may
hold (text, images, tool calls and their results, thinking), the tools a request offers,
and the deltas a provider streams for them.

Normalized because a chain may hand a request from an Anthropic target to an
OpenAI-compatible one: each provider translates from and to these types, never from
another provider's wire format.  What a translation cannot carry is named in
`ModelRef.dropped`.  `Native` keeps the client's own body, so that a target speaking the
route's protocol gets it unchanged (pass-through, unknown fields included).

A stream's blocks have no explicit boundaries: a delta of another kind than the one
before, a `ToolUseStart`, or thinking after a `SignatureDelta` starts a new block.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

WireProtocol = Literal["anthropic", "openai"]
Feature = Literal["tools", "images"]


# --- what a request holds ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TextBlock:
    text: str


@dataclass(frozen=True, slots=True)
class ImageBlock:
    """An image given inline (`data`, base64, with its `media_type`) or by `url`."""

    media_type: str = ""
    data: str = ""
    url: str = ""


@dataclass(frozen=True, slots=True)
class ToolUseBlock:
    """A call the assistant made (sent back by the client in the next turn)."""

    id: str
    name: str
    input: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class ToolResultBlock:
    """The client's answer to a tool call."""

    tool_use_id: str
    content: tuple[TextBlock | ImageBlock, ...] = ()
    is_error: bool = False

    def text(self) -> str:
        return "".join(part.text for part in self.content if isinstance(part, TextBlock))


@dataclass(frozen=True, slots=True)
class ThinkingBlock:
    """Anthropic's extended thinking; the signature is only valid with Anthropic models."""

    thinking: str
    signature: str = ""


@dataclass(frozen=True, slots=True)
class RedactedThinkingBlock:
    data: str


@dataclass(frozen=True, slots=True)
class OtherBlock:
    """A block only its own protocol knows (a document, a search result): it passes
    through to that protocol and is dropped, and said so, in translation."""

    kind: str


Block = (
    TextBlock
    | ImageBlock
    | ToolUseBlock
    | ToolResultBlock
    | ThinkingBlock
    | RedactedThinkingBlock
    | OtherBlock
)


@dataclass(frozen=True, slots=True)
class Tool:
    """A tool the model may call: its name, what it does, and its input's JSON Schema."""

    name: str
    description: str = ""
    input_schema: Mapping[str, Any] = field(default_factory=lambda: {"type": "object"})


@dataclass(frozen=True, slots=True)
class ToolChoice:
    """`auto` (the model decides), `any` (some tool), `none`, or `tool` (the one named)."""

    type: Literal["auto", "any", "none", "tool"] = "auto"
    name: str | None = None
    parallel: bool = True


@dataclass(frozen=True, slots=True)
class Native:
    """The client's request body as its route received it, in `protocol`.

        `untranslated` names the body's fields the route could not put in normalized form (a
        target of another protocol reports them dropped).  `headers` are the client's headers
        that belong to the body (`anthropic-version`, and `anthropic-beta`: a beta field needs
    its header).  `system`
        is set when the gateway rewrote the system prompt (date context): a target speaking
        `protocol` then takes that text in place of the body's own.
    """

    protocol: WireProtocol
    body: Mapping[str, Any]
    untranslated: frozenset[str] = frozenset()
    headers: Mapping[str, str] = field(default_factory=dict)
    system: str | None = None


# --- what a stream holds ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ThinkingDelta:
    thinking: str


@dataclass(frozen=True, slots=True)
class SignatureDelta:
    """Ends the thinking block it signs."""

    signature: str


@dataclass(frozen=True, slots=True)
class RedactedThinkingDelta:
    """A whole redacted thinking block."""

    data: str


@dataclass(frozen=True, slots=True)
class ToolUseStart:
    """Starts a tool call; its input follows as `ToolInputDelta`s of JSON text."""

    id: str
    name: str


@dataclass(frozen=True, slots=True)
class ToolInputDelta:
    partial_json: str


@dataclass(frozen=True, slots=True)
class NativeBlock:
    """A block only its protocol knows (a server tool's call or result), opened as the
    upstream sent it: a route of that protocol passes it on, another leaves it out.  A
    server tool's input follows as `ToolInputDelta`s."""

    protocol: WireProtocol
    block: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class NativeDelta:
    """A delta only its protocol knows (a citation), for the open block."""

    protocol: WireProtocol
    delta: Mapping[str, Any]


PartDelta = (
    ThinkingDelta
    | SignatureDelta
    | RedactedThinkingDelta
    | ToolUseStart
    | ToolInputDelta
    | NativeBlock
    | NativeDelta
)


def part_length(delta: PartDelta) -> int:
    """Characters a part delta streamed, for estimates of output tokens."""
    if isinstance(delta, ThinkingDelta):
        return len(delta.thinking)
    if isinstance(delta, ToolInputDelta):
        return len(delta.partial_json)
    if isinstance(delta, ToolUseStart):
        return len(delta.name)
    return 0  # signatures and redacted thinking are not output the model wrote
