"""The Anthropic Messages API on the gateway: `POST /v1/messages`, for apps on the
official SDKs (they set `base_url` to the gateway and their tenant key as the API key).

The same path as the guide's routes (tenant, limits, chain, fallback, accounting), with
the Messages API's request and answer: streamed as its events (`message_start`,
`content_block_start`, `content_block_delta`, `content_block_stop`, `message_delta`,
`message_stop`, `ping`; a failure after the start is `event: error`), or, without
`stream`, one JSON message; errors before the answer in its error shape with the right
status, so the SDKs' typed errors and retries work.  This first slice carries text:
a request with tools, images or other non-text blocks is refused with a 400 that says
so.  The date is added to the system prompt only with `server.date_context.api_routes`.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Annotated, Any, Literal

import orjson
from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, field_validator

from gateway.formats import with_retry_after
from gateway.routes import Dialect, read_json, served_model, stream
from gateway.schemas import max_tokens_in_range
from gateway.sse import SSE_HEADERS, Redactor
from gateway.state import STATE
from policies.base import Call
from providers.base import Message, UpstreamRequest
from providers.errors import GatewayError

PING = b'event: ping\ndata: {"type": "ping"}\n\n'
_ERROR_TYPES = {  # the Messages API's error type for each status the gateway answers with
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    503: "overloaded_error",
}

_MID_STREAM_TYPES = (("overloaded", "overloaded_error"), ("rate_limit", "rate_limit_error"))
_JSON = {"Content-Type": "application/json"}

# --- the request ------------------------------------------------------------------------


class TextContent(BaseModel):
    model_config = ConfigDict(extra="ignore")  # e.g. cache_control: not needed for text

    type: Literal["text"]
    text: str


Content = str | list[TextContent]


def _text(content: Content) -> str:
    return content if isinstance(content, str) else "".join(block.text for block in content)


class MessageIn(BaseModel):
    role: Literal["user", "assistant"]
    content: Content


class MessagesBody(BaseModel):
    """The Messages API request, as far as this gateway serves it (text)."""

    model_config = ConfigDict(extra="ignore")

    model: Annotated[str, Field(min_length=1, max_length=200)]
    messages: Annotated[list[MessageIn], Field(min_length=1, max_length=1000)]
    max_tokens: int
    system: Content | None = None
    stop_sequences: Annotated[list[Annotated[str, Field(min_length=1)]], Field(max_length=16)] = []
    temperature: Annotated[float, Field(ge=0, le=1)] | None = None
    top_p: Annotated[float, Field(gt=0, le=1)] | None = None
    top_k: Annotated[int, Field(ge=1)] | None = None
    metadata: dict[str, Any] | None = None
    stream: bool = False
    tools: list[Any] | None = None

    _max_tokens_in_range = field_validator("max_tokens")(max_tokens_in_range)

    @field_validator("tools")
    @classmethod
    def _no_tools_yet(cls, tools: list[Any] | None) -> list[Any] | None:
        if tools:
            raise ValueError("tool use is not served on this gateway's /v1/messages yet")
        return tools

    @field_validator("messages")
    @classmethod
    def _starts_with_user(cls, messages: list[MessageIn]) -> list[MessageIn]:
        if messages[0].role != "user":
            raise ValueError("the first message must have role 'user'")
        return messages

    def to_upstream(self) -> UpstreamRequest:
        user_id = (self.metadata or {}).get("user_id")
        return UpstreamRequest(
            messages=tuple(Message(m.role, _text(m.content)) for m in self.messages),
            max_tokens=self.max_tokens,
            system=_text(self.system) if self.system else None,
            temperature=self.temperature,
            top_p=self.top_p,
            top_k=self.top_k,
            stop_sequences=tuple(self.stop_sequences),
            user_id=str(user_id) if user_id is not None else None,
        )


# --- the answer -------------------------------------------------------------------------


def _event(name: str, data: dict[str, Any]) -> bytes:
    return b"event: " + name.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"


def _usage(done: dict[str, Any]) -> dict[str, int]:
    usage = done.get("usage") or {}
    return {
        "input_tokens": usage.get("input_tokens", 0),
        "output_tokens": usage.get("output_tokens", 0),
    }


class MessagesErrors:
    """Errors in the Messages API's shape; the base of both answer formats."""

    headers = SSE_HEADERS
    keepalive: bytes | None = PING

    def content(self, text: str) -> bytes:
        return b""

    def done(self, event: dict[str, Any]) -> bytes:
        return b""

    def error(self, event: dict[str, Any]) -> bytes | None:
        code = str(event.get("code", ""))
        kind = next((t for key, t in _MID_STREAM_TYPES if key in code), "api_error")
        error = {"type": kind, "message": event["error"]}
        return _event("error", {"type": "error", "error": error})

    def error_response(
        self, error: GatewayError, request_id: str, redact: Redactor, headers: dict[str, str]
    ) -> web.Response:
        # The API answers every request it cannot read with 400 invalid_request_error.
        status = 400 if error.client_status in (415, 422) else error.client_status
        kind = _ERROR_TYPES.get(status, "api_error")
        body = {"type": "error", "error": {"type": kind, "message": redact(error.message)}}
        response = web.json_response(
            body, status=status, headers={**headers, "request-id": request_id}
        )
        return with_retry_after(response, error)


