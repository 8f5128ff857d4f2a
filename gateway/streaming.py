"""Turn the policy chain's deltas into the client's SSE stream.

Commit point: the status line and headers are sent with the first `content` event or
the first keep-alive comment, whichever comes first.  A failure before that becomes a
plain response with the error's status and one SSE error frame; a failure after it is
an `error` event.  Either way the stream ends with exactly one `done` or one `error`.

The upstream is read by a separate task into a small queue, so that the writer can
send keep-alive comments while the upstream is silent without cancelling a read.  When
the client goes away the handler is cancelled; `finally` cancels the reader task, which
closes the upstream connection.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from gateway.sse import (
    KEEPALIVE_FRAME,
    SSE_HEADERS,
    Redactor,
    content_frame,
    error_event,
    error_response,
    frame,
)
from providers.base import Delta, StreamEnd, TextDelta, Usage
from providers.errors import GatewayError, UpstreamProtocolError

log = logging.getLogger("gateway.streaming")

_QUEUE_SIZE = 64


@dataclass(slots=True)
class StreamOutcome:
    """How one stream ended, for logs, metrics and accounting."""

    status: int = 200
    outcome: str = "pending"  # ok | error | client_disconnected
    model: str | None = None
    usage: Usage = field(default_factory=Usage)
    error: GatewayError | None = None
    committed: bool = False
    sent_chars: int = 0


class InternalError(GatewayError):
    def __init__(self) -> None:
        super().__init__("The gateway failed while handling this request; see its logs.")


async def write_stream(
    request: web.Request,
    deltas: AsyncIterator[Delta],
    outcome: StreamOutcome,
    *,
    request_id: str,
    keepalive_s: float,
    redact: Redactor,
    headers: dict[str, str],
    done_extra: Callable[[], dict[str, Any]] | None = None,
) -> web.StreamResponse:
    """Stream `deltas` to the client; `outcome` is filled in as the stream goes."""
    queue: asyncio.Queue[Delta | GatewayError] = asyncio.Queue(_QUEUE_SIZE)
    reader = asyncio.create_task(_read_upstream(deltas, queue))
    response: web.StreamResponse | None = None

    async def commit() -> web.StreamResponse:
        outcome.committed = True
        stream = web.StreamResponse(status=200, headers={**SSE_HEADERS, **headers})
        await stream.prepare(request)
        return stream

    try:
        while True:
            if queue.empty():
                try:
                    async with asyncio.timeout(keepalive_s):
                        item = await queue.get()
                except TimeoutError:
                    response = response or await commit()
                    await response.write(KEEPALIVE_FRAME)
                    continue
            else:
                item = queue.get_nowait()

            if isinstance(item, TextDelta):
                response = response or await commit()
                await response.write(content_frame(item.text))
                outcome.sent_chars += len(item.text)
            elif isinstance(item, StreamEnd):
                outcome.outcome, outcome.model, outcome.usage = "ok", item.model, item.usage
                response = response or await commit()
                await response.write(
                    frame(_done_event(item, request_id, done_extra() if done_extra else None))
                )
                break
            else:
                outcome.outcome, outcome.error = "error", item
                event = error_event(item, request_id, redact)
                if response is None:
                    outcome.status = item.client_status
                    return error_response(item, request_id, redact, headers)
                await response.write(frame(event))
                break
        await response.write_eof()
        return response
    except (asyncio.CancelledError, ConnectionResetError):
        outcome.outcome = "client_disconnected"
        raise
    finally:
        reader.cancel()
        await asyncio.gather(reader, return_exceptions=True)


def _done_event(end: StreamEnd, request_id: str, extra: dict[str, Any] | None) -> dict[str, Any]:
    event: dict[str, Any] = {
        "type": "done",
        "model": end.model,
        "stop_reason": end.stop_reason,
        "usage": end.usage.as_dict(),
        "request_id": request_id,
    }
    if extra:
        event.update(extra)
    return event


async def _read_upstream(
    deltas: AsyncIterator[Delta], queue: asyncio.Queue[Delta | GatewayError]
) -> None:
    """Copy deltas into the queue; always finish with a `StreamEnd` or an error."""
    try:
        async for delta in deltas:
            if isinstance(delta, TextDelta) and not delta.text:
                continue
            await queue.put(delta)
            if isinstance(delta, StreamEnd):
                return
        await queue.put(UpstreamProtocolError("The upstream stream ended without a final event."))
    except GatewayError as error:
        await queue.put(error)
    except Exception:
        log.exception("unexpected failure while reading the upstream stream")
        await queue.put(InternalError())
