"""The Anthropic Messages API on the gateway: `POST /v1/messages`, for apps on the
official SDKs (they set `base_url` to the gateway and their tenant key as the API key).

The same path as the guide's routes (tenant, limits, chain, fallback, accounting), with
the Messages API's request and answer: streamed as its events (`message_start`,
`content_block_start`, `content_block_delta`, `content_block_stop`, `message_delta`,
`message_stop`, `ping`; a failure after the start is `event: error`), or, without
`stream`, one JSON message; errors before the answer in its error shape with the right
status, so the SDKs' typed errors and retries work.  Tool calls and thinking stream as
their own blocks; the request is read by `gateway.messages_body`.  The date is added to
the system prompt only with `server.date_context.api_routes`.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import orjson
from aiohttp import web

from gateway.formats import AnswerNothing, api_status, with_retry_after
from gateway.messages_body import MessagesBody
from gateway.routes import Dialect, read_json, served_model, stream
from gateway.sse import SSE_HEADERS, Redactor
from gateway.state import STATE
from policies.base import Call
from providers.content import (
    NativeBlock,
    NativeDelta,
    PartDelta,
    RedactedThinkingDelta,
    SignatureDelta,
    ThinkingDelta,
    ToolUseStart,
)
from providers.errors import GatewayError

# The client's headers that its body was written for: a beta field needs its beta, and
# the version decides what the API takes.
PASSED_HEADERS = ("anthropic-beta", "anthropic-version")
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

_STOP_REASONS = {  # finish reasons of OpenAI-compatible targets
    "stop": "end_turn",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "function_call": "tool_use",
    "content_filter": "refusal",
}
_MID_STREAM_TYPES = (("overloaded", "overloaded_error"), ("rate_limit", "rate_limit_error"))
_JSON = {"Content-Type": "application/json"}

# --- the answer -------------------------------------------------------------------------


def _event(name: str, data: dict[str, Any]) -> bytes:
    return b"event: " + name.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"


_USAGE_FIELDS = (
    "input_tokens",
    "output_tokens",
    "cache_creation_input_tokens",
    "cache_read_input_tokens",
)


def _usage(done: dict[str, Any]) -> dict[str, int]:
    """The Messages API's usage (the gateway's names are its own; cost is not in it)."""
    usage = done.get("usage") or {}
    return {name: usage.get(name, 0) for name in _USAGE_FIELDS}


class MessagesErrors(AnswerNothing):
    """Errors in the Messages API's shape; the base of both answer formats."""

    headers = SSE_HEADERS
    keepalive: bytes | None = PING

    def error(self, event: dict[str, Any]) -> bytes | None:
        code = str(event.get("code", ""))
        kind = next((t for key, t in _MID_STREAM_TYPES if key in code), "api_error")
        error = {"type": kind, "message": event["error"]}
        return _event("error", {"type": "error", "error": error})

    def error_response(
        self, error: GatewayError, request_id: str, redact: Redactor, headers: dict[str, str]
    ) -> web.Response:
        status = api_status(error)
        kind = _ERROR_TYPES.get(status, "api_error")
        body = {"type": "error", "error": {"type": kind, "message": redact(error.message)}}
        response = web.json_response(
            body, status=status, headers={**headers, "request-id": request_id}
        )
        return with_retry_after(response, error)


