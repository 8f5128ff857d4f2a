"""OpenAI Chat Completions on the gateway: `POST /v1/chat/completions`, for apps on the
official `openai` SDKs (they set `base_url` to the gateway's `/v1` and their tenant key as
the API key).

The same path as the guide's routes (tenant, limits, chain, fallback, accounting), with
Chat Completions' request and answer: streamed as `chat.completion.chunk`s ending in
`data: [DONE]` (a usage chunk first when `stream_options.include_usage` is set; a failure
after the start is a chunk with an `error`), or, without `stream`, one
`chat.completion`; errors before the answer in OpenAI's error shape with the right
status, so the SDKs' typed errors and retries work.  Tool calls stream as `tool_calls`
deltas; the request is read by `gateway.chat_completions_body`.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import Any

import orjson
from aiohttp import web

from gateway.chat_completions_body import ChatCompletionsBody
from gateway.formats import AnswerNothing, api_status, with_retry_after
from gateway.routes import Dialect, read_json, served_model, stream
from gateway.sse import KEEPALIVE_FRAME, SSE_HEADERS, Redactor
from gateway.state import STATE
from policies.base import Call
from providers.content import PartDelta, ToolInputDelta, ToolUseStart
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

# --- the answer -------------------------------------------------------------------------


def _usage(done: dict[str, Any]) -> dict[str, Any]:
    """OpenAI's usage: its `prompt_tokens` include the cached ones (reported apart)."""
    usage = done.get("usage") or {}
    cached = usage.get("cache_read_input_tokens", 0)
    prompt = usage.get("input_tokens", 0) + cached + usage.get("cache_creation_input_tokens", 0)
    completion = usage.get("output_tokens", 0)
    fields: dict[str, Any] = {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }
    if cached:
        fields["prompt_tokens_details"] = {"cached_tokens": cached}
    return fields


class ChatErrors(AnswerNothing):
    """Errors in OpenAI's shape; the base of both answer formats."""

    headers = SSE_HEADERS
    keepalive: bytes | None = KEEPALIVE_FRAME

    def error(self, event: dict[str, Any]) -> bytes | None:
        error = {"message": event["error"], "type": "api_error", "code": event.get("code")}
        return b"data: " + orjson.dumps({"error": error}) + b"\n\n"

    def error_response(
        self, error: GatewayError, request_id: str, redact: Redactor, headers: dict[str, str]
    ) -> web.Response:
        status = api_status(error)
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
        self._calls = 0  # tool calls started
        self._has_arguments = False  # the last call's arguments are not empty

    def content(self, text: str) -> bytes:
        return self._start() + self._chunk({"content": text}, None)

    def part(self, delta: PartDelta) -> bytes:
        """Tool calls as `tool_calls` deltas by call index; thinking has no place here."""
        if isinstance(delta, ToolUseStart):
            out = self._end_call()
            self._calls, self._has_arguments = self._calls + 1, False
            call = {
                "index": self._calls - 1,
                "id": delta.id,
                "type": "function",
                "function": {"name": delta.name, "arguments": ""},
            }
            return out + self._start() + self._chunk({"tool_calls": [call]}, None)
        if isinstance(delta, ToolInputDelta) and self._calls and delta.partial_json:
            self._has_arguments = True
            return self._arguments(delta.partial_json)
        return b""

    def _end_call(self) -> bytes:
        """A call streamed with no arguments at all gets `{}`, the JSON clients parse."""
        if not self._calls or self._has_arguments:
            return b""
        self._has_arguments = True
        return self._arguments("{}")

    def _arguments(self, text: str) -> bytes:
        call = {"index": self._calls - 1, "function": {"arguments": text}}
        return self._chunk({"tool_calls": [call]}, None)

    def done(self, event: dict[str, Any]) -> bytes:
        finish = finish_reason(event.get("stop_reason"))
        out = self._end_call() + self._start() + self._chunk({}, finish)
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
        self._calls: list[dict[str, Any]] = []

    def content(self, text: str) -> bytes:
        self._text.append(text)
        return b""

    def part(self, delta: PartDelta) -> bytes:
        if isinstance(delta, ToolUseStart):
            function = {"name": delta.name, "arguments": ""}
            self._calls.append({"id": delta.id, "type": "function", "function": function})
        elif isinstance(delta, ToolInputDelta) and self._calls:
            self._calls[-1]["function"]["arguments"] += delta.partial_json
        return b""

    def done(self, event: dict[str, Any]) -> bytes:
        message: dict[str, Any] = {"role": "assistant", "content": "".join(self._text) or None}
        for call in self._calls:
            call["function"]["arguments"] = call["function"]["arguments"] or "{}"
        if self._calls:
            message["tool_calls"] = self._calls
        elif message["content"] is None:
            message["content"] = ""
        completion = {
            "id": self._id,
            "object": "chat.completion",
            "created": int(time.time()),
            "model": event["model"],
            "choices": [
                {
                    "index": 0,
                    "message": message,
                    "finish_reason": finish_reason(event.get("stop_reason")),
                }
            ],
            "usage": _usage(event),
        }
        return orjson.dumps(completion)


def finish_reason(stop_reason: object) -> str:
    """Chat Completions' finish reason for a normalized stop reason (Anthropic's; an
    OpenAI-compatible target's own finish reasons pass as they are)."""
    reason = str(stop_reason)
    if (reason in _FINISH.values() and reason != "stop") or reason == "stop":
        return reason
    return _FINISH.get(reason, "stop")


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
