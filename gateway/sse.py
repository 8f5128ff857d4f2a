"""The three-event SSE schema of the public contract, encoded as whole frames.

Every event is one `data: <json>\\n\\n` frame, written with one `write()` so that clients
that split each received chunk on newlines still see whole JSON lines.  JSON is compact
and keeps non-ASCII text as UTF-8.
"""

from __future__ import annotations

from typing import Any

import orjson

from providers.errors import GatewayError

SSE_HEADERS = {
    "Content-Type": "text/event-stream; charset=utf-8",
    "Cache-Control": "no-cache",
    "X-Accel-Buffering": "no",
}
KEEPALIVE_FRAME = b": keep-alive\n\n"


def frame(event: dict[str, Any]) -> bytes:
    return b"data: " + orjson.dumps(event) + b"\n\n"


def content_frame(text: str) -> bytes:
    return b'data: {"type":"content","text":' + orjson.dumps(text) + b"}\n\n"


def error_event(error: GatewayError, request_id: str, redact: Redactor) -> dict[str, Any]:
    return {
        "type": "error",
        "error": redact(error.message),
        "code": error.code,
        "request_id": request_id,
    }


class Redactor:
    """Removes secret values from text that leaves the gateway (belt and braces)."""

    def __init__(self, secrets: list[str]) -> None:
        self._secrets = sorted({s for s in secrets if s}, key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "[redacted]")
        return text
