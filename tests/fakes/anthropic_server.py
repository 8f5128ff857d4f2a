"""A faithful fake of Anthropic's Messages API (streaming), on a real loopback server.

It speaks the wire protocol the official SDK parses: `event:`/`data:` frames in the
order message_start → content_block_start → ping → content_block_delta* →
content_block_stop → message_delta → message_stop, and errors as
`{"type":"error","error":{"type":...,"message":...}}` with Anthropic's headers.

Each request takes the next `Script` from the queue (or the default script), so tests
say what the upstream does: which status, what text, how fast, and which fault.
Everything the fake saw is recorded for assertions.

Before any script plays, the request must pass what the real API checks (`anthropic_rules`:
prefill, sampling parameters, thinking, by model and `anthropic-version`); a request that
breaks a rule gets the real 400 and its message is kept in `rejections`.  Authentication
reads `x-api-key` when present, else `Authorization: Bearer` (what SDK 2.x sends).
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from aiohttp import web

from tests.fakes import anthropic_rules as rules
from tests.fakes.script import FakeUpstream, Script

API_KEY = "sk-ant-test-0123456789abcdef"

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

    def script(self, *scripts: Script) -> None:
        for script in scripts:
            if script.stop_reason not in rules.STOP_REASONS:
                raise ValueError(f"not a Messages API stop_reason: {script.stop_reason!r}")
        super().script(*scripts)

    async def _answer(
        self, request: web.Request, body: dict[str, Any], script: Script
    ) -> web.StreamResponse:
        if _api_key(request) != API_KEY:
            return _error(401, "invalid x-api-key")
        if "anthropic-version" not in request.headers:
            return _error(400, "anthropic-version: header is required")
        problem = rules.violation(body, request.headers["anthropic-version"])
        if problem:
            self.rejections.append(problem)
            return _error(400, problem)
        if script.status != 200:
            return _error(script.status, script.message, self._failure_headers(script))
        if not body.get("stream"):
            return _error(400, "this fake only streams")

        response = web.StreamResponse(
            headers={
                "Content-Type": "text/event-stream; charset=utf-8",
                "Cache-Control": "no-cache",
                "request-id": f"req_{uuid.uuid4().hex[:24]}",
                "anthropic-ratelimit-requests-limit": "4000",
                **script.headers,
            }
        )
        await response.prepare(request)
        send = _Sender(response)
        await send(
            "message_start",
            {
                "type": "message_start",
                "message": {
                    "id": f"msg_{uuid.uuid4().hex[:24]}",
                    "type": "message",
                    "role": "assistant",
                    "content": [],
                    "model": body["model"],
                    "stop_reason": None,
                    "stop_sequence": None,
                    "usage": {"input_tokens": script.input_tokens, "output_tokens": 1},
                },
            },
        )
        index = 0
        if rules.thinking_on(body):
            await _thinking_block(send, index)
            index += 1
        await send(
            "content_block_start",
            {
                "type": "content_block_start",
                "index": index,
                "content_block": {"type": "text", "text": ""},
            },
        )
        await send("ping", {"type": "ping"})
        if script.fault == "thinking":
            await _delta(send, index, {"type": "thinking_delta", "thinking": "hmm"})

        async def send_text(text: str) -> None:
            await _delta(send, index, {"type": "text_delta", "text": text})

        if await self._play(script, send_text):
            return await self._fault(request, response, script)
        await send("content_block_stop", {"type": "content_block_stop", "index": index})
        stop_sequences = body.get("stop_sequences") or [None]
        await send(
            "message_delta",
            {
                "type": "message_delta",
                "delta": {
                    "stop_reason": script.stop_reason,
                    "stop_sequence": (
                        stop_sequences[0] if script.stop_reason == "stop_sequence" else None
                    ),
                },
                "usage": {"output_tokens": len(script.chunks)},
            },
        )
        await send("message_stop", {"type": "message_stop"})
        await response.write_eof()
        return response


def _api_key(request: web.Request) -> str | None:
    """The key the API reads: `x-api-key` when sent (whatever `Authorization` says), else the
    bearer token (the official SDK 2.x sends only `Authorization: Bearer <key>`)."""
    if "x-api-key" in request.headers:
        return request.headers["x-api-key"]
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    return token if scheme == "Bearer" else None


async def _delta(send: _Sender, index: int, delta: dict[str, Any]) -> None:
    await send(
        "content_block_delta", {"type": "content_block_delta", "index": index, "delta": delta}
    )


async def _thinking_block(send: _Sender, index: int) -> None:
    """What a request with thinking on streams before its text: one thinking block."""
    await send(
        "content_block_start",
        {
            "type": "content_block_start",
            "index": index,
            "content_block": {"type": "thinking", "thinking": "", "signature": ""},
        },
    )
    await _delta(send, index, {"type": "thinking_delta", "thinking": "Let me think."})
    await _delta(send, index, {"type": "signature_delta", "signature": "c2lnbmF0dXJl"})
    await send("content_block_stop", {"type": "content_block_stop", "index": index})


class _Sender:
    def __init__(self, response: web.StreamResponse) -> None:
        self._response = response

    async def __call__(self, event: str, data: dict[str, Any]) -> None:
        await self._response.write(f"event: {event}\ndata: {json.dumps(data)}\n\n".encode())


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> web.Response:
    kind = ERROR_TYPES.get(status, "api_error")
    return web.json_response(
        {"type": "error", "error": {"type": kind, "message": message}},
        status=status,
        headers={"request-id": f"req_{uuid.uuid4().hex[:24]}", **(headers or {})},
    )
