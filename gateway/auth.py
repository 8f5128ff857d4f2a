"""Who is calling: API keys → tenants, and what each tenant may use.

Keys are stored only as SHA-256 hashes; a presented key is hashed and looked up by its
digest, so the comparison never runs over the secret itself (no timing leak about the
key).  In `auth.mode: none` every request is the one anonymous tenant.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from aiohttp import web

from gateway.config import GatewayConfig, TenantLimits
from gateway.stream_tokens import StreamTokens
from policies.admission.limits import Limits
from providers.errors import Forbidden, Unauthorized

ANONYMOUS = "anonymous"


@dataclass(frozen=True, slots=True)
class Tenant:
    id: str
    name: str
    limits: Limits
    allowed: tuple[str, ...]  # chain and model names; empty means all
    default_chain: str | None = None
    log_content: bool = False

    def chain_name(self, requested: str | None, global_default: str) -> str:
        """What the request asked for, else the tenant's default, else the gateway's."""
        if requested:
            return requested
        if self.default_chain:
            return self.default_chain
        if self.allowed and global_default not in self.allowed:
            return self.allowed[0]
        return global_default

    def check_allowed(self, name: str) -> None:
        if self.allowed and name not in self.allowed:
            raise Forbidden(f"This key may not use '{name}'. Allowed: {', '.join(self.allowed)}.")


class Authenticator:
    def __init__(self, config: GatewayConfig, tokens: StreamTokens) -> None:
        self.required = config.auth.mode == "api_key"
        self.tokens = tokens
        self.anonymous = Tenant(ANONYMOUS, "Anonymous", _limits(config.auth.anonymous_limits), ())
        self._by_digest: dict[str, Tenant] = {}
        self._by_id: dict[str, Tenant] = {}
        for t in config.tenants:
            tenant = Tenant(
                t.id,
                t.name or t.id,
                _limits(t.limits),
                tuple(t.chains),
                t.default_chain,
                t.log_content,
            )
            self._by_id[t.id] = tenant
            for key in t.keys:
                self._by_digest[key.removeprefix("sha256:")] = tenant

    def authenticate(self, request: web.Request, allow_token: bool = False) -> Tenant:
        """The calling tenant, from its key (or, where allowed, a stream token)."""
        if not self.required:
            return self.anonymous
        token = request.query.get("token") if allow_token else None
        if token:
            tenant_id = self.tokens.verify(token)
            if tenant_id not in self._by_id:
                raise Unauthorized("Invalid stream token.")
            return self._by_id[tenant_id]
        key = presented_key(request)
        if not key:
            raise Unauthorized(missing_key_advice(request))
        tenant = self._by_digest.get(hashlib.sha256(key.encode()).hexdigest())
        if tenant is None:
            raise Unauthorized("Unknown API key.")
        return tenant


CHAT_CLI_AGENT = "ai-gateway-chat"  # the User-Agent of `ai-gateway chat`
DEMO_PAGE_CLIENT = "demo-page"  # the X-Gateway-Client header of the demo page


def missing_key_advice(request: web.Request) -> str:
    """What the client that sent a request without a key should do, in its own terms."""
    if request.headers.get("X-Gateway-Client") == DEMO_PAGE_CLIENT:
        return "This gateway needs an API key: fill in the key field above and send again."
    if request.headers.get("User-Agent", "").startswith(CHAT_CLI_AGENT):
        return "This gateway needs an API key: export AI_GATEWAY_KEY=<your key> and run again."
    if request.method == "GET":
        return (
            "This gateway needs an API key. A browser's EventSource cannot send one: get a "
            "stream token from POST /ai/stream/token (with the key in a header) and add "
            "?token=<token> to this URL."
        )
    return "Missing API key: send 'Authorization: Bearer <key>' or 'X-API-Key: <key>'."


def presented_key(request: web.Request) -> str:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    return request.headers.get("X-API-Key", "").strip()


def _limits(limits: TenantLimits) -> Limits:
    return Limits(
        requests_per_minute=limits.requests_per_minute,
        tokens_per_minute=limits.tokens_per_minute,
        concurrent_streams=limits.concurrent_streams,
        daily_tokens=limits.daily_tokens,
        daily_usd=limits.daily_usd,
        monthly_usd=limits.monthly_usd,
    )
