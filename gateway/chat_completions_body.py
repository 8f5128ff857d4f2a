"""The Chat Completions request → `UpstreamRequest`: system and developer messages become
the system prompt, assistant `tool_calls` tool-use blocks, `tool` messages tool results
(in the user turn that follows), image parts images; and the body itself as `Native`, for
an OpenAI-compatible target, which gets it unchanged (unknown fields included).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Any, Literal, Self

import orjson
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

from gateway.schemas import KeepsRaw, max_tokens_in_range
from providers.base import Message, UpstreamRequest
from providers.content import (
    Block,
    ImageBlock,
    Native,
    OtherBlock,
    TextBlock,
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
    "max_completion_tokens",
    "temperature",
    "top_p",
    "stop",
    "user",
    "n",
    "stream",
    "stream_options",
    "tools",
    "tool_choice",
    "parallel_tool_calls",
}
_CHOICES: dict[str, Literal["auto", "any", "none"]] = {
    "auto": "auto",
    "required": "any",
    "none": "none",
}


class FunctionCall(BaseModel):
    model_config = ConfigDict(extra="ignore")

    name: str
    arguments: str


class ToolCall(BaseModel):
    model_config = ConfigDict(extra="ignore")

    id: str
    type: Literal["function"] = "function"
    function: FunctionCall


class ChatMessageIn(BaseModel):
    model_config = ConfigDict(extra="ignore")

    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: Any = None  # str, None, or a tuple of normalized blocks once validated
    tool_calls: list[ToolCall] = []
    tool_call_id: str | None = None

    @field_validator("content", mode="before")
    @classmethod
    def _parts(cls, content: Any) -> str | tuple[Block, ...] | None:
        if content is None or isinstance(content, str):
            return content
        if not isinstance(content, list):
            raise ValueError("must be a string or a list of content parts")
        return tuple(_part(part, i) for i, part in enumerate(content))

    @model_validator(mode="after")
    def _tool_answers_a_call(self) -> Self:
        if self.role == "tool" and not self.tool_call_id:
            raise ValueError("a 'tool' message needs the 'tool_call_id' it answers")
        return self

    def text(self) -> str:
        if self.content is None or isinstance(self.content, str):
            return self.content or ""
        return "".join(b.text for b in self.content if isinstance(b, TextBlock))

    def blocks(self) -> tuple[Block, ...]:
        """The message's content as blocks (a tool message: one tool result)."""
        if self.role == "tool":
            assert self.tool_call_id is not None
            return (ToolResultBlock(self.tool_call_id, _text_parts(self.text())),)
        content = self.content if isinstance(self.content, tuple) else _text_parts(self.content)
        calls = tuple(ToolUseBlock(c.id, c.function.name, _arguments(c)) for c in self.tool_calls)
        return content + calls


class StreamOptions(BaseModel):
    model_config = ConfigDict(extra="ignore")

    include_usage: bool = False


