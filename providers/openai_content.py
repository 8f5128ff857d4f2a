"""Chat Completions content, both ways: the request's messages, tools and tool choice
built from the normalized types (or taken as the client sent them, when the client spoke
Chat Completions: pass-through), and a chunk's tool-call deltas read into part deltas.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import orjson

from providers.base import Message, UpstreamRequest
from providers.content import (
    ImageBlock,
    PartDelta,
    TextBlock,
    ThinkingBlock,
    ToolInputDelta,
    ToolResultBlock,
    ToolUseBlock,
    ToolUseStart,
)

# Fields of a client's body the gateway sets itself on the way up.
_SET_BY_GATEWAY = ("model", "stream", "stream_options", "max_tokens", "max_completion_tokens")
_TOOL_CHOICE = {"auto": "auto", "any": "required", "none": "none"}

# --- request ----------------------------------------------------------------------------


def native_body(request: UpstreamRequest) -> dict[str, Any] | None:
    """The client's own Chat Completions body (minus what the gateway sets), or None when
    the client spoke another protocol.  A system prompt the gateway rewrote replaces the
    body's system and developer messages."""
    native = request.native
    if native is None or native.protocol != "openai":
        return None
    body = {k: v for k, v in native.body.items() if k not in _SET_BY_GATEWAY}
    if native.system is not None:
        turns = [m for m in body["messages"] if m.get("role") not in ("system", "developer")]
        body["messages"] = [{"role": "system", "content": native.system}, *turns]
    return body


def native_token_limit(request: UpstreamRequest) -> dict[str, Any]:
    """The output limit the client's own Chat Completions body set, in its own field
    (`max_completion_tokens` for reasoning models that refuse `max_tokens`); none if it
    set none."""
    assert request.native is not None
    fields = ("max_tokens", "max_completion_tokens")
    return {k: request.native.body[k] for k in fields if k in request.native.body}


def translated_fields(request: UpstreamRequest, dropped: set[str]) -> dict[str, Any]:
    """The Chat Completions fields for a request that came in another protocol: messages
    (the system prompt first), tools and tool choice.  What they cannot carry (thinking,
    `top_k`, documents) is named in `dropped`."""
    messages: list[dict[str, Any]] = []
    if request.system:
        messages.append({"role": "system", "content": request.system})
    for message in request.messages:
        messages.extend(_messages(message, dropped))
    fields: dict[str, Any] = {"messages": messages}
    if request.native is not None:
        dropped.update(request.native.untranslated)
    if request.top_k is not None:
        dropped.add("top_k")
    if request.tools:
        fields["tools"] = [
            {
                "type": "function",
                "function": {
                    "name": tool.name,
                    **({"description": tool.description} if tool.description else {}),
                    "parameters": dict(tool.input_schema),
                },
            }
            for tool in request.tools
        ]
    choice = request.tool_choice
    if choice is not None and request.tools:
        if choice.type == "tool":
            fields["tool_choice"] = {"type": "function", "function": {"name": choice.name}}
        else:
            fields["tool_choice"] = _TOOL_CHOICE[choice.type]
        if not choice.parallel:
            fields["parallel_tool_calls"] = False
    return fields


def _messages(message: Message, dropped: set[str]) -> Iterator[dict[str, Any]]:
    """One normalized turn as Chat Completions messages: a user turn's tool results
    become `tool` messages (first: they must follow the assistant's calls)."""
    if not message.blocks:
        yield {"role": message.role, "content": message.content}
        return
    if message.role == "assistant":
        yield _assistant(message, dropped)
        return
    parts: list[dict[str, Any]] = []
    for block in message.blocks:
        if isinstance(block, ToolResultBlock):
            if any(isinstance(part, ImageBlock) for part in block.content):
                dropped.add("image in tool_result")
            # Chat Completions has no error flag on a tool result: it is said in words.
            text = f"Error: {block.text()}" if block.is_error else block.text()
            yield {"role": "tool", "tool_call_id": block.tool_use_id, "content": text}
        elif isinstance(block, TextBlock):
            parts.append({"type": "text", "text": block.text})
        elif isinstance(block, ImageBlock):
            parts.append({"type": "image_url", "image_url": {"url": _image_url(block)}})
        else:
            dropped.add(_kind(block))
    if parts:
        only_text = all(part["type"] == "text" for part in parts)
        content = "".join(p["text"] for p in parts) if only_text else parts
        yield {"role": "user", "content": content}


def _assistant(message: Message, dropped: set[str]) -> dict[str, Any]:
    text, calls = [], []
    for block in message.blocks:
        if isinstance(block, TextBlock):
            text.append(block.text)
        elif isinstance(block, ToolUseBlock):
            arguments = orjson.dumps(dict(block.input)).decode()
            calls.append(
                {
                    "id": block.id,
                    "type": "function",
                    "function": {"name": block.name, "arguments": arguments},
                }
            )
        else:
            dropped.add(_kind(block))
    turn: dict[str, Any] = {"role": "assistant", "content": "".join(text) or None}
    if calls:
        turn["tool_calls"] = calls
    return turn


def _kind(block: object) -> str:
    if isinstance(block, ThinkingBlock):
        return "thinking"
    kind = getattr(block, "kind", None)
    return kind if isinstance(kind, str) else type(block).__name__.removesuffix("Block").lower()


def _image_url(image: ImageBlock) -> str:
    return image.url or f"data:{image.media_type};base64,{image.data}"


# --- stream -----------------------------------------------------------------------------


class ToolCallReader:
    """A choice's `tool_calls` deltas → part deltas.  A call's first delta carries its
    id and name; the rest carry pieces of its arguments, by the call's `index`."""

    def __init__(self) -> None:
        self._current: int | None = None

    def read(self, calls: Iterable[Mapping[str, Any]]) -> Iterator[PartDelta]:
        for call in calls:
            function = call.get("function") or {}
            if call.get("id"):
                self._current = call.get("index", 0)
                yield ToolUseStart(str(call["id"]), str(function.get("name") or ""))
            if function.get("arguments") and call.get("index", 0) == self._current:
                yield ToolInputDelta(str(function["arguments"]))
