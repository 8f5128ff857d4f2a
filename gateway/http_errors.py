"""Errors answered outside the route handlers, in the gateway's error shape.

aiohttp itself answers an unknown path (404), a wrong method (405), HTTP it cannot parse
(400) and a handler that crashed (500), in plain text.  A client that parses error bodies
gets here the shape the handlers use, with the same status:

- on the stream routes (`/ai/stream/...`, but for the JSON endpoints `health`, `token`
  and `models`):
  one SSE error frame, as for a stream that fails before its first byte
  (`SseFormat.error_response`);
- under `/v1/` (the drop-in APIs): the error shape of the SDK that asked (Anthropic's
  when the request carries `anthropic-version`, else OpenAI's), so its typed errors work;
- elsewhere: JSON `{"error": "<message>", "code": "<code>"}`: the ops routes'
  `{"error": message}`, with the code added.

`route_errors` (a middleware) answers the router's 404 and 405; the listener
(`gateway.listener`) answers the rest with `unhandled`.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping

from aiohttp import web
from aiohttp.http_exceptions import (
    BadHttpMethod,
    BadStatusLine,
    HttpProcessingError,
    LineTooLong,
)
from aiohttp.typedefs import Handler
from aiohttp.web_protocol import RequestPayloadError

from gateway.chat_completions_api import ChatErrors
from gateway.formats import SseFormat
from gateway.messages_api import MessagesErrors
from gateway.routes import request_id_of
from gateway.sse import Redactor
from providers.errors import (
    GatewayError,
    GatewayTimeout,
    InternalError,
    MalformedHttp,
    MethodNotAllowed,
    NotFound,
)

_STREAM_PREFIX = "/ai/stream/"
_JSON_UNDER_STREAM_PREFIX = ("/ai/stream/health", "/ai/stream/token", "/ai/stream/models")
_OWN_TEXT = Redactor([])  # every message here is the gateway's own text, never a secret
_NOT_FOUND = (
    "There is no endpoint at this path; streams are POST /ai/stream/chat and "
    "POST /ai/stream/generate, and GET /ai/stream/health describes this gateway."
)
_API_PREFIX = "/v1/"
_NOT_FOUND_UNDER_API = (
    "There is no endpoint at this path; this gateway serves POST /v1/messages, "
    "POST /v1/messages/count_tokens, POST /v1/chat/completions and GET /v1/models."
)


def error_response(
    path: str,
    error: GatewayError,
    request_id: str,
    headers: Mapping[str, str] | None = None,
    anthropic_client: bool = False,
) -> web.Response:
    """`error` in the shape a client of `path` parses: SSE on the stream routes, an SDK's
    under `/v1/`, else JSON."""
    extra = dict(headers or {})
    if path.startswith(_STREAM_PREFIX) and path not in _JSON_UNDER_STREAM_PREFIX:
        extra["X-Request-ID"] = request_id
        return SseFormat().error_response(error, request_id, _OWN_TEXT, extra)
    if path.startswith(_API_PREFIX):
        extra["X-Request-ID"] = request_id
        shape = MessagesErrors() if anthropic_client else ChatErrors()
        return shape.error_response(error, request_id, _OWN_TEXT, extra)
    return web.json_response(
        {"error": error.message, "code": error.code}, status=error.client_status, headers=extra
    )


@web.middleware
async def route_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """The router's 404 and 405 in the gateway's shape (405 keeps its `Allow`).

    Only requests the router matched to no route are answered here: a handler's own
    `HTTPNotFound` (an unknown tenant in `/admin/usage`) passes untouched.
    """
    refused = request.match_info.http_exception
    error: GatewayError
    if isinstance(refused, web.HTTPMethodNotAllowed):
        allowed = ", ".join(sorted(refused.allowed_methods))
        error = MethodNotAllowed(
            f"{request.method} is not allowed on {request.path}; use {allowed}.",
            headers={"Allow": refused.headers["Allow"]},
        )
    elif isinstance(refused, web.HTTPNotFound):
        under_api = request.path.startswith(_API_PREFIX)
        error = NotFound(_NOT_FOUND_UNDER_API if under_api else _NOT_FOUND)
    else:
        return await handler(request)
    anthropic_client = "anthropic-version" in request.headers
    return error_response(
        request.path, error, request_id_of(request), error.headers, anthropic_client
    )


def request_id(request: web.BaseRequest) -> str:
    """The client's `X-Request-ID` when the request got as far as a parsed one, else new."""
    if isinstance(request, web.Request):
        return request_id_of(request)
    return uuid.uuid4().hex


def unhandled(status: int, exc: BaseException | None) -> GatewayError:
    """What to answer when aiohttp would answer in plain text: HTTP it could not parse
    (`status` 400), a body that broke off mid-read, a handler's time-out (504) or crash
    (500).  The message says what to do; it never carries a traceback."""
    if isinstance(exc, LineTooLong):
        limit = f"{exc.args[1]} bytes" if len(exc.args) > 1 else "the limit"
        return MalformedHttp(
            f"A header line or the URL is longer than {limit}; "
            "send smaller headers (cookies, tokens) or a shorter URL.",
        )
    if isinstance(exc, BadHttpMethod) and "HTTPS" in exc.message:
        return MalformedHttp("This port speaks plain HTTP, not HTTPS; use an http:// URL.")
    if isinstance(exc, BadStatusLine):
        return MalformedHttp(
            "The first line is not an HTTP/1.1 request line ('POST /ai/stream/chat HTTP/1.1'); "
            "send HTTP/1.1 to this port.",
        )
    if isinstance(exc, RequestPayloadError):
        cause = exc.__cause__
        reason = _reason(cause.message if isinstance(cause, HttpProcessingError) else "")
        return MalformedHttp(
            f"The request body could not be read ({reason}); send it whole, "
            "encoded as its headers say.",
        )
    if status < 500:
        reason = _reason(getattr(exc, "message", "") or "malformed")
        return MalformedHttp(
            f"The request is not valid HTTP/1.1 ({reason}); send well-formed headers and "
            "one Content-Length or chunked body.",
        )
    if status == 504:
        return GatewayTimeout("The gateway took too long to answer this request; retry it.")
    return InternalError(
        "The gateway failed on this request; retry it, and report it if it fails again."
    )


def _reason(text: str) -> str:
    """The parser's reason without the client's bytes it quotes on the lines below."""
    return text.strip().split("\n", 1)[0].rstrip(": ")[:100] or "malformed"