class ChatCompletionsBody(KeepsRaw):
    """The Chat Completions request, as far as the gateway reads it."""

    model_config = ConfigDict(extra="ignore")

    model: Annotated[str, Field(min_length=1, max_length=200)]
    messages: Annotated[list[ChatMessageIn], Field(min_length=1, max_length=1000)]
    max_tokens: int | None = None
    max_completion_tokens: int | None = None
    temperature: Annotated[float, Field(ge=0, le=2)] | None = None  # (Anthropic: capped at 1)
    top_p: Annotated[float, Field(gt=0, le=1)] | None = None
    stop: (
        str | Annotated[list[Annotated[str, Field(min_length=1)]], Field(max_length=16)] | None
    ) = None
    user: str | None = None
    n: Annotated[int, Field(ge=1, le=1)] = 1
    stream: bool = False
    stream_options: StreamOptions | None = None
    tools: Annotated[list[dict[str, Any]], Field(default_factory=list, max_length=1000)]
    tool_choice: str | dict[str, Any] | None = None
    parallel_tool_calls: bool = True

    _max_tokens_in_range = field_validator("max_tokens", "max_completion_tokens")(
        max_tokens_in_range
    )

    @model_validator(mode="after")
    def _a_user_speaks(self) -> Self:
        if not any(m.role == "user" for m in self.messages):
            raise ValueError("messages: at least one message must have role 'user'")
        return self

    @field_validator("tools")
    @classmethod
    def _functions(cls, tools: list[dict[str, Any]]) -> list[dict[str, Any]]:
        for i, tool in enumerate(tools):
            function = tool.get("function")
            if tool.get("type") == "function" and not (
                isinstance(function, dict) and isinstance(function.get("name"), str)
            ):
                raise ValueError(f"{i}: a function tool needs a 'function' with a 'name'")
        return tools

    @field_validator("tool_choice")
    @classmethod
    def _choice(cls, choice: str | dict[str, Any] | None) -> str | dict[str, Any] | None:
        if isinstance(choice, str) and choice not in _CHOICES:
            raise ValueError(f"must be one of {', '.join(_CHOICES)} or a function")
        if isinstance(choice, dict) and not isinstance(
            (choice.get("function") or {}).get("name"), str
        ):
            raise ValueError("a function choice names the function")
        return choice

    def to_upstream(self) -> UpstreamRequest:
        system = "\n\n".join(m.text() for m in self.messages if m.role in ("system", "developer"))
        stop = [self.stop] if isinstance(self.stop, str) else list(self.stop or [])
        functions = [t for t in self.tools if t.get("type") == "function"]
        untranslated = self.unknown_fields(_NORMALIZED) | {
            f"tool {t.get('type')}" for t in self.tools if t not in functions
        }
        return UpstreamRequest(
            messages=tuple(_turns(self.messages)),
            max_tokens=self.max_completion_tokens or self.max_tokens or 4096,
            system=system or None,
            temperature=self.temperature,
            top_p=self.top_p,
            stop_sequences=tuple(stop),
            user_id=self.user,
            tools=tuple(_tool(t["function"]) for t in functions),
            tool_choice=self._tool_choice(),
            native=Native("openai", self._raw, frozenset(untranslated)),
        )

    def _tool_choice(self) -> ToolChoice | None:
        choice = self.tool_choice
        if choice is None:
            return None if self.parallel_tool_calls else ToolChoice(parallel=False)
        if isinstance(choice, str):
            return ToolChoice(_CHOICES[choice], parallel=self.parallel_tool_calls)
        return ToolChoice("tool", choice["function"]["name"], self.parallel_tool_calls)


def _turns(messages: list[ChatMessageIn]) -> Iterator[Message]:
    """User and assistant turns, starting with the user's; `tool` messages and the user
    message after them are one user turn (its tool results first)."""
    pending: list[Block] = []
    started = False
    for message in messages:
        if message.role in ("system", "developer"):
            continue
        if message.role == "assistant":
            if pending:
                yield _user(pending)
                pending = []
            if started:
                yield _with_blocks("assistant", message)
            continue
        started = True
        if message.role == "tool" or isinstance(message.content, tuple):
            pending.extend(message.blocks())
        else:
            pending.append(TextBlock(message.text()))
    if pending:
        yield _user(pending)


def _user(blocks: list[Block]) -> Message:
    if all(isinstance(b, TextBlock) for b in blocks):
        return Message("user", "".join(b.text for b in blocks if isinstance(b, TextBlock)))
    text = "".join(b.text for b in blocks if isinstance(b, TextBlock))
    return Message("user", text, tuple(blocks))


def _with_blocks(role: Literal["assistant"], message: ChatMessageIn) -> Message:
    if not message.tool_calls and not isinstance(message.content, tuple):
        return Message(role, message.text())
    return Message(role, message.text(), message.blocks())


def _tool(function: dict[str, Any]) -> Tool:
    schema = function.get("parameters") or {"type": "object", "properties": {}}
    return Tool(function["name"], str(function.get("description") or ""), schema)


def _arguments(call: ToolCall) -> dict[str, Any]:
    """A call's arguments as an object (what other protocols take); text that is not a JSON
    object becomes `{}`: only a target of this protocol gets it as it was."""
    try:
        value = orjson.loads(call.function.arguments or "{}")
    except orjson.JSONDecodeError:
        return {}
    return value if isinstance(value, dict) else {}


def _text_parts(content: str | None) -> tuple[TextBlock, ...]:
    return (TextBlock(content),) if content else ()


def _part(part: Any, index: int) -> Block:
    if not isinstance(part, dict) or not isinstance(part.get("type"), str):
        raise ValueError(f"part {index}: must be a content part object with a 'type'")
    kind = part["type"]
    if kind == "text" and isinstance(part.get("text"), str):
        return TextBlock(part["text"])
    if kind == "image_url" and isinstance((part.get("image_url") or {}).get("url"), str):
        return _image(part["image_url"]["url"])
    if kind in ("text", "image_url"):
        raise ValueError(f"part {index}: not a valid '{kind}' part")
    return OtherBlock(kind)


def _image(url: str) -> ImageBlock:
    """`data:<type>;base64,<data>` inline, or a URL the upstream fetches."""
    if url.startswith("data:"):
        header, _, data = url.partition(",")
        media_type = header.removeprefix("data:").removesuffix(";base64")
        return ImageBlock(media_type, data)
    return ImageBlock(url=url)