class MessageEvents(MessagesErrors):
    """`stream: true`: the Messages API's events, one text block."""

    def __init__(self, message_id: str, served_model: Callable[[], str]) -> None:
        self._id = message_id
        self._served_model = served_model
        self._started = False

    def content(self, text: str) -> bytes:
        delta = {"type": "content_block_delta", "index": 0}
        return self._start() + _event(
            "content_block_delta", delta | {"delta": {"type": "text_delta", "text": text}}
        )

    def done(self, event: dict[str, Any]) -> bytes:
        delta = {"stop_reason": event.get("stop_reason"), "stop_sequence": None}
        return (
            self._start()
            + _event("content_block_stop", {"type": "content_block_stop", "index": 0})
            + _event(
                "message_delta", {"type": "message_delta", "delta": delta, "usage": _usage(event)}
            )
            + _event("message_stop", {"type": "message_stop"})
        )

    def _start(self) -> bytes:
        if self._started:
            return b""
        self._started = True
        message: dict[str, Any] = {
            "id": self._id,
            "type": "message",
            "role": "assistant",
            "model": self._served_model(),
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {"input_tokens": 0, "output_tokens": 0},
        }
        block = {"type": "text", "text": ""}
        return _event("message_start", {"type": "message_start", "message": message}) + _event(
            "content_block_start",
            {"type": "content_block_start", "index": 0, "content_block": block},
        )


class WholeMessage(MessagesErrors):
    """Without `stream`: nothing is sent until the answer is whole, then one JSON message
    (so a failure at any point is an error response with its status)."""

    headers = _JSON
    keepalive = None

    def __init__(self, message_id: str) -> None:
        self._id = message_id
        self._text: list[str] = []

    def content(self, text: str) -> bytes:
        self._text.append(text)
        return b""

    def done(self, event: dict[str, Any]) -> bytes:
        message = {
            "id": self._id,
            "type": "message",
            "role": "assistant",
            "model": event["model"],
            "content": [{"type": "text", "text": "".join(self._text)}],
            "stop_reason": event.get("stop_reason"),
            "stop_sequence": None,
            "usage": _usage(event),
        }
        return orjson.dumps(message)


# --- the route --------------------------------------------------------------------------


def add_messages_routes(app: web.Application) -> None:
    app.router.add_post("/v1/messages", messages)


async def messages(request: web.Request) -> web.StreamResponse:
    config = request.app[STATE].current.config

    def answer(body: MessagesBody, call: Call) -> MessagesErrors:
        message_id = "msg_" + uuid.uuid4().hex[:24]
        if not body.stream:
            return WholeMessage(message_id)
        return MessageEvents(message_id, lambda: served_model(call))

    dialect = Dialect(MessagesErrors(), answer, config.server.date_context.api_routes)
    return await stream(request, MessagesBody, read_json, dialect)
