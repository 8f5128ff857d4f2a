"""Who can reach the gateway: refuse to become an open relay by accident.

With `auth.mode: none` every request is served, and with a provider key every request
spends the operator's money.  That is safe on loopback (the default listener) and
unsafe anywhere else, so `serve` refuses that combination unless the config says
`auth.allow_unauthenticated_network: true` (behind a proxy that authenticates, say).
Demo mode spends nothing, so it may listen anywhere.
"""

from __future__ import annotations

import ipaddress

from gateway.config import GatewayConfig


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a name, or "" (every address): it may be reachable from the network


def open_relay_problem(host: str, config: GatewayConfig, demo_mode: bool) -> str | None:
    """Why serving on `host` would make this gateway an open relay; None when it would not."""
    auth = config.auth
    if auth.mode != "none" or demo_mode or auth.allow_unauthenticated_network:
        return None
    if is_loopback(host):
        return None
    return (
        f"refusing to listen on {host} with auth.mode: none while a provider has "
        "credentials: anyone who reaches this port would spend your API key. Either set "
        "auth.mode: api_key with tenant keys (ai-gateway hash-key), or listen on 127.0.0.1 "
        "(server.host, AI_GATEWAY_HOST), or, behind a proxy that authenticates, set "
        "auth.allow_unauthenticated_network: true"
    )