class MessageEvents(MessagesErrors):
    """`stream: true`: the Messages API's events, a content block for each run of text,
    thinking, or tool call (with its input as `input_json_delta`s)."""

    def __init__(self, message_id: str, served_model: Callable[[], str]) -> None:
        self._id = message_id
        self._served_model = served_model
        self._started = False
        self._index = -1
        self._open: str | None = None  # the type of the open block
        self._signed = False  # the open thinking block has its signature

    def content(self, text: str) -> bytes:
        return self._enter("text", {"type": "text", "text": ""}) + self._delta(
            {"type": "text_delta", "text": text}
        )

    def part(self, delta: PartDelta) -> bytes:
        if isinstance(delta, ThinkingDelta | SignatureDelta):
            block = {"type": "thinking", "thinking": "", "signature": ""}
            opened = self._enter("thinking", block, new=self._signed)
            if isinstance(delta, SignatureDelta):
                self._signed = True
                return opened + self._delta(
                    {"type": "signature_delta", "signature": delta.signature}
                )
            return opened + self._delta({"type": "thinking_delta", "thinking": delta.thinking})
        if isinstance(delta, RedactedThinkingDelta):
            block = {"type": "redacted_thinking", "data": delta.data}
            return self._enter("redacted_thinking", block, new=True)
        if isinstance(delta, ToolUseStart):
            call = {"type": "tool_use", "id": delta.id, "name": delta.name, "input": {}}
            return self._enter("tool_use", call, new=True)
        if isinstance(delta, NativeBlock):
            if delta.protocol != "anthropic":
                return b""
            return self._enter(str(delta.block.get("type")), dict(delta.block), new=True)
        if isinstance(delta, NativeDelta):
            ours = self._open is not None and delta.protocol == "anthropic"
            return self._delta(dict(delta.delta)) if ours else b""
        if self._open in (None, "text", "thinking", "redacted_thinking"):
            return b""  # input, but no call (a tool's or a server tool's) to attach it to
        return self._delta({"type": "input_json_delta", "partial_json": delta.partial_json})

    def done(self, event: dict[str, Any]) -> bytes:
        delta = {
            "stop_reason": stop_reason(event.get("stop_reason")),
            "stop_sequence": event.get("stop_sequence"),
        }
        return (
            self._start()
            + self._close()
            + _event(
                "message_delta", {"type": "message_delta", "delta": delta, "usage": _usage(event)}
            )
            + _event("message_stop", {"type": "message_stop"})
        )

    def _enter(self, kind: str, block: dict[str, Any], new: bool = False) -> bytes:
        """Open a block of `kind` unless one is open already (and `new` is not asked)."""
        if self._open == kind and not new:
            return b""
        out = self._start() + self._close()
        self._index += 1
        self._open, self._signed = kind, False
        start = {"type": "content_block_start", "index": self._index, "content_block": block}
        return out + _event("content_block_start", start)

    def _close(self) -> bytes:
        if self._open is None:
            return b""
        self._open = None
        return _event("content_block_stop", {"type": "content_block_stop", "index": self._index})

    def _delta(self, delta: dict[str, Any]) -> bytes:
        event = {"type": "content_block_delta", "index": self._index, "delta": delta}
        return _event("content_block_delta", event)

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
        return _event("message_start", {"type": "message_start", "message": message})


class WholeMessage(MessagesErrors):
    """Without `stream`: nothing is sent until the answer is whole, then one JSON message
    (so a failure at any point is an error response with its status)."""

    headers = _JSON
    keepalive = None

    def __init__(self, message_id: str) -> None:
        self._id = message_id
        self._content: list[dict[str, Any]] = []
        self._inputs: dict[int, list[str]] = {}  # a tool call's input JSON, by block
        self._signed = False

    def content(self, text: str) -> bytes:
        last = self._content[-1] if self._content else None
        if last is not None and last["type"] == "text":
            last["text"] += text
        else:
            self._content.append({"type": "text", "text": text})
        return b""

    def part(self, delta: PartDelta) -> bytes:
        last = self._content[-1] if self._content else None
        if isinstance(delta, ThinkingDelta | SignatureDelta):
            if last is None or last["type"] != "thinking" or self._signed:
                last = {"type": "thinking", "thinking": "", "signature": ""}
                self._content.append(last)
                self._signed = False
            if isinstance(delta, SignatureDelta):
                last["signature"], self._signed = delta.signature, True
            else:
                last["thinking"] += delta.thinking
        elif isinstance(delta, RedactedThinkingDelta):
            self._content.append({"type": "redacted_thinking", "data": delta.data})
        elif isinstance(delta, ToolUseStart):
            self._inputs[len(self._content)] = []
            self._content.append({"type": "tool_use", "id": delta.id, "name": delta.name})
        elif isinstance(delta, NativeBlock):
            if delta.protocol == "anthropic":
                self._inputs[len(self._content)] = []  # (a server tool's call has input)
                self._content.append(dict(delta.block))
        elif isinstance(delta, NativeDelta):
            if delta.delta.get("type") == "citations_delta" and last is not None:
                last.setdefault("citations", []).append(delta.delta.get("citation"))
        elif last is not None and len(self._content) - 1 in self._inputs:
            self._inputs[len(self._content) - 1].append(delta.partial_json)
        return b""

    def done(self, event: dict[str, Any]) -> bytes:
        for index, pieces in self._inputs.items():
            if pieces or self._content[index]["type"] == "tool_use":
                self._content[index]["input"] = tool_input("".join(pieces))
        message = {
            "id": self._id,
            "type": "message",
            "role": "assistant",
            "model": event["model"],
            "content": self._content,
            "stop_reason": stop_reason(event.get("stop_reason")),
            "stop_sequence": event.get("stop_sequence"),
            "usage": _usage(event),
        }
        return orjson.dumps(message)


def stop_reason(reason: object) -> str | None:
    """The Messages API's stop reason for a normalized one (an OpenAI-compatible target
    reports its finish reason)."""
    if reason is None:
        return None
    return _STOP_REASONS.get(str(reason), str(reason))


def tool_input(text: str) -> Any:
    """A tool call's streamed input, whole: a JSON object (an empty input is `{}`)."""
    try:
        value = orjson.loads(text) if text.strip() else {}
    except orjson.JSONDecodeError:
        return {}
    return value if isinstance(value, dict) else {}


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

    dialect = Dialect(
        MessagesErrors(), answer, config.server.date_context.api_routes, PASSED_HEADERS
    )
    return await stream(request, MessagesBody, read_json, dialect)
