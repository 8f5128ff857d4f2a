"""Short-lived signed stream tokens, so that a browser's EventSource (which cannot send
headers) can authenticate with `?token=` instead of exposing a tenant key in a URL.

A token is `base64url(tenant id, expiry) . base64url(HMAC-SHA256)`, signed with
`auth.stream_token_secret` (random per process when unset: then a token works only on
the replica that issued it).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Callable

from providers.errors import Unauthorized


class StreamTokens:
    def __init__(self, secret: bytes, ttl_s: float, clock: Callable[[], float] = time.time) -> None:
        self._secret = secret
        self.ttl_s = ttl_s
        self._clock = clock  # seconds since the epoch

    def issue(self, tenant_id: str) -> str:
        claims = json.dumps({"t": tenant_id, "exp": int(self._clock() + self.ttl_s)}).encode()
        payload = _b64(claims)
        return f"{payload}.{self._sign(payload)}"

    def verify(self, token: str) -> str:
        """The tenant id the token was issued to; `Unauthorized` when bad or expired."""
        payload, _, signature = token.partition(".")
        if not signature or not hmac.compare_digest(signature, self._sign(payload)):
            raise Unauthorized("Invalid stream token.")
        try:
            claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
            tenant, expiry = str(claims["t"]), float(claims["exp"])
        except (ValueError, KeyError, TypeError):
            raise Unauthorized("Invalid stream token.") from None
        if expiry < self._clock():
            raise Unauthorized("The stream token has expired; ask /ai/stream/token for a new one.")
        return tenant

    def _sign(self, payload: str) -> str:
        return _b64(hmac.new(self._secret, payload.encode(), hashlib.sha256).digest())


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()
