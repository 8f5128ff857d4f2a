"""What the official SDKs ask for beside the answer itself: the model list
(`GET /v1/models`, in Anthropic's shape when the request carries `anthropic-version`, as
its SDKs send, else in OpenAI's) and `POST /v1/messages/count_tokens`.

The model list is the names the key may put in `model` (as `/ai/stream/models`).  Token
counts are the gateway's own estimate (about four characters a token, generous), not an
upstream's count, and the response says so in `X-Gateway-Token-Count: estimated`.
"""

from __future__ import annotations

import time

from aiohttp import web

from gateway.chat_completions_api import ChatErrors
from gateway.messages_api import MessagesBody, MessagesErrors
from gateway.routes import read_json, request_id_of
from gateway.schemas import parse_body
from gateway.state import STATE
from providers.base import estimate_tokens
from providers.errors import GatewayError

_EPOCH = "1970-01-01T00:00:00Z"  # models have no creation date here


def add_sdk_extras_routes(app: web.Application) -> None:
    app.router.add_get("/v1/models", list_models)
    app.router.add_post("/v1/messages/count_tokens", count_tokens)


async def list_models(request: web.Request) -> web.Response:
    state = request.app[STATE].current
    anthropic_client = "anthropic-version" in request.headers
    try:
        tenant = state.auth.authenticate(request)
    except GatewayError as error:
        return _error(request, error, anthropic_client)
    names = sorted(set(tenant.allowed)) if tenant.allowed else state.chains.names
    if anthropic_client:
        data = [
            {"type": "model", "id": name, "display_name": name, "created_at": _EPOCH}
            for name in names
        ]
        first, last = (names[0], names[-1]) if names else (None, None)
        return web.json_response(
            {"data": data, "has_more": False, "first_id": first, "last_id": last}
        )
    created = int(time.time())
    listed: list[dict[str, object]] = [
        {"id": name, "object": "model", "created": created, "owned_by": "gateway"} for name in names
    ]
    return web.json_response({"object": "list", "data": listed})


async def count_tokens(request: web.Request) -> web.Response:
    state = request.app[STATE].current
    try:
        state.auth.authenticate(request)
        payload = await read_json(request)
        if isinstance(payload, dict):
            payload.setdefault("max_tokens", 1)  # count_tokens takes no max_tokens
        body = parse_body(MessagesBody, payload, state.config.server.max_tokens_limit)
        state.chains.resolve(body.model, ())
    except GatewayError as error:
        return _error(request, error, anthropic_client=True)
    tokens = estimate_tokens(body.to_upstream().text_length())
    return web.json_response(
        {"input_tokens": tokens}, headers={"X-Gateway-Token-Count": "estimated"}
    )


def _error(request: web.Request, error: GatewayError, anthropic_client: bool) -> web.Response:
    """`error` in the shape of the SDK that asked."""
    shape = MessagesErrors() if anthropic_client else ChatErrors()
    redact = request.app[STATE].current.redact
    return shape.error_response(error, request_id_of(request), redact, error.headers)
