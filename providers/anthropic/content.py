"""The Messages API's content, both ways: the request's messages, tools and tool choice
built from the normalized types (or taken as the client sent them, when the client spoke
the Messages API: pass-through), and the stream's content blocks read into deltas.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from providers.base import Message, UpstreamRequest, Usage
from providers.content import (
    Block,
    ImageBlock,
    NativeBlock,
    NativeDelta,
    PartDelta,
    RedactedThinkingBlock,
    RedactedThinkingDelta,
    SignatureDelta,
    TextBlock,
    ThinkingBlock,
    ThinkingDelta,
    ToolInputDelta,
    ToolResultBlock,
    ToolUseBlock,
    ToolUseStart,
)

# Fields of a client's Messages API body the gateway sets itself on the way up.
_SET_BY_GATEWAY = ("model", "stream")

# --- request ----------------------------------------------------------------------------


def native_body(request: UpstreamRequest) -> dict[str, Any] | None:
    """The client's own Messages API body (minus what the gateway sets), or None when the
    client spoke another protocol.  A system prompt the gateway rewrote replaces its own."""
    native = request.native
    if native is None or native.protocol != "anthropic":
        return None
    body = {k: v for k, v in native.body.items() if k not in _SET_BY_GATEWAY}
    if native.system is not None:
        body["system"] = native.system
    return body


def native_headers(request: UpstreamRequest) -> Mapping[str, str]:
    """The client's headers that go with its own Messages API body (`anthropic-beta`)."""
    native = request.native
    return native.headers if native is not None and native.protocol == "anthropic" else {}


def translated_fields(request: UpstreamRequest, dropped: set[str]) -> dict[str, Any]:
    """The Messages API fields for a request that came in another protocol: its messages,
    system prompt, tools and tool choice.  Untranslatable content is named in `dropped`."""
    messages = [_message(m, dropped) for m in request.messages]
    # The API refuses an empty turn but a final assistant one; an empty answer the client
    # kept in its history (Chat Completions allows it) says nothing, so it is left out.
    last = len(messages) - 1
    fields: dict[str, Any] = {
        "messages": [m for i, m in enumerate(messages) if m["content"] or i == last]
    }
    if request.native is not None:
        dropped.update(request.native.untranslated)
    if request.system:
        fields["system"] = request.system
    if request.tools:
        fields["tools"] = [
            {
                "name": tool.name,
                **({"description": tool.description} if tool.description else {}),
                "input_schema": dict(tool.input_schema),
            }
            for tool in request.tools
        ]
    choice = request.tool_choice
    if choice is not None and (request.tools or choice.type == "none"):
        fields["tool_choice"] = {"type": choice.type}
        if choice.name is not None:
            fields["tool_choice"]["name"] = choice.name
        if not choice.parallel and choice.type != "none":
            fields["tool_choice"]["disable_parallel_tool_use"] = True
    return fields


def capped_temperature(request: UpstreamRequest, dropped: set[str]) -> float | None:
    """The request's temperature within the Messages API's 0 to 1 (a Chat Completions
    client may send up to 2: it is capped at 1, and said so)."""
    if request.temperature is not None and request.temperature > 1:
        dropped.add("temperature above 1")
        return 1.0
    return request.temperature


def _message(message: Message, dropped: set[str]) -> dict[str, Any]:
    if not message.blocks:
        return {"role": message.role, "content": message.content}
    content = [b for b in (_block(block, dropped) for block in message.blocks) if b is not None]
    # The API wants a user turn's tool results before anything else in it.
    content.sort(key=lambda block: block["type"] != "tool_result")
    return {"role": message.role, "content": content}


def _block(block: Block, dropped: set[str]) -> dict[str, Any] | None:
    if isinstance(block, TextBlock):
        return {"type": "text", "text": block.text} if block.text else None
    if isinstance(block, ImageBlock):
        return {"type": "image", "source": _image_source(block)}
    if isinstance(block, ToolUseBlock):
        return {"type": "tool_use", "id": block.id, "name": block.name, "input": dict(block.input)}
    if isinstance(block, ToolResultBlock):
        result: dict[str, Any] = {"type": "tool_result", "tool_use_id": block.tool_use_id}
        parts = [_block(part, dropped) for part in block.content]
        result["content"] = [part for part in parts if part is not None]
        if block.is_error:
            result["is_error"] = True
        return result
    if isinstance(block, ThinkingBlock):
        return {"type": "thinking", "thinking": block.thinking, "signature": block.signature}
    if isinstance(block, RedactedThinkingBlock):
        return {"type": "redacted_thinking", "data": block.data}
    dropped.add(block.kind)
    return None


def _image_source(image: ImageBlock) -> dict[str, str]:
    if image.url:
        return {"type": "url", "url": image.url}
    return {"type": "base64", "media_type": image.media_type, "data": image.data}


def final_text(message: Mapping[str, Any]) -> str | None:
    """The text of a final assistant turn (a prefill), or None when it holds more than
    text (a tool call is not a prefill)."""
    content = message["content"]
    if isinstance(content, str):
        return content
    if all(isinstance(b, Mapping) and b.get("type") == "text" for b in content):
        return "".join(str(b.get("text", "")) for b in content)
    return None


# --- stream -----------------------------------------------------------------------------


def read_usage(reported: Mapping[str, Any], usage: Usage) -> None:
    """The counts a `message_start` or `message_delta` reports, into `usage` (a later
    event's count replaces an earlier one; a count it leaves out stays)."""
    for name, field in _USAGE_FIELDS:
        if reported.get(name) is not None:
            setattr(usage, field, int(reported[name]))


_USAGE_FIELDS = (
    ("input_tokens", "input_tokens"),
    ("output_tokens", "output_tokens"),
    ("cache_creation_input_tokens", "cache_write_tokens"),
    ("cache_read_input_tokens", "cache_read_tokens"),
)


def block_start(block: Mapping[str, Any]) -> PartDelta | None:
    """The delta a `content_block_start` opens with: none for plain text and thinking
    (their deltas open them), a tool call, a redacted thinking block, or any other block as
    the API sent it (`NativeBlock`: a server tool's call or result, text with citations)."""
    kind = block.get("type")
    if kind == "thinking" or (kind == "text" and block.keys() <= {"type", "text"}):
        return None
    if kind == "tool_use":
        return ToolUseStart(str(block["id"]), str(block["name"]))
    if kind == "redacted_thinking":
        return RedactedThinkingDelta(str(block["data"]))
    return NativeBlock("anthropic", block)


def part_of(delta: Mapping[str, Any]) -> PartDelta | None:
    """A `content_block_delta`'s delta that is not text, as a part delta (one this
    gateway does not know, a citation say, as the API sent it: `NativeDelta`)."""
    kind = delta.get("type")
    if kind == "input_json_delta":
        return ToolInputDelta(str(delta["partial_json"]))
    if kind == "thinking_delta":
        return ThinkingDelta(str(delta["thinking"]))
    if kind == "signature_delta":
        return SignatureDelta(str(delta["signature"]))
    return NativeDelta("anthropic", delta)
