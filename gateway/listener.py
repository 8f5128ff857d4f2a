"""The HTTP listener: aiohttp's server, with the connection cap and the gateway's error
shape where aiohttp answers before any handler runs.

Slow and silent clients need no code here.  aiohttp's `keepalive_timeout` (set to
`server.header_timeout_s` by `gateway.server`) is armed when a connection opens and again
when a response ends, and closes the connection if by then no complete request head has
arrived: a silent socket and headers trickled a byte at a time both end there.  It never
fires while a handler runs, so a stream of any length is not cut.

aiohttp makes its protocol object inside `web.Server.__call__` and has no option for its
class (aio-libs/aiohttp#3287), so three small subclasses carry what it lacks:
`GatewayRunner` (an `AppRunner`) builds a `GatewayServer`, which makes a
`GatewayRequestHandler` per connection.
"""

from __future__ import annotations

import asyncio
import logging
import re
from typing import Any

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.web_protocol import RequestHandler

from gateway import http_errors
from gateway.connections import OVER_CAPACITY, ConnectionCap

log = logging.getLogger("gateway")

_HEAD_BYTES = 64  # enough of a connection's first bytes to see `METHOD /ai/stream/...`
_REQUEST_TARGET = re.compile(rb"^\S{1,20} (/[^\s?#]*)")


class GatewayRequestHandler(RequestHandler):
    """One client connection: refused at once over the cap; malformed HTTP and crashes are
    answered in the gateway's error shape instead of aiohttp's plain text."""

    __slots__ = ("_admitted", "_cap", "_head")

    def __init__(self, manager: web.Server, *, cap: ConnectionCap, **kwargs: Any) -> None:
        super().__init__(manager, **kwargs)
        self._cap = cap
        self._admitted = False
        self._head = b""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        if self._cap.admit():
            self._admitted = True
            return
        if self.transport is not None:
            self.transport.write(OVER_CAPACITY)  # the close below flushes it
        self.force_close()

    def connection_lost(self, exc: BaseException | None) -> None:
        if self._admitted:
            self._admitted = False
            self._cap.release()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if len(self._head) < _HEAD_BYTES:
            self._head += data[: _HEAD_BYTES - len(self._head)]
        super().data_received(data)

    def handle_error(
        self,
        request: web.BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        if request.writer.output_size > 0:  # as aiohttp: the answer has begun, cut it
            raise ConnectionError("response already started; cannot send the error")
        error = http_errors.unhandled(status, exc)
        if error.client_status >= 500:
            self.log_exception("error handling a request from %s", request.remote, exc_info=exc)
        else:
            log.debug("malformed request from %s: %s", request.remote, error.message)
        parsed = not isinstance(exc, HttpProcessingError)
        path = request.path if parsed else self._unparsed_path()
        response = http_errors.error_response(path, error, http_errors.request_id(request))
        response.force_close()
        return response

    def _unparsed_path(self) -> str:
        """Where a request aiohttp could not parse was going, as far as it shows.

        Known only for the first request of a connection, whose first bytes are kept; for
        a later one, or a first line with no path, "/" (which gets the JSON shape).
        """
        target = _REQUEST_TARGET.match(self._head) if self._request_count <= 1 else None
        return target.group(1).decode("latin-1") if target else "/"


class GatewayServer(web.Server):
    """`web.Server` whose connections are `GatewayRequestHandler`s sharing one cap."""

    def __init__(self, plain: web.Server, cap: ConnectionCap) -> None:
        super().__init__(
            plain.request_handler,
            request_factory=plain.request_factory,
            handler_cancellation=plain.handler_cancellation,
            loop=plain._loop,
            **plain._kwargs,
        )
        self.cap = cap

    def __call__(self) -> GatewayRequestHandler:
        return GatewayRequestHandler(self, cap=self.cap, loop=self._loop, **self._kwargs)


class GatewayRunner(web.AppRunner):
    """`web.AppRunner` serving the app through a `GatewayServer`; keyword arguments reach
    each connection's `RequestHandler` as they do with `AppRunner`."""

    def __init__(self, app: web.Application, *, cap: ConnectionCap, **kwargs: Any) -> None:
        super().__init__(app, **kwargs)
        self.cap = cap

    async def _make_server(self) -> web.Server:
        return GatewayServer(await super()._make_server(), self.cap)
