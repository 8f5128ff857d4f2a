"""A faithful fake of Anthropic's Messages API (streaming), on a real loopback server.

It speaks the wire protocol the official SDK parses: `event:`/`data:` frames in the
order message_start → content_block_start → ping → content_block_delta* →
content_block_stop (for each block) → message_delta → message_stop, and errors as
`{"type":"error","error":{"type":...,"message":...}}` with Anthropic's headers.

Each request takes the next `Script` from the queue (or the default script), so tests
say what the upstream does: which status, what text, how fast, and which fault.  The
blocks stream as the real API's do, indexed from 0: a thinking block (when the script has
`thinking`, or the request turns thinking on) of `thinking_delta`s and one
`signature_delta` whose signature `anthropic_content_rules.sign_thinking` derives from the
text; a text block (left out when a script with tool calls has no text); then a `tool_use`
block per scripted tool call, its input JSON in `input_json_delta` pieces (the first "").
Everything the fake saw is recorded for assertions.

Before any script plays, the request must pass what the real API checks (`anthropic_rules`:
prefill, sampling parameters, thinking, by model and `anthropic-version`; top-level fields,
tools, content blocks, tool turns and thinking signatures); a request that breaks a rule
gets the real 400 and its message is kept in `rejections`.  Authentication reads
`x-api-key` when present, else `Authorization: Bearer` (what SDK 2.x sends).

`POST /v1/messages/count_tokens` answers `{"input_tokens": N}` under the same checks (less
`max_tokens`), N from `count_input_tokens`; it takes no script, and is recorded in `seen`
with its `path`.
"""

from __future__ import annotations

import json
import math
import time
import uuid
from collections.abc import Callable
from typing import Any

from aiohttp import web

from tests.fakes import anthropic_rules as rules
from tests.fakes.anthropic_content_rules import sign_thinking
from tests.fakes.script import FakeUpstream, Script, ScriptedToolCall, input_json_pieces

API_KEY = "sk-ant-test-0123456789abcdef"
DEFAULT_THINKING = "Let me think."  # what a request with thinking on gets, unscripted

ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    529: "overloaded_error",
}


class FakeAnthropic(FakeUpstream):
    ERROR_EVENT = (
        b'event: error\ndata: {"type": "error", "error": '
        b'{"type": "overloaded_error", "message": "Overloaded"}}\n\n'
    )
    MALFORMED = b'event: content_block_delta\ndata: {"type": "content_bl\n\n'

    def __init__(self) -> None:
        super().__init__("/v1/messages")
        self.rejections: list[str] = []  # the 400s the API's rules gave, in order
        self.app.router.add_post("/v1/messages/count_tokens", self._count_tokens)

    def script(self, *scripts: Script) -> None:
        for script in scripts:
            if script.final_stop_reason not in rules.STOP_REASONS:
                raise ValueError(f"not a Messages API stop_reason: {script.stop_reason!r}")
        super().script(*scripts)

    def _refusal(
        self,
        request: web.Request,
        body: dict[str, Any],
        check: Callable[[dict[str, Any], str], str | None],
    ) -> web.Response | None:
        """The error the API answers before any work: a wrong key, no version, or a broken
        rule (`check` of the endpoint)."""
        if _api_key(request) != API_KEY:
            return _error(401, "invalid x-api-key")
        if "anthropic-version" not in request.headers:
            return _error(400, "anthropic-version: header is required")
        problem = check(body, request.headers["anthropic-version"])
        if problem:
            self.rejections.append(problem)
            return _error(400, problem)
        return None

    async def _count_tokens(self, request: web.Request) -> web.Response:
        """`POST /v1/messages/count_tokens`: the Messages checks, then a count, no script."""
        body = await request.json()
        seen = self._record(request, body)
        try:
            refusal = self._refusal(request, body, rules.count_tokens_violation)
            return refusal or web.json_response(
                {"input_tokens": count_input_tokens(body)}, headers=_request_id()
            )
        finally:
            seen.ended = time.monotonic()
            seen.finished.set()

    async def _answer(
        self, request: web.Request, body: dict[str, Any], script: Script
    ) -> web.StreamResponse:
        refusal = self._refusal(request, body, rules.violation)
        if refusal:
            return refusal
        if script.status != 200:
            return _error(script.status, script.message, self._failure_headers(script))
        if not body.get("stream"):
            return _error(400, "this fake only streams")

        response = web.StreamResponse(
            headers={
                "Content-Type": "text/event-stream; charset=utf-8",
                "Cache-Control": "no-cache",
                **_request_id(),
                "anthropic-ratelimit-requests-limit": "4000",
                **script.headers,
            }
        )
        await response.prepare(request)
        send = _Sender(response)
        await send("message_start", _message_start(body, script))
        blocks = _Blocks(send)
        if script.thinking is not None or rules.thinking_on(body):
            await blocks.thinking(DEFAULT_THINKING if script.thinking is None else script.thinking)
        has_text = bool(script.chunks) or not script.tool_calls
        if has_text:
            await blocks.start({"type": "text", "text": ""})
        if script.fault == "thinking":
            await blocks.delta({"type": "thinking_delta", "thinking": "hmm"})

        async def send_text(text: str) -> None:
            await blocks.delta({"type": "text_delta", "text": text})

        if await self._play(script, send_text):
            return await self._fault(request, response, script)
        if has_text:
            await blocks.stop()
        if await self._play_tools(script, blocks.tool_use):
            return await self._fault(request, response, script)
        await send("message_delta", _message_delta(body, script))
        await send("message_stop", {"type": "message_stop"})
        await response.write_eof()
        return response


