"""Request bodies of the public contract (integration guide) → `UpstreamRequest`.

Unknown fields are ignored, so front ends may send more than the gateway reads.  Content
may be a string or a list of text blocks (`[{"type":"text","text":"..."}]`), which are
joined; the first message must come from the user.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Annotated, Any, Literal, Protocol, Self, TypeVar

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ModelWrapValidatorHandler,
    PrivateAttr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from providers.base import Message, UpstreamRequest
from providers.errors import InvalidBody, InvalidRequest


def max_tokens_in_range(value: int | None, info: ValidationInfo) -> int | None:
    """A validator for every route's `max_tokens`: between 1 and `server.max_tokens_limit`
    (given as the validation context by `parse_body`)."""
    limit = (info.context or {}).get("max_tokens_limit", 64_000)
    if value is not None and not 1 <= value <= limit:
        raise ValueError(f"must be between 1 and {limit}")
    return value


class KeepsRaw(BaseModel):
    """A body that keeps the JSON object it was read from (`raw`): a drop-in API's body
    passes through unchanged to a target of the same API."""

    _raw: dict[str, Any] = PrivateAttr(default_factory=dict)

    @model_validator(mode="wrap")
    @classmethod
    def _keep_raw(cls, data: Any, handler: ModelWrapValidatorHandler[Self]) -> Self:
        body = handler(data)
        body._raw = data if isinstance(data, dict) else {}
        return body

    def unknown_fields(self, known: Collection[str]) -> frozenset[str]:
        """The body's fields outside `known`."""
        return frozenset(name for name in self._raw if name not in known)


class TextBlock(BaseModel):
    type: Literal["text"]
    text: str


class ChatMessage(BaseModel):
    role: Literal["user", "assistant"]
    content: str | list[TextBlock]

    def text(self) -> str:
        if isinstance(self.content, str):
            return self.content
        return "".join(block.text for block in self.content)


class _Options(BaseModel):
    """Fields both endpoints accept."""

    model_config = ConfigDict(extra="ignore", str_strip_whitespace=False)

    temperature: Annotated[float, Field(ge=0, le=1)] | None = None
    top_p: Annotated[float, Field(gt=0, le=1)] | None = None
    top_k: Annotated[int, Field(ge=1)] | None = None
    stop_sequences: Annotated[list[Annotated[str, Field(min_length=1)]], Field(max_length=16)] = []
    model: Annotated[str, Field(min_length=1, max_length=200)] | None = None
    metadata: dict[str, Any] | None = None

    _max_tokens_in_range = field_validator("max_tokens", check_fields=False)(max_tokens_in_range)

    def _user_id(self) -> str | None:
        user_id = (self.metadata or {}).get("user_id")
        return str(user_id) if user_id is not None else None


class ChatBody(_Options):
    messages: Annotated[list[ChatMessage], Field(min_length=1, max_length=1000)]
    system: str | None = None
    max_tokens: int = 2048

    @field_validator("messages")
    @classmethod
    def _starts_with_user(cls, messages: list[ChatMessage]) -> list[ChatMessage]:
        if messages[0].role != "user":
            raise ValueError("the first message must have role 'user'")
        for i, message in enumerate(messages):
            if message.role == "user" and not message.text().strip():
                raise ValueError(f"message {i} (role 'user') has empty content")
        return messages

    def to_upstream(self) -> UpstreamRequest:
        return UpstreamRequest(
            messages=tuple(Message(m.role, m.text()) for m in self.messages),
            max_tokens=self.max_tokens,
            system=self.system or None,
            temperature=self.temperature,
            top_p=self.top_p,
            top_k=self.top_k,
            stop_sequences=tuple(self.stop_sequences),
            user_id=self._user_id(),
        )


class GenerateBody(_Options):
    prompt: Annotated[str, Field(min_length=1)]
    system_prompt: str | None = None
    max_tokens: int = 1024

    @field_validator("prompt")
    @classmethod
    def _not_blank(cls, prompt: str) -> str:
        if not prompt.strip():
            raise ValueError("must not be blank")
        return prompt

    def to_upstream(self) -> UpstreamRequest:
        return UpstreamRequest(
            messages=(Message("user", self.prompt),),
            max_tokens=self.max_tokens,
            system=self.system_prompt or None,
            temperature=self.temperature,
            top_p=self.top_p,
            top_k=self.top_k,
            stop_sequences=tuple(self.stop_sequences),
            user_id=self._user_id(),
        )


class RequestBody(Protocol):
    """A validated request body of any route: the model it names, and the normalized
    request it stands for."""

    @property
    def model(self) -> str | None: ...

    @classmethod
    def model_validate(cls, obj: Any, *, context: Any = None) -> Self: ...

    def to_upstream(self) -> UpstreamRequest: ...


_Body = TypeVar("_Body", bound=RequestBody)


def parse_body(model: type[_Body], data: Any, max_tokens_limit: int) -> _Body:
    """Validate a decoded JSON body; failures become one readable `InvalidRequest` (422)."""
    if not isinstance(data, dict):
        raise InvalidRequest("The request body must be a JSON object.")
    try:
        return model.model_validate(data, context={"max_tokens_limit": max_tokens_limit})
    except ValidationError as exc:
        raise InvalidBody(_describe(exc)) from None


def _describe(exc: ValidationError) -> str:
    problems: list[str] = []
    for error in exc.errors():
        loc = [str(part) for part in error["loc"]]
        message = error["msg"].removeprefix("Value error, ")
        if error["type"] == "missing":
            message = "is required"
        if "content" in loc and error["type"] != "value_error":
            # the str | list[TextBlock] union reports once per member
            loc = loc[: loc.index("content") + 1]
            message = 'must be a string or a list of {"type":"text","text":...} blocks'
        problem = f"{'.'.join(loc)}: {message}" if loc else message
        if problem not in problems:
            problems.append(problem)
    return "Invalid request: " + "; ".join(problems[:3])
