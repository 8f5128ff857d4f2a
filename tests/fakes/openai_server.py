"""A faithful fake of the OpenAI chat-completions API (streaming), on a real loopback server.

Wire format as OpenAI sends it: `data: <chat.completion.chunk>` lines, the first delta
carrying the role, text deltas, then each scripted tool call (its first chunk
`{"index", "id": "call_…", "type": "function", "function": {"name", "arguments": ""}}`,
which also carries the role when no text came first, then its arguments in pieces), a
chunk with `finish_reason` (`tool_calls` when the script called tools), a last chunk with
empty `choices` and `usage` (when `stream_options.include_usage`), then `data: [DONE]`.
Errors are `{"error": {"message", "type", "param", "code"}}` with the HTTP status, or the
same object as a `data:` line inside the stream.

Before any script plays, the request must pass what OpenAI checks (`openai_rules`:
top-level fields, tools, tool turns); a request that breaks a rule gets OpenAI's 400 and
its message is kept in `rejections`.  Its fidelity is checked with the official `openai`
SDK in tests/providers/test_openai_fake_fidelity.py and test_openai_fake_tools.py.
"""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

from aiohttp import web

from tests.fakes import openai_rules as rules
from tests.fakes.script import FakeUpstream, Script, ScriptedToolCall, input_json_pieces

API_KEY = "sk-openai-test-abcdef0123456789"

ERRORS = {
    400: ("invalid_request_error", None),
    401: ("invalid_request_error", "invalid_api_key"),
    403: ("invalid_request_error", "unsupported_country_region_territory"),
    404: ("invalid_request_error", "model_not_found"),
    429: ("requests", "rate_limit_exceeded"),
    500: ("server_error", None),
    503: ("server_error", None),
}
FINISH_REASONS = {  # the script's stop reason (the Messages API's words) → finish_reason
    "end_turn": "stop",
    "stop_sequence": "stop",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}


class FakeOpenAI(FakeUpstream):
    ERROR_EVENT = (
        b'data: {"error": {"message": "The server is overloaded.", "type": "server_error", '
        b'"code": null}}\n\n'
    )
    MALFORMED = b'data: {"id": "chatcmpl-1", "choices": [\n\n'

    def __init__(self) -> None:
        super().__init__("/v1/chat/completions")
        self.rejections: list[str] = []  # the 400s the API's rules gave, in order

    async def _answer(
        self, request: web.Request, body: dict[str, Any], script: Script
    ) -> web.StreamResponse:
        if request.headers.get("Authorization") != f"Bearer {API_KEY}":
            return _error(401, "Incorrect API key provided.")
        if not body.get("messages") or "model" not in body:
            return _error(400, "messages and model are required")
        problem = rules.violation(body)
        if problem:
            self.rejections.append(problem.message)
            return _refusal(problem)
        if script.status != 200:
            return _error(script.status, script.message, self._failure_headers(script))

        response = web.StreamResponse(
            headers={"Content-Type": "text/event-stream; charset=utf-8", **script.headers}
        )
        await response.prepare(request)
        chunk = _ChunkWriter(response, body["model"])
        opening: dict[str, Any] = {"role": "assistant", "content": None}
        if script.chunks or not script.tool_calls:
            await chunk({"role": "assistant", "content": ""})
            opening = {}
        if await self._play(script, lambda text: chunk({"content": text})):
            return await self._fault(request, response, script)

        async def send_tool(k: int, call: ScriptedToolCall, cut: bool) -> None:
            await _tool_call(chunk, opening if k == 0 else {}, k, call, cut)

        if await self._play_tools(script, send_tool):
            return await self._fault(request, response, script)
        await chunk({}, finish_reason=FINISH_REASONS.get(script.final_stop_reason, "length"))
        if (body.get("stream_options") or {}).get("include_usage"):
            completion = len(script.chunks) + len(script.tool_calls)
            usage = {
                "prompt_tokens": script.input_tokens,
                "completion_tokens": completion,
                "total_tokens": script.input_tokens + completion,
            }
            await chunk.raw({**chunk.envelope, "choices": [], "usage": usage})
        await response.write(b"data: [DONE]\n\n")
        await response.write_eof()
        return response


async def _tool_call(
    chunk: _ChunkWriter, opening: dict[str, Any], k: int, call: ScriptedToolCall, cut: bool
) -> None:
    """Tool call `k`: a chunk with its id, type and name (and `opening`, the role when no
    text came first), then its arguments in pieces; `cut` stops it halfway through."""
    head = {
        "index": k,
        "id": call.id or f"call_{uuid.uuid4().hex[:24]}",
        "type": "function",
        "function": {"name": call.name, "arguments": ""},
    }
    await chunk({**opening, "tool_calls": [head]})
    pieces = input_json_pieces(call.input)
    for piece in pieces[:1] if cut else pieces:
        await chunk({"tool_calls": [{"index": k, "function": {"arguments": piece}}]})


class _ChunkWriter:
    def __init__(self, response: web.StreamResponse, model: str) -> None:
        self._response = response
        self.envelope = {
            "id": f"chatcmpl-{uuid.uuid4().hex[:20]}",
            "object": "chat.completion.chunk",
            "created": int(time.time()),
            "model": model,
            "system_fingerprint": "fp_fake",
        }

    async def __call__(self, delta: dict[str, Any], finish_reason: str | None = None) -> None:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}
        await self.raw({**self.envelope, "choices": [choice]})

    async def raw(self, data: dict[str, Any]) -> None:
        await self._response.write(f"data: {json.dumps(data)}\n\n".encode())


def _refusal(problem: rules.Problem) -> web.Response:
    error = {
        "message": problem.message,
        "type": "invalid_request_error",
        "param": problem.param,
        "code": problem.code,
    }
    return web.json_response({"error": error}, status=400)


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> web.Response:
    kind, code = ERRORS.get(status, ("server_error", None))
    return web.json_response(
        {"error": {"message": message, "type": kind, "param": None, "code": code}},
        status=status,
        headers=headers or {},
    )