def count_input_tokens(body: dict[str, Any]) -> int:
    """The fake's token count: the characters of the system prompt, the messages' text,
    thinking, tool inputs and results, and the tools' JSON, over 4, rounded up, at least 1."""
    parts: list[Any] = [body.get("system", ""), body.get("tools", [])]
    parts += [message.get("content", "") for message in body["messages"]]
    return max(1, math.ceil(sum(_characters(part) for part in parts) / 4))


def _characters(value: Any) -> int:
    """Text, thinking and tool results count their text; tool inputs and tool definitions
    their JSON; anything else (images, say) nothing."""
    if isinstance(value, str):
        return len(value)
    if isinstance(value, list):
        return sum(_characters(item) for item in value)
    if not isinstance(value, dict):
        return 0
    if value.get("type") == "tool_use":
        return len(json.dumps(value.get("input")))
    if "input_schema" in value:
        return len(json.dumps(value))
    return sum(_characters(value.get(key)) for key in ("text", "thinking", "content"))


def _message_start(body: dict[str, Any], script: Script) -> dict[str, Any]:
    return {
        "type": "message_start",
        "message": {
            "id": f"msg_{uuid.uuid4().hex[:24]}",
            "type": "message",
            "role": "assistant",
            "content": [],
            "model": body["model"],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": _start_usage(script),
        },
    }


def _message_delta(body: dict[str, Any], script: Script) -> dict[str, Any]:
    stop_reason = script.final_stop_reason
    stop_sequences = body.get("stop_sequences") or [None]
    return {
        "type": "message_delta",
        "delta": {
            "stop_reason": stop_reason,
            "stop_sequence": stop_sequences[0] if stop_reason == "stop_sequence" else None,
        },
        "usage": {"output_tokens": len(script.chunks) + len(script.tool_calls)},
    }


def _api_key(request: web.Request) -> str | None:
    """The key the API reads: `x-api-key` when sent (whatever `Authorization` says), else the
    bearer token (the official SDK 2.x sends only `Authorization: Bearer <key>`)."""
    if "x-api-key" in request.headers:
        return request.headers["x-api-key"]
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    return token if scheme == "Bearer" else None


class _Blocks:
    """The message's content blocks in stream order: indexes count up from 0, and a ping
    follows the first block's start, as the API sends them."""

    def __init__(self, send: _Sender) -> None:
        self._send = send
        self.index = -1

    async def start(self, block: dict[str, Any]) -> None:
        self.index += 1
        start = {"type": "content_block_start", "index": self.index, "content_block": block}
        await self._send("content_block_start", start)
        if self.index == 0:
            await self._send("ping", {"type": "ping"})

    async def delta(self, delta: dict[str, Any]) -> None:
        event = {"type": "content_block_delta", "index": self.index, "delta": delta}
        await self._send("content_block_delta", event)

    async def stop(self) -> None:
        await self._send("content_block_stop", {"type": "content_block_stop", "index": self.index})

    async def thinking(self, text: str) -> None:
        """A thinking block: its text in deltas, then its signature in one delta."""
        await self.start({"type": "thinking", "thinking": "", "signature": ""})
        for piece in _halves(text):
            await self.delta({"type": "thinking_delta", "thinking": piece})
        await self.delta({"type": "signature_delta", "signature": sign_thinking(text)})
        await self.stop()

    async def tool_use(self, k: int, call: ScriptedToolCall, cut: bool) -> None:
        """A tool_use block, its input JSON in pieces; `cut` stops it halfway through."""
        tool_id = call.id or f"toolu_01{uuid.uuid4().hex[:22]}"
        await self.start({"type": "tool_use", "id": tool_id, "name": call.name, "input": {}})
        pieces = ["", *input_json_pieces(call.input)]
        for piece in pieces[:2] if cut else pieces:
            await self.delta({"type": "input_json_delta", "partial_json": piece})
        if not cut:
            await self.stop()


def _halves(text: str) -> list[str]:
    return [part for part in (text[: len(text) // 2], text[len(text) // 2 :]) if part]


class _Sender:
    def __init__(self, response: web.StreamResponse) -> None:
        self._response = response

    async def __call__(self, event: str, data: dict[str, Any]) -> None:
        await self._response.write(f"event: {event}\ndata: {json.dumps(data)}\n\n".encode())


def _request_id() -> dict[str, str]:
    return {"request-id": f"req_{uuid.uuid4().hex[:24]}"}


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> web.Response:
    kind = ERROR_TYPES.get(status, "api_error")
    return web.json_response(
        {"type": "error", "error": {"type": kind, "message": message}},
        status=status,
        headers={**_request_id(), **(headers or {})},
    )


def _start_usage(script: Script) -> dict[str, int]:
    """message_start's usage: the prompt's tokens, the cache's as the API reports them."""
    usage = {"input_tokens": script.input_tokens, "output_tokens": 1}
    if script.cache_write_tokens or script.cache_read_tokens:
        usage["cache_creation_input_tokens"] = script.cache_write_tokens
        usage["cache_read_input_tokens"] = script.cache_read_tokens
    return usage
