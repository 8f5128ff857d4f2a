"""`GET /ai/stream/models`: the names a key may put in a request's `model`, for pickers.

The answer is `{"default": name, "models": [names, sorted]}`: `default` is what serves a
request that names no model (the tenant's default chain, else the gateway's), `models`
the chains and model aliases the tenant may use (every one the gateway knows when its
`chains` does not restrict it).  It authenticates as the stream endpoints do: a tenant
key in a header, or a stream token in `?token=`.  Errors are JSON in the gateway's shape.
"""

from __future__ import annotations

from aiohttp import web

from gateway.http_errors import error_response
from gateway.routes import request_id_of
from gateway.state import STATE
from providers.errors import GatewayError


def add_catalog_routes(app: web.Application) -> None:
    app.router.add_get("/ai/stream/models", models)


async def models(request: web.Request) -> web.Response:
    state = request.app[STATE].current
    try:
        tenant = state.auth.authenticate(request, allow_token=True)
    except GatewayError as error:
        return error_response(request.path, error, request_id_of(request), error.headers)
    names = state.chains.names_for(tenant.allowed)
    default = tenant.chain_name(None, state.chains.default_chain)
    return web.json_response({"default": default, "models": names})
