"""How a stream is written on the wire: SSE (the contract), SSE with `id:` fields (for
the browser's EventSource), or plain text (the AI SDK's text stream protocol).

One instance per response (the SSE event counter is per stream).
"""

from __future__ import annotations

import math
from typing import Any, Protocol

from aiohttp import web

from gateway.sse import KEEPALIVE_FRAME, SSE_HEADERS, Redactor, content_frame, error_event, frame
from providers.content import PartDelta
from providers.errors import GatewayError

TEXT_HEADERS = {
    "Content-Type": "text/plain; charset=utf-8",
    "Cache-Control": "no-cache",
    "X-Accel-Buffering": "no",
}


class StreamFormat(Protocol):
    headers: dict[str, str]
    keepalive: bytes | None  # None: this format has no way to say "still here"

    def content(self, text: str) -> bytes: ...

    def part(self, delta: PartDelta) -> bytes:
        """A tool call or thinking piece; the guide's formats carry text only (b"")."""
        ...

    def done(self, event: dict[str, Any]) -> bytes: ...

    def error(self, event: dict[str, Any]) -> bytes | None:
        """The last bytes of a failed stream; None to cut the connection instead."""
        ...

    def error_response(
        self, error: GatewayError, request_id: str, redact: Redactor, headers: dict[str, str]
    ) -> web.Response: ...


class SseFormat:
    headers = SSE_HEADERS
    keepalive: bytes | None = KEEPALIVE_FRAME

    def __init__(self, event_ids: bool = False) -> None:
        self._event_ids = event_ids
        self._next_id = 0

    def content(self, text: str) -> bytes:
        return self._with_id(content_frame(text))

    def part(self, delta: PartDelta) -> bytes:
        return b""

    def done(self, event: dict[str, Any]) -> bytes:
        return self._with_id(frame(event))

    def error(self, event: dict[str, Any]) -> bytes | None:
        return self._with_id(frame(event))

    def error_response(
        self, error: GatewayError, request_id: str, redact: Redactor, headers: dict[str, str]
    ) -> web.Response:
        """A failure before the stream started: the right status, and one SSE error frame."""
        body = frame(error_event(error, request_id, redact))
        return with_retry_after(
            web.Response(status=error.client_status, body=body, headers={**SSE_HEADERS, **headers}),
            error,
        )

    def _with_id(self, data: bytes) -> bytes:
        if not self._event_ids:
            return data
        self._next_id += 1
        return b"id: %d\n" % self._next_id + data


class TextFormat:
    """Only the text.  `done` adds nothing; a failure after text was sent cuts the
    connection, so that the client sees an error rather than a complete-looking answer."""

    headers = TEXT_HEADERS
    keepalive: bytes | None = None

    def content(self, text: str) -> bytes:
        return text.encode()

    def part(self, delta: PartDelta) -> bytes:
        return b""

    def done(self, event: dict[str, Any]) -> bytes:
        return b""

    def error(self, event: dict[str, Any]) -> bytes | None:
        return None

    def error_response(
        self, error: GatewayError, request_id: str, redact: Redactor, headers: dict[str, str]
    ) -> web.Response:
        response = web.Response(
            status=error.client_status, text=redact(error.message), headers=headers
        )
        response.content_type = "text/plain"
        return with_retry_after(response, error)


class AnswerNothing:
    """The base of a drop-in API's answer formats: each writes only what it overrides
    (its error shapes, and the stream or the whole answer of its subclasses)."""

    def content(self, text: str) -> bytes:
        return b""

    def part(self, delta: PartDelta) -> bytes:
        return b""

    def done(self, event: dict[str, Any]) -> bytes:
        return b""


def api_status(error: GatewayError) -> int:
    """The status a drop-in API answers `error` with before the stream: both answer a
    request they cannot read (the gateway's 415 and 422) with 400."""
    return 400 if error.client_status in (415, 422) else error.client_status


def with_retry_after(response: web.Response, error: GatewayError) -> web.Response:
    """`response` with the `Retry-After` (whole seconds, at least one) of `error`, if any."""
    if error.retry_after is not None:
        response.headers["Retry-After"] = str(max(1, math.ceil(error.retry_after)))
    return response
