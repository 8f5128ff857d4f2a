"""A faithful fake of the OpenAI chat-completions API (streaming), on a real loopback server.

Wire format as OpenAI sends it: `data: <chat.completion.chunk>` lines, the first delta
carrying the role, text deltas, a chunk with `finish_reason`, a last chunk with empty
`choices` and `usage` (when `stream_options.include_usage`), then `data: [DONE]`.
Errors are `{"error": {"message", "type", "param", "code"}}` with the HTTP status, or the
same object as a `data:` line inside the stream.  Its fidelity is checked with the
official `openai` SDK in tests/providers/test_openai_fake_fidelity.py.
"""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

from aiohttp import web

from tests.fakes.script import FakeUpstream, Script

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


class FakeOpenAI(FakeUpstream):
    ERROR_EVENT = (
        b'data: {"error": {"message": "The server is overloaded.", "type": "server_error", '
        b'"code": null}}\n\n'
    )
    MALFORMED = b'data: {"id": "chatcmpl-1", "choices": [\n\n'

    def __init__(self) -> None:
        super().__init__("/v1/chat/completions")

    async def _answer(
        self, request: web.Request, body: dict[str, Any], script: Script
    ) -> web.StreamResponse:
        if request.headers.get("Authorization") != f"Bearer {API_KEY}":
            return _error(401, "Incorrect API key provided.")
        if not body.get("messages") or "model" not in body:
            return _error(400, "messages and model are required")
        if script.status != 200:
            return _error(script.status, script.message, self._failure_headers(script))

        response = web.StreamResponse(
            headers={"Content-Type": "text/event-stream; charset=utf-8", **script.headers}
        )
        await response.prepare(request)
        chunk = _ChunkWriter(response, body["model"])
        await chunk({"role": "assistant", "content": ""})
        if await self._play(script, lambda text: chunk({"content": text})):
            return await self._fault(request, response, script)
        await chunk({}, finish_reason="stop" if script.stop_reason == "end_turn" else "length")
        if (body.get("stream_options") or {}).get("include_usage"):
            usage = {
                "prompt_tokens": script.input_tokens,
                "completion_tokens": len(script.chunks),
                "total_tokens": script.input_tokens + len(script.chunks),
            }
            await chunk.raw({**chunk.envelope, "choices": [], "usage": usage})
        await response.write(b"data: [DONE]\n\n")
        await response.write_eof()
        return response


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


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> web.Response:
    kind, code = ERRORS.get(status, ("server_error", None))
    return web.json_response(
        {"error": {"message": message, "type": kind, "param": None, "code": code}},
        status=status,
        headers=headers or {},
    )
