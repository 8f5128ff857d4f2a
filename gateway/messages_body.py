"""The Messages API request → `UpstreamRequest`: content blocks, tools and tool choice in
normalized form (for a target of another protocol), and the body itself as `Native` (for
an Anthropic target, which gets it unchanged, unknown fields included).

Blocks are checked as far as a translation needs them; a block type this gateway does not
know (a document, a search result) is kept for pass-through and dropped, said so, in
translation.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    field_validator,
)

from gateway.schemas import KeepsRaw, max_tokens_in_range
from providers.base import Message, UpstreamRequest
from providers.content import (
    Block,
    ImageBlock,
    Native,
    OtherBlock,
    RedactedThinkingBlock,
    TextBlock,
    ThinkingBlock,
    Tool,
    ToolChoice,
    ToolResultBlock,
    ToolUseBlock,
)

# The body's fields that the normalized request carries; any other is reported dropped
# when the request is translated for a target of another protocol.
_NORMALIZED = {
    "model",
    "messages",
    "max_tokens",
    "system",
    "stop_sequences",
    "temperature",
    "top_p",
    "top_k",
    "metadata",
    "stream",
    "tools",
    "tool_choice",
}
_CHOICES = ("auto", "any", "none", "tool")


class MessageIn(BaseModel):
    role: Literal["user", "assistant"]
    content: Any  # str, or a tuple of normalized blocks once validated

    @field_validator("content", mode="before")
    @classmethod
    def _blocks(cls, content: Any) -> str | tuple[Block, ...]:
        if isinstance(content, str):
            return content
        if not isinstance(content, list):
            raise ValueError("must be a string or a list of content blocks")
        return tuple(_block(block, f"block {i}") for i, block in enumerate(content))

    def to_message(self) -> Message:
        if isinstance(self.content, str):
            return Message(self.role, self.content)
        text = "".join(b.text for b in self.content if isinstance(b, TextBlock))
        return Message(self.role, text, self.content)


class MessagesBody(KeepsRaw):
    """The Messages API request, as far as the gateway reads it."""

    model_config = ConfigDict(extra="ignore")

    model: Annotated[str, Field(min_length=1, max_length=200)]
    messages: Annotated[list[MessageIn], Field(min_length=1, max_length=1000)]
    max_tokens: int
    system: Any = None
    stop_sequences: Annotated[
        list[Annotated[str, Field(min_length=1)]], Field(default_factory=list, max_length=16)
    ]
    temperature: Annotated[float, Field(ge=0, le=1)] | None = None
    top_p: Annotated[float, Field(gt=0, le=1)] | None = None
    top_k: Annotated[int, Field(ge=1)] | None = None
    metadata: dict[str, Any] | None = None
    stream: bool = False
    tools: Annotated[list[Any], Field(default_factory=list, max_length=1000)]
    tool_choice: dict[str, Any] | None = None

    _max_tokens_in_range = field_validator("max_tokens")(max_tokens_in_range)

    @field_validator("system", mode="before")
    @classmethod
    def _system_text(cls, system: Any) -> str | None:
        if system is None or isinstance(system, str):
            return system
        if isinstance(system, list) and all(
            isinstance(b, dict) and b.get("type") == "text" and isinstance(b.get("text"), str)
            for b in system
        ):
            return "".join(b["text"] for b in system)
        raise ValueError('must be a string or a list of {"type":"text","text":...} blocks')

    @field_validator("messages")
    @classmethod
    def _starts_with_user(cls, messages: list[MessageIn]) -> list[MessageIn]:
        if messages[0].role != "user":
            raise ValueError("the first message must have role 'user'")
        return messages

    @field_validator("tools")
    @classmethod
    def _known_tools(cls, tools: list[Any]) -> list[Any]:
        for i, tool in enumerate(tools):
            if not isinstance(tool, dict):
                raise ValueError(f"{i}: must be a tool object")
            custom = tool.get("type", "custom") == "custom"
            if custom and not (
                isinstance(tool.get("name"), str) and isinstance(tool.get("input_schema"), dict)
            ):
                raise ValueError(f"{i}: a tool needs a 'name' and an 'input_schema' object")
        return tools

    @field_validator("tool_choice")
    @classmethod
    def _choice(cls, choice: dict[str, Any] | None) -> dict[str, Any] | None:
        if choice is not None and choice.get("type") not in _CHOICES:
            raise ValueError(f"type must be one of {', '.join(_CHOICES)}")
        if choice is not None and choice["type"] == "tool" and not choice.get("name"):
            raise ValueError("a choice of type 'tool' names the tool")
        return choice

    def to_upstream(self) -> UpstreamRequest:
        user_id = (self.metadata or {}).get("user_id")
        custom = [t for t in self.tools if t.get("type", "custom") == "custom"]
        untranslated = self.unknown_fields(_NORMALIZED) | {
            f"tool {t.get('name') or t['type']}" for t in self.tools if t not in custom
        }
        return UpstreamRequest(
            messages=tuple(m.to_message() for m in self.messages),
            max_tokens=self.max_tokens,
            system=self.system or None,
            temperature=self.temperature,
            top_p=self.top_p,
            top_k=self.top_k,
            stop_sequences=tuple(self.stop_sequences),
            user_id=str(user_id) if user_id is not None else None,
            tools=tuple(
                Tool(t["name"], str(t.get("description") or ""), t["input_schema"]) for t in custom
            ),
            tool_choice=_tool_choice(self.tool_choice),
            native=Native("anthropic", self._raw, frozenset(untranslated)),
        )


def _tool_choice(choice: Mapping[str, Any] | None) -> ToolChoice | None:
    if choice is None:
        return None
    parallel = not choice.get("disable_parallel_tool_use", False)
    return ToolChoice(choice["type"], choice.get("name"), parallel)


def _block(block: Any, where: str) -> Block:
    """One content block, checked as far as a translation reads it."""
    if not isinstance(block, dict) or not isinstance(block.get("type"), str):
        raise ValueError(f"{where}: must be a content block object with a 'type'")
    kind = block["type"]
    try:
        if kind == "text":
            return TextBlock(_str(block, "text"))
        if kind == "image":
            return _image(block["source"])
        if kind == "tool_use":
            if not isinstance(block.get("input"), dict):
                raise ValueError("'input' must be an object")
            return ToolUseBlock(_str(block, "id"), _str(block, "name"), block["input"])
        if kind == "tool_result":
            return _tool_result(block, where)
        if kind == "thinking":
            return ThinkingBlock(_str(block, "thinking"), _str(block, "signature"))
        if kind == "redacted_thinking":
            return RedactedThinkingBlock(_str(block, "data"))
    except (KeyError, TypeError, ValueError) as problem:
        raise ValueError(f"{where}: not a valid '{kind}' block ({problem})") from None
    return OtherBlock(kind)


def _tool_result(block: dict[str, Any], where: str) -> ToolResultBlock:
    content = block.get("content", "")
    if isinstance(content, str):
        parts: tuple[TextBlock | ImageBlock, ...] = (TextBlock(content),) if content else ()
    else:
        parsed = [_block(part, f"{where}, its block {i}") for i, part in enumerate(content)]
        parts = tuple(p for p in parsed if isinstance(p, TextBlock | ImageBlock))
    return ToolResultBlock(_str(block, "tool_use_id"), parts, bool(block.get("is_error")))


def _image(source: Any) -> ImageBlock:
    if source.get("type") == "base64":
        return ImageBlock(_str(source, "media_type"), _str(source, "data"))
    if source.get("type") == "url":
        return ImageBlock(url=_str(source, "url"))
    raise ValueError("the source must be of type 'base64' or 'url'")


def _str(fields: Mapping[str, Any], name: str) -> str:
    value = fields[name]
    if not isinstance(value, str):
        raise TypeError(f"'{name}' must be a string")
    return value
