"""What the official SDKs ask for beside the answer itself: the models (`GET /v1/models`
and `GET /v1/models/{name}`, in Anthropic's shape when the request carries
`anthropic-version`, as its SDKs send, else in OpenAI's) and
`POST /v1/messages/count_tokens`.

The model list is the names the key may put in `model` (as `/ai/stream/models`).  Token
counts come from the first target of the chain whose upstream counts them (an Anthropic
target: `X-Gateway-Token-Count: upstream`); where none does, or it fails, they are the
gateway's own estimate (about four characters a token, generous), and the response says
so in `X-Gateway-Token-Count: estimated`; an upstream's 400 (the request itself) is the
client's answer.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from aiohttp import web

from gateway.chat_completions_api import ChatErrors
from gateway.messages_api import PASSED_HEADERS, MessagesErrors
from gateway.messages_body import MessagesBody
from gateway.routes import read_json, request_id_of, with_passed_headers
from gateway.schemas import parse_body
from gateway.state import STATE
from policies.base import Target
from providers.base import CountsTokens, UpstreamRequest, estimate_tokens
from providers.errors import GatewayError, NotFound, UpstreamError, UpstreamRejected

log = logging.getLogger(__name__)

_EPOCH = "1970-01-01T00:00:00Z"  # models have no creation date here
_CREATED = 0  # (OpenAI's shape: a Unix time)


def add_sdk_extras_routes(app: web.Application) -> None:
    app.router.add_get("/v1/models", list_models)
    app.router.add_get("/v1/models/{name}", get_model)
    app.router.add_post("/v1/messages/count_tokens", count_tokens)


async def list_models(request: web.Request) -> web.Response:
    anthropic_client = "anthropic-version" in request.headers
    try:
        names = _names_for(request)
    except GatewayError as error:
        return _error(request, error, anthropic_client)
    entries = [_model_entry(name, anthropic_client) for name in names]
    if anthropic_client:
        first, last = (names[0], names[-1]) if names else (None, None)
        return web.json_response(
            {"data": entries, "has_more": False, "first_id": first, "last_id": last}
        )
    return web.json_response({"object": "list", "data": entries})


async def get_model(request: web.Request) -> web.Response:
    """`GET /v1/models/{name}` (the SDKs' `models.retrieve`): a name the key may use."""
    anthropic_client = "anthropic-version" in request.headers
    name = request.match_info["name"]
    try:
        if name not in _names_for(request):
            raise NotFound(f"There is no model or chain named '{name}' for this key.")
    except GatewayError as error:
        return _error(request, error, anthropic_client)
    return web.json_response(_model_entry(name, anthropic_client))


def _names_for(request: web.Request) -> list[str]:
    """The names the request's key may put in `model`."""
    state = request.app[STATE].current
    tenant = state.auth.authenticate(request)
    return state.chains.names_for(tenant.allowed)


def _model_entry(name: str, anthropic_client: bool) -> dict[str, object]:
    if anthropic_client:
        return {"type": "model", "id": name, "display_name": name, "created_at": _EPOCH}
    return {"id": name, "object": "model", "created": _CREATED, "owned_by": "gateway"}


async def count_tokens(request: web.Request) -> web.Response:
    state = request.app[STATE].current
    try:
        tenant = state.auth.authenticate(request)
        payload = await read_json(request)
        if isinstance(payload, dict):
            payload = {"max_tokens": 1, **payload}  # count_tokens takes no max_tokens
        body = parse_body(MessagesBody, payload, state.config.server.max_tokens_limit)
        name = tenant.chain_name(body.model, state.chains.default_chain)
        chain = state.chains.resolve(name, tenant.allowed)
        tenant.check_allowed(name)
    except GatewayError as error:
        return _error(request, error, anthropic_client=True)
    upstream_request = with_passed_headers(body.to_upstream(), request, PASSED_HEADERS)
    try:
        counted = await _upstream_count(upstream_request, chain.targets)
    except UpstreamRejected as error:  # the client's request, as the upstream read it
        return _error(request, error, anthropic_client=True)
    if counted is not None:
        return web.json_response(
            {"input_tokens": counted}, headers={"X-Gateway-Token-Count": "upstream"}
        )
    tokens = estimate_tokens(upstream_request.text_length())
    return web.json_response(
        {"input_tokens": tokens}, headers={"X-Gateway-Token-Count": "estimated"}
    )


async def _upstream_count(request: UpstreamRequest, targets: Sequence[Target]) -> int | None:
    """The first of the chain's targets that counts tokens, asked; None when none does or
    it failed (the caller estimates instead: a count is advice, not worth an error), but
    for a refusal of the request itself, which the client must see."""
    for target in targets:
        if isinstance(target.provider, CountsTokens):
            try:
                return await target.provider.count_tokens(request, target.model_ref(set()))
            except UpstreamRejected:
                raise
            except UpstreamError as error:
                log.info("count_tokens at %s failed (%s): estimated", target.key, error.code)
                return None
    return None


def _error(request: web.Request, error: GatewayError, anthropic_client: bool) -> web.Response:
    """`error` in the shape of the SDK that asked."""
    shape = MessagesErrors() if anthropic_client else ChatErrors()
    redact = request.app[STATE].current.redact
    return shape.error_response(error, request_id_of(request), redact, error.headers)
