"""OpenAI Chat Completions on the gateway: `POST /v1/chat/completions`, for apps on the
official `openai` SDKs (they set `base_url` to the gateway's `/v1` and their tenant key as
the API key).

The same path as the guide's routes (tenant, limits, chain, fallback, accounting), with
Chat Completions' request and answer: streamed as `chat.completion.chunk`s ending in
`data: [DONE]` (a usage chunk first when `stream_options.include_usage` is set; a failure
after the start is a chunk with an `error`), or, without `stream`, one
`chat.completion`; errors before the answer in OpenAI's error shape with the right
status, so the SDKs' typed errors and retries work.  This first slice carries text: a
request with tools or non-text parts is refused with a 400 that says so.  System and
developer messages become the system prompt.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import Annotated, Any, Literal

import orjson
from aiohttp import web
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

from gateway.formats import with_retry_after
from gateway.routes import Dialect, read_json, served_model, stream
from gateway.schemas import max_tokens_in_range
from gateway.sse import KEEPALIVE_FRAME, SSE_HEADERS, Redactor
from gateway.state import STATE
from policies.base import Call
from providers.base import Message, UpstreamRequest
from providers.errors import GatewayError

_JSON = {"Content-Type": "application/json"}
_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    429: "rate_limit_error",
}
# Anthropic-style stop reasons (the gateway's normalized ones) → OpenAI finish reasons.
_FINISH = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}

# --- the request ------------------------------------------------------------------------


class TextPart(BaseModel):
    model_config = ConfigDict(extra="ignore")

    type: Literal["text"]
    text: str


class ChatMessageIn(BaseModel):
    model_config = ConfigDict(extra="ignore")

    role: Literal["system", "developer", "user", "assistant"]
    content: str | list[TextPart]

    def text(self) -> str:
        if isinstance(self.content, str):
            return self.content
        return "".join(part.text for part in self.content)


class StreamOptions(BaseModel):
    model_config = ConfigDict(extra="ignore")

    include_usage: bool = False


class ChatCompletionsBody(BaseModel):
    """The Chat Completions request, as far as this gateway serves it (text)."""

    model_config = ConfigDict(extra="ignore")

    model: Annotated[str, Field(min_length=1, max_length=200)]
    messages: Annotated[list[ChatMessageIn], Field(min_length=1, max_length=1000)]
    max_tokens: int | None = None
    max_completion_tokens: int | None = None
    temperature: Annotated[float, Field(ge=0, le=1)] | None = None
    top_p: Annotated[float, Field(gt=0, le=1)] | None = None
    stop: (
        str | Annotated[list[Annotated[str, Field(min_length=1)]], Field(max_length=16)] | None
    ) = None
    user: str | None = None
    n: Annotated[int, Field(ge=1, le=1)] = 1
    stream: bool = False
    stream_options: StreamOptions | None = None
    tools: list[Any] | None = None

    @field_validator("tools")
    @classmethod
    def _no_tools_yet(cls, tools: list[Any] | None) -> list[Any] | None:
        if tools:
            raise ValueError("tool calls are not served on this gateway's chat completions yet")
        return tools

    @model_validator(mode="after")
    def _a_user_speaks(self) -> ChatCompletionsBody:
        if not any(m.role == "user" for m in self.messages):
            raise ValueError("messages: at least one message must have role 'user'")
        return self

    _max_tokens_in_range = field_validator("max_tokens", "max_completion_tokens")(
        max_tokens_in_range
    )

    def to_upstream(self) -> UpstreamRequest:
        system = "\n\n".join(m.text() for m in self.messages if m.role in ("system", "developer"))
        turns = [m for m in self.messages if m.role in ("user", "assistant")]
        while turns and turns[0].role != "user":  # the upstreams start with the user
            turns.pop(0)
        stop = [self.stop] if isinstance(self.stop, str) else list(self.stop or [])
        return UpstreamRequest(
            messages=tuple(
                Message("user" if m.role == "user" else "assistant", m.text()) for m in turns
            ),
            max_tokens=self.max_completion_tokens or self.max_tokens or 4096,
            system=system or None,
            temperature=self.temperature,
            top_p=self.top_p,
            stop_sequences=tuple(stop),
            user_id=self.user,
        )


# --- the answer -------------------------------------------------------------------------


def _usage(done: dict[str, Any]) -> dict[str, int]:
    usage = done.get("usage") or {}
    prompt, completion = usage.get("input_tokens", 0), usage.get("output_tokens", 0)
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }


class ChatErrors:
    """Errors in OpenAI's shape; the base of both answer formats."""

    headers = SSE_HEADERS
    keepalive: bytes | None = KEEPALIVE_FRAME

    def content(self, text: str) -> bytes:
        return b""

    def done(self, event: dict[str, Any]) -> bytes:
        return b""

    def error(self, event: dict[str, Any]) -> bytes | None:
        error = {"message": event["error"], "type": "api_error", "code": event.get("code")}
        return b"data: " + orjson.dumps({"error": error}) + b"\n\n"

    def error_response(
        self, error: GatewayError, request_id: str, redact: Redactor, headers: dict[str, str]
    ) -> web.Response:
        status = 400 if error.client_status in (415, 422) else error.client_status
        body = {
            "error": {
                "message": redact(error.message),
                "type": _ERROR_TYPES.get(status, "api_error"),
                "param": None,
                "code": error.code,
            }
        }
        response = web.json_response(body, status=status, headers=headers)
        return with_retry_after(response, error)


