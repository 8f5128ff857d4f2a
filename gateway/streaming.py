"""Turn the policy chain's deltas into the client's SSE stream.

Commit point: the status line and headers are sent with the first `content` event or
the first keep-alive comment, whichever comes first.  A failure before that becomes a
plain response with the error's status and one SSE error frame; a failure after it is
an `error` event.  Either way the stream ends with exactly one `done` or one `error`.

The upstream is read by a separate task into a small queue, so that the writer can
send keep-alive comments while the upstream is silent without cancelling a read.  When
the client goes away the handler is cancelled; `finally` cancels the reader task, which
closes the upstream connection.  `end(error)` ends an open stream from outside (graceful
shutdown): the reader is cancelled and the client gets that error as the last event.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from gateway.formats import SseFormat, StreamFormat
from gateway.sse import Redactor, error_event
from providers.base import Delta, StreamEnd, TextDelta, Usage
from providers.errors import GatewayError, UpstreamProtocolError

log = logging.getLogger("gateway.streaming")

_QUEUE_SIZE = 64

Item = Delta | GatewayError


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
    first_content_at: float | None = None  # time.perf_counter()
    upstream_wait_s: float = 0.0
    text: list[str] | None = None  # the streamed text, kept only when asked for


class InternalError(GatewayError):
    def __init__(self) -> None:
        super().__init__("The gateway failed while handling this request; see its logs.")


@dataclass(slots=True)
class StreamOptions:
    request_id: str
    keepalive_s: float
    redact: Redactor
    headers: dict[str, str]
    done_extra: Callable[[], dict[str, Any]] | None = None
    format: StreamFormat = field(default_factory=SseFormat)


class SseStream:
    def __init__(
        self,
        request: web.Request,
        deltas: AsyncIterator[Delta],
        outcome: StreamOutcome,
        options: StreamOptions,
    ) -> None:
        self._request = request
        self._deltas = deltas
        self._outcome = outcome
        self._options = options
        self._queue: asyncio.Queue[Item] = asyncio.Queue(_QUEUE_SIZE)
        self._reader: asyncio.Task[None] | None = None
        self._ending: GatewayError | None = None

    def end(self, error: GatewayError) -> None:
        """End the stream from outside with `error` as its last event (e.g. shutdown)."""
        self._ending = error
        if self._reader is not None:
            self._reader.cancel()
        if not self._queue.full():
            self._queue.put_nowait(error)

    async def run(self) -> web.StreamResponse:
        """Stream the deltas to the client; the outcome is filled in as it goes."""
        outcome, options = self._outcome, self._options
        queue, wire = self._queue, options.format
        self._reader = asyncio.create_task(self._read_upstream())
        response: web.StreamResponse | None = None
        try:
            while True:
                if self._ending is not None:
                    item: Item = self._ending
                elif queue.empty() and wire.keepalive is not None:
                    try:
                        async with asyncio.timeout(options.keepalive_s):
                            item = await queue.get()
                    except TimeoutError:
                        response = response or await self._commit()
                        await response.write(wire.keepalive)
                        continue
                elif queue.empty():
                    item = await queue.get()
                else:
                    item = queue.get_nowait()

                if isinstance(item, TextDelta):
                    response = response or await self._commit()
                    await response.write(wire.content(item.text))
                    if outcome.first_content_at is None:
                        outcome.first_content_at = time.perf_counter()
                    outcome.sent_chars += len(item.text)
                    if outcome.text is not None:
                        outcome.text.append(item.text)
                elif isinstance(item, StreamEnd):
                    outcome.outcome, outcome.model, outcome.usage = "ok", item.model, item.usage
                    response = response or await self._commit()
                    await response.write(wire.done(self._done_event(item)))
                    break
                else:
                    outcome.outcome, outcome.error = "error", item
                    if response is None:
                        outcome.status = item.client_status
                        return wire.error_response(
                            item, options.request_id, options.redact, options.headers
                        )
                    last = wire.error(error_event(item, options.request_id, options.redact))
                    if last is None:
                        self._cut(response)
                        return response
                    await response.write(last)
                    break
            await response.write_eof()
            return response
        except (asyncio.CancelledError, ConnectionResetError):
            outcome.outcome = "client_disconnected"
            raise
        finally:
            self._reader.cancel()
            await asyncio.gather(self._reader, return_exceptions=True)

    async def _commit(self) -> web.StreamResponse:
        self._outcome.committed = True
        headers = {**self._options.format.headers, **self._options.headers}
        stream = web.StreamResponse(status=200, headers=headers)
        await stream.prepare(self._request)
        return stream

    def _cut(self, response: web.StreamResponse) -> None:
        """End the response without its final chunk, so the client sees it as failed."""
        response.force_close()
        if self._request.transport is not None:
            self._request.transport.abort()

    def _done_event(self, end: StreamEnd) -> dict[str, Any]:
        event: dict[str, Any] = {
            "type": "done",
            "model": end.model,
            "stop_reason": end.stop_reason,
            "usage": end.usage.as_dict(),
            "request_id": self._options.request_id,
        }
        if self._options.done_extra is not None:
            event.update(self._options.done_extra())
        return event

    async def _read_upstream(self) -> None:
        """Copy deltas into the queue; always finish with a `StreamEnd` or an error.

        Time spent waiting for the next delta is the upstream's, and is added up for the
        overhead metric.
        """
        queue, outcome, deltas = self._queue, self._outcome, self._deltas
        clock = time.perf_counter
        try:
            while True:
                asked = clock()
                try:
                    delta = await anext(deltas)
                except StopAsyncIteration:
                    break
                finally:
                    outcome.upstream_wait_s += clock() - asked
                if isinstance(delta, TextDelta) and not delta.text:
                    continue
                await queue.put(delta)
                if isinstance(delta, StreamEnd):
                    return
            await queue.put(
                UpstreamProtocolError("The upstream stream ended without a final event.")
            )
        except GatewayError as error:
            await queue.put(error)
        except Exception:
            log.exception("unexpected failure while reading the upstream stream")
            await queue.put(InternalError())
