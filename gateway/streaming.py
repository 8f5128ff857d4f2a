"""Turn the policy chain's deltas into the client's SSE stream.

Commit point: the status line and headers are sent with the first `content` event or
the first keep-alive comment, whichever comes first.  A failure before that becomes a
plain response with the error's status and one SSE error frame; a failure after it is
an `error` event.  Either way the stream ends with exactly one `done` or one `error`.

The handler's task reads the policy chain itself; keep-alive comments come from a timer
while the upstream is silent.  When the client goes away the handler is cancelled, which
closes the chain and so the upstream connection.  `end(error)` ends an open stream from
outside (graceful shutdown): the read is cancelled and the client gets that error as the
last event.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncGenerator, Callable
from contextlib import aclosing
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from gateway.formats import SseFormat, StreamFormat
from gateway.resume.recorder import Recorder
from gateway.sse import Redactor, error_event
from providers.base import Delta, StreamEnd, TextDelta, Usage
from providers.content import part_length
from providers.errors import ClientLeft, GatewayError, InternalError, UpstreamProtocolError

log = logging.getLogger("gateway.streaming")


@dataclass(slots=True)
class StreamOutcome:
    """How one stream ended, for logs, metrics and accounting."""

    status: int = 200
    outcome: str = "pending"  # ok | error | client_disconnected
    model: str | None = None
    usage: Usage = field(default_factory=Usage)
    error: GatewayError | None = None
    sent_chars: int = 0
    first_content_at: float | None = None  # time.perf_counter()
    upstream_wait_s: float = 0.0
    text: list[str] | None = None  # the streamed text, kept only when asked for
    client_left: bool = False  # the client left; the answer went on into its log


@dataclass(slots=True)
class StreamOptions:
    request_id: str
    keepalive_s: float
    redact: Redactor
    headers: dict[str, str]
    done_extra: Callable[[], dict[str, Any]] | None = None
    format: StreamFormat = field(default_factory=SseFormat)
    # Headers known only once the upstream call began, read when the headers are sent.
    late_headers: Callable[[], dict[str, str]] | None = None
    # A resumable stream: its frames are numbered and logged, and with
    # `continue_after_disconnect` a client that leaves does not end it.
    recorder: Recorder | None = None
    continue_after_disconnect: bool = False
    # What an answer's usage cost in USD (None: its model has no price), for `done`.
    cost_usd: Callable[[Usage], float | None] | None = None


class SseStream:
    def __init__(
        self,
        request: web.Request,
        deltas: AsyncGenerator[Delta, None],
        outcome: StreamOutcome,
        options: StreamOptions,
    ) -> None:
        self._request = request
        self._deltas = deltas
        self._outcome = outcome
        self._options = options
        self._response: web.StreamResponse | None = None
        self._committing: asyncio.Future[web.StreamResponse] | None = None
        self._task: asyncio.Task[Any] | None = None
        self._ending: GatewayError | None = None
        self._handler_committing = False  # the handler's task is sending the headers
        self._end_waits = False  # an `end()` came meanwhile: it takes effect once they are out
        self._keepalive = _KeepAlive(self, options.keepalive_s)
        self._client_left = False  # (a stream that goes on for its log, without its client)

    def end(self, error: GatewayError) -> None:
        """End the stream from outside with `error` as its last event (e.g. shutdown)."""
        self._ending = error
        if self._handler_committing:
            self._end_waits = True  # see `_commit`
        elif self._task is not None:
            self._task.cancel()

    async def run(self) -> web.StreamResponse:
        """Stream the deltas to the client; the outcome is filled in as it goes.

        The handler's own task reads the chain, so a client that goes away cancels the
        upstream call directly; keep-alives are written from a timer.
        """
        outcome, wire = self._outcome, self._options.format
        task = self._task = asyncio.current_task()
        assert task is not None
        clock = time.perf_counter
        if wire.keepalive is not None:
            self._keepalive.start()
        if self._options.recorder is not None:
            self._options.recorder.watch_stops()
        try:
            try:
                async with aclosing(self._deltas) as deltas:
                    while True:
                        asked = clock()
                        try:
                            item = await anext(deltas)
                        except StopAsyncIteration:
                            raise UpstreamProtocolError(
                                "The upstream stream ended without a final event."
                            ) from None
                        finally:
                            outcome.upstream_wait_s += clock() - asked
                        if isinstance(item, TextDelta):
                            if not item.text:
                                continue
                            await self._write(wire.content(item.text))
                            outcome.sent_chars += len(item.text)
                            if outcome.text is not None:
                                outcome.text.append(item.text)
                        elif not isinstance(item, StreamEnd):
                            await self._write(wire.part(item))
                            outcome.sent_chars += part_length(item)
                        else:
                            outcome.outcome, outcome.model = "ok", item.model
                            outcome.usage = item.usage
                            await self._write_last(wire.done(self._done_event(item)))
                            return self._response or web.StreamResponse()
            except asyncio.CancelledError:
                if self._ending is None or task.uncancel() > 0:
                    raise
                error: GatewayError = self._ending
            except GatewayError as failure:
                error = failure
            except Exception as failure:
                if isinstance(failure, ConnectionError) and self._client_gone():
                    raise
                log.exception("unexpected failure while streaming")
                error = InternalError()
            return await self._fail(error)
        except asyncio.CancelledError:
            outcome.outcome = "client_disconnected"
            self._abandon()
            raise
        except ConnectionError:
            # The client left while a frame was being written (its socket closed before the
            # handler was cancelled): the same as leaving between writes, and no failure of
            # the gateway's.  Returned, not raised, so that aiohttp logs nothing either.
            outcome.outcome = "client_disconnected"
            self._abandon()
            return self._response or web.StreamResponse()
        finally:
            self._keepalive.stop()
            if self._options.recorder is not None:
                self._options.recorder.close()

    async def _write(self, chunk: bytes) -> None:
        """Write one piece of the answer (a format that answers whole holds it back)."""
        if chunk:
            recorder = self._options.recorder
            await self._send(await recorder.record(chunk) if recorder is not None else chunk)
            self._keepalive.wrote()
        if self._outcome.first_content_at is None:
            self._outcome.first_content_at = time.perf_counter()

    async def _write_last(self, chunk: bytes) -> None:
        """The terminal event, logged whole before the client gets it, then the end."""
        recorder = self._options.recorder
        await self._send(await recorder.record(chunk, last=True) if recorder else chunk)
        if not self._client_left:
            response = self._response or await self._commit()
            await response.write_eof()

    async def _send(self, chunk: bytes) -> None:
        """Write to the client.  Once it left, a stream that goes on for its log (resume
        with `continue_after_disconnect`) writes nowhere; any other ends as it did."""
        if self._client_left:
            return
        try:
            response = self._response or await self._commit()
            await response.write(chunk)
        except ConnectionError:
            options = self._options
            if options.recorder is None or not options.continue_after_disconnect:
                raise
            self._client_left = True
            self._outcome.client_left = True

    def _abandon(self) -> None:
        """A logged stream that ends because its client left: its log gets a terminal
        event, so that a resume does not wait for one that never comes."""
        recorder, options = self._options.recorder, self._options
        if recorder is None or recorder.ended:
            return
        event = error_event(ClientLeft(), options.request_id, options.redact)
        frame = options.format.error(event)
        if frame:
            recorder.finish_in_background(frame)

    async def _fail(self, error: GatewayError) -> web.StreamResponse:
        outcome, options, wire = self._outcome, self._options, self._options.format
        outcome.outcome, outcome.error = "error", error
        if self._response is None and self._committing is None:
            outcome.status = error.client_status
            return wire.error_response(error, options.request_id, options.redact, options.headers)
        last = wire.error(error_event(error, options.request_id, options.redact))
        if last is None:
            response = self._response or await self._commit()
            self._cut(response)
            return response
        await self._write_last(last)
        return self._response or web.StreamResponse()

    async def _commit(self) -> web.StreamResponse:
        """Send the status and headers, once, whoever gets here first (the handler or the
        keep-alive timer's task); the other waits for them.  Done in the caller's own task:
        a task of its own would cost the first token a turn of the event loop."""
        if self._response is not None:
            return self._response
        if self._committing is not None:
            return await asyncio.shield(self._committing)
        committing = self._committing = asyncio.get_running_loop().create_future()
        # `end()` waits while the handler sends the headers: cancelled halfway, they could
        # not be finished, and a fresh response could not be started either.
        self._handler_committing = asyncio.current_task() is self._task
        try:
            response = await self._prepare()
        except asyncio.CancelledError:
            committing.cancel()
            raise
        except BaseException as failure:
            committing.set_exception(failure)
            committing.exception()  # (retrieved: the one who waits, if any, gets it too)
            raise
        finally:
            self._handler_committing = False
        self._response = response
        committing.set_result(response)
        if self._end_waits and self._ending is not None:
            self._end_waits = False
            raise self._ending  # the `end()` that waited: the stream ends with its error
        return response

    async def _prepare(self) -> web.StreamResponse:
        late = self._options.late_headers
        headers = {
            **self._options.format.headers,
            **self._options.headers,
            **(late() if late is not None else {}),
        }
        response = _HeadersWithFirstWrite(status=200, headers=headers)
        await response.prepare(self._request)
        return response

    async def write_keepalive(self) -> None:
        keepalive = self._options.format.keepalive
        if keepalive is None or self._client_left:
            return
        try:
            response = self._response or await self._commit()
            await response.write(keepalive)
        except (ConnectionResetError, RuntimeError):
            pass  # the client is gone, or the stream just ended: the handler sees to it

    def _client_gone(self) -> bool:
        transport = self._request.transport
        return transport is None or transport.is_closing()

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
        cost = self._options.cost_usd(end.usage) if self._options.cost_usd else None
        if cost is not None:
            event["usage"]["cost_usd"] = round(cost, 6)
        if self._options.done_extra is not None:
            event.update(self._options.done_extra())
        return event


class _HeadersWithFirstWrite(web.StreamResponse):
    """Status and headers go out in the same packet as the first event (one socket write
    fewer per stream): every commit here is followed at once by a write.  aiohttp's own
    `Response` buffers them the same way (the switch is aiohttp 3.12's, the least the
    project installs)."""

    _send_headers_immediately = False


class _KeepAlive:
    """Writes a keep-alive comment when nothing was written for `interval_s`.

    One timer per interval, not per event: writing content only records the time.
    """

    def __init__(self, stream: SseStream, interval_s: float) -> None:
        self._stream = stream
        self._interval_s = interval_s
        self._last = 0.0
        self._timer: asyncio.TimerHandle | None = None
        self._writing: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._last = self._loop.time()
        self._timer = self._loop.call_at(self._last + self._interval_s, self._tick)

    def wrote(self) -> None:
        if self._timer is not None:
            self._last = self._loop.time()

    def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._writing is not None and not self._writing.done():
            self._writing.cancel()

    def _tick(self) -> None:
        now = self._loop.time()
        if now - self._last >= self._interval_s and (self._writing is None or self._writing.done()):
            self._writing = asyncio.ensure_future(self._stream.write_keepalive())
            self._last = now
        self._timer = self._loop.call_at(self._last + self._interval_s, self._tick)