class CompletionChunks(ChatErrors):
    """`stream: true`: `chat.completion.chunk`s, then `data: [DONE]`."""

    def __init__(
        self, completion_id: str, served_model: Callable[[], str], include_usage: bool
    ) -> None:
        self._id = completion_id
        self._served_model = served_model
        self._created = int(time.time())
        self._include_usage = include_usage
        self._started = False

    def content(self, text: str) -> bytes:
        return self._start() + self._chunk({"content": text}, None)

    def done(self, event: dict[str, Any]) -> bytes:
        finish = _FINISH.get(str(event.get("stop_reason")), "stop")
        out = self._start() + self._chunk({}, finish)
        if self._include_usage:
            out += self._frame({"choices": [], "usage": _usage(event)})
        return out + b"data: [DONE]\n\n"

    def _start(self) -> bytes:
        if self._started:
            return b""
        self._started = True
        return self._chunk({"role": "assistant", "content": ""}, None)

    def _chunk(self, delta: dict[str, Any], finish: str | None) -> bytes:
        choice = {"index": 0, "delta": delta, "finish_reason": finish}
        return self._frame({"choices": [choice]})

    def _frame(self, fields: dict[str, Any]) -> bytes:
        chunk = {
            "id": self._id,
            "object": "chat.completion.chunk",
            "created": self._created,
            "model": self._served_model(),
            **fields,
        }
        return b"data: " + orjson.dumps(chunk) + b"\n\n"


class WholeCompletion(ChatErrors):
    """Without `stream`: one `chat.completion` once the answer is whole."""

    headers = _JSON
    keepalive = None

    def __init__(self, completion_id: str) -> None:
        self._id = completion_id
        self._text: list[str] = []

    def content(self, text: str) -> bytes:
        self._text.append(text)
        return b""

    def done(self, event: dict[str, Any]) -> bytes:
        message = {"role": "assistant", "content": "".join(self._text)}
        finish = _FINISH.get(str(event.get("stop_reason")), "stop")
        completion = {
            "id": self._id,
            "object": "chat.completion",
            "created": int(time.time()),
            "model": event["model"],
            "choices": [{"index": 0, "message": message, "finish_reason": finish}],
            "usage": _usage(event),
        }
        return orjson.dumps(completion)


# --- the route --------------------------------------------------------------------------


def add_chat_completions_routes(app: web.Application) -> None:
    app.router.add_post("/v1/chat/completions", chat_completions)


async def chat_completions(request: web.Request) -> web.StreamResponse:
    config = request.app[STATE].current.config

    def answer(body: ChatCompletionsBody, call: Call) -> ChatErrors:
        completion_id = "chatcmpl-" + uuid.uuid4().hex[:24]
        if not body.stream:
            return WholeCompletion(completion_id)
        include_usage = body.stream_options is not None and body.stream_options.include_usage
        return CompletionChunks(completion_id, lambda: served_model(call), include_usage)

    dialect = Dialect(ChatErrors(), answer, config.server.date_context.api_routes)
    return await stream(request, ChatCompletionsBody, read_json, dialect)
