"""`GET /ai/stream/resume/<id>`: a dropped stream picked up again, on any replica; and
`DELETE /ai/stream/resume/<id>`: the user's Stop button.

A resume replays every event after the one named by `Last-Event-ID: <id>:<seq>` (what a
browser's `EventSource` sends by itself when it reconnects) or `?after=<seq>` (neither:
from the start), each with its `id:` line, then follows the live stream to its terminal
event, with keep-alive comments while it is silent.  Only the tenant that started a
stream finds it (the log's key holds the tenant): another's is a 404, as is an unknown
or expired id.  Resuming costs nothing against the tenant's limits; the stream's usage
is settled once, by the replica that runs it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncGenerator

from aiohttp import web

from gateway.formats import SseFormat
from gateway.resume.log import Event, EventsTrimmed, StreamGone, StreamLog
from gateway.routes import request_id_of
from gateway.sse import KEEPALIVE_FRAME, SSE_HEADERS, error_event, frame
from gateway.state import STATE, GatewayState
from providers.errors import (
    EventsExpired,
    GatewayError,
    GatewayUnavailable,
    InvalidRequest,
    NotFound,
    StreamStopped,
)

log = logging.getLogger(__name__)
UI_STREAM_HEADER = {"x-vercel-ai-ui-message-stream": "v1"}  # (a UI stream resumes as one)


def add_resume_routes(app: web.Application) -> None:
    app.router.add_get("/ai/stream/resume/{stream_id}", resume)
    app.router.add_delete("/ai/stream/resume/{stream_id}", stop)
    app.router.add_get("/ai/stream/chat/{chat_id}/stream", resume_chat)


async def resume_chat(request: web.Request) -> web.StreamResponse:
    """`useChat({resume: true})`'s reconnect: the chat's running stream from its start, or
    204 when none is running."""
    state = request.app[STATE].current
    request_id = request_id_of(request)
    try:
        tenant = state.auth.authenticate(request, allow_token=True)
        stream_log = _log_of(state)
        stream_id = await stream_log.chat_stream(tenant.id, request.match_info["chat_id"])
    except GatewayError as error:
        headers = {"X-Request-ID": request_id}
        return SseFormat().error_response(error, request_id, state.redact, headers)
    if stream_id is None:
        return web.Response(status=204)
    return await _resume(request, state, tenant.id, stream_id, after=0)


async def resume(request: web.Request) -> web.StreamResponse:
    state = request.app[STATE].current
    stream_id = request.match_info["stream_id"]
    try:
        tenant = state.auth.authenticate(request, allow_token=True)
        after = _after(request, stream_id)
    except GatewayError as error:
        request_id = request_id_of(request)
        headers = {"X-Request-ID": request_id, "X-Stream-ID": stream_id}
        return SseFormat().error_response(error, request_id, state.redact, headers)
    return await _resume(request, state, tenant.id, stream_id, after)


async def _resume(
    request: web.Request, state: GatewayState, tenant: str, stream_id: str, after: int
) -> web.StreamResponse:
    request_id = request_id_of(request)
    headers = {"X-Request-ID": request_id, "X-Stream-ID": stream_id}
    try:
        stream_log = _log_of(state)
        events = _follow(stream_log, tenant, stream_id, after)
        try:
            first = await _first(events)
        except _failures_of(stream_log):
            log.warning("resume of %s: the stream log failed", stream_id, exc_info=True)
            raise GatewayUnavailable("The stream's log could not be read; try again.") from None
    except GatewayError as error:
        return SseFormat().error_response(error, request_id, state.redact, headers)
    response = web.StreamResponse(headers={**SSE_HEADERS, **UI_STREAM_HEADER, **headers})
    await response.prepare(request)
    await _relay(response, first, events, stream_id, state, request_id)
    return response


async def stop(request: web.Request) -> web.Response:
    """Stop a stream, wherever it runs: here at once, elsewhere at its next batch."""
    state = request.app[STATE].current
    stream_id = request.match_info["stream_id"]
    try:
        tenant = state.auth.authenticate(request)
        running = state.shared.resumable.get(stream_id)
        if running is not None and running[0] == tenant.id:
            running[1].end(StreamStopped())
        elif not await _log_of(state).stop(tenant.id, stream_id):
            raise NotFound(f"There is no stream '{stream_id}' to stop.")
    except GatewayError as error:
        body = {"error": error.message, "code": error.code}
        return web.json_response(body, status=error.client_status)
    return web.Response(status=204)


def _log_of(state: GatewayState) -> StreamLog:
    if state.shared.stream_log is None:
        raise NotFound("Streams are not resumable here (resume.enabled is false).")
    return state.shared.stream_log


def _failures_of(stream_log: StreamLog) -> tuple[type[Exception], ...]:
    """What a read of the log raises when its store fails."""
    return (OSError, *stream_log.failures)


def _after(request: web.Request, stream_id: str) -> int:
    """The seq of the last event the client has: `Last-Event-ID`, `?after=`, or 0."""
    last_event = request.headers.get("Last-Event-ID")
    given = request.query.get("after", "0")
    if last_event:
        named, _, given = last_event.rpartition(":")
        if named != stream_id:
            raise InvalidRequest(f"Last-Event-ID '{last_event}' is not an event of this stream.")
    if not given.isdigit():
        raise InvalidRequest("The event to resume after must be a whole number (<id>:<seq>).")
    return int(given)


async def _follow(
    stream_log: StreamLog, tenant: str, stream_id: str, after: int
) -> AsyncGenerator[Event, None]:
    try:
        async for event in stream_log.follow(tenant, stream_id, after):
            yield event
    except StreamGone:
        raise NotFound(f"There is no stream '{stream_id}' to resume (or it expired).") from None
    except EventsTrimmed:
        raise EventsExpired() from None


async def _first(events: AsyncGenerator[Event, None]) -> Event | None:
    """The first event, so that a failure is still a plain error response; None when the
    stream had ended with the very event the client already has."""
    return await anext(events, None)


async def _relay(
    response: web.StreamResponse,
    first: Event | None,
    events: AsyncGenerator[Event, None],
    stream_id: str,
    state: GatewayState,
    request_id: str,
) -> None:
    """Write the events, numbered, and keep-alives while the stream is silent."""
    prefix = b"id: " + stream_id.encode() + b":"
    keepalive_s = state.config.server.keepalive_seconds
    store_failures = _failures_of(_log_of(state))
    event = first
    try:
        while event is not None:
            await response.write(prefix + str(event.seq).encode() + b"\n" + event.frame)
            if event.last:
                break
            event = await _next_or_keepalive(events, response, keepalive_s)
    except GatewayError as error:  # the stream expired, or its replica died, midway
        await response.write(frame(error_event(error, request_id, state.redact)))
    except store_failures:  # the log's store failed midway: end with a terminal event
        log.warning("resume of %s: the stream log failed", stream_id, exc_info=True)
        unavailable = GatewayUnavailable("The stream's log could not be read; try again.")
        await response.write(frame(error_event(unavailable, request_id, state.redact)))
    finally:
        with contextlib.suppress(Exception):
            await events.aclose()
    await response.write_eof()


async def _next_or_keepalive(
    events: AsyncGenerator[Event, None], response: web.StreamResponse, keepalive_s: float
) -> Event | None:
    waiting = asyncio.ensure_future(anext(events, None))
    try:
        while True:
            done, _ = await asyncio.wait({waiting}, timeout=keepalive_s)
            if done:
                return waiting.result()
            await response.write(KEEPALIVE_FRAME)
    finally:
        waiting.cancel()
