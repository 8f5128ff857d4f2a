"""Build a `GatewayState` from a validated config: providers, routes, policy chain, tenants."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import aiohttp
from pydantic import ValidationError

from gateway.auth import Authenticator
from gateway.chains import Chains
from gateway.config import ConfigError, GatewayConfig
from gateway.config import describe_validation_error as _describe
from gateway.model_lifecycle import model_warnings, today_of
from gateway.sse import Redactor
from gateway.state import GatewayState, Shared
from gateway.stream_tokens import StreamTokens
from policies.base import Step, compose
from policies.circuit_breaker import CircuitBreaker
from policies.date_context import DateContext
from policies.fallback import Fallback
from policies.retry import Retry
from policies.timeouts import Timeouts
from policies.upstream_quota import UpstreamQuota
from providers.base import Provider, ProviderContext
from providers.demo import demo_provider_for
from providers.registry import find_factory


def build_providers(config: GatewayConfig, context: ProviderContext) -> dict[str, Provider]:
    """One instance per configured provider; bad options raise `ConfigError` naming them."""
    providers: dict[str, Provider] = {}
    for name, provider_config in config.providers.items():
        try:
            factory = find_factory(provider_config.type)
            providers[name] = factory(name, provider_config.options(), context)
        except (ValueError, ValidationError) as exc:
            detail = _describe(exc) if isinstance(exc, ValidationError) else str(exc)
            raise ConfigError(f"providers.{name}: {detail}") from None
    return providers


@dataclass(frozen=True, slots=True)
class ProviderCheck:
    demo_mode: bool  # no provider has credentials
    warnings: list[str]  # deprecated models configured


async def check_providers(config: GatewayConfig, today: date) -> ProviderCheck:
    """Build and close every provider once, so that `check-config` catches bad options and
    retired models, and can say whether the config would serve in demo mode."""
    async with aiohttp.ClientSession() as http:
        providers = build_providers(config, ProviderContext(http=http))
        try:
            demo_mode = not any(p.has_credentials for p in providers.values())
            return ProviderCheck(demo_mode, model_warnings(config, providers, today))
        finally:
            for provider in providers.values():
                await provider.aclose()


def build_state(config: GatewayConfig, shared: Shared) -> GatewayState:
    providers = build_providers(config, ProviderContext(http=shared.http))
    warnings = model_warnings(config, providers, today_of(shared.clock.wall()))
    demo_mode = not any(p.has_credentials for p in providers.values())
    demo = demo_provider_for(providers) if demo_mode else None
    chains = Chains(config, providers, demo)
    breaker = shared.breaker  # kept across reloads: a target cooling down stays so
    breaker.watch(target for chain in chains.all() for target in chain.targets)
    built = (build_step(name, config, breaker) for name in config.policies)
    return GatewayState(
        config=config,
        providers=providers,
        chains=chains,
        call_upstream=compose([step for step in built if step is not None]),
        redact=Redactor(config.secrets()),
        auth=Authenticator(config, stream_tokens(config, shared)),
        shared=shared,
        model_warnings=warnings,
    )


def stream_tokens(config: GatewayConfig, shared: Shared) -> StreamTokens:
    secret = config.auth.stream_token_secret.encode() or shared.token_secret
    return StreamTokens(secret, config.auth.stream_token_ttl_s, shared.clock.wall)


def build_step(name: str, config: GatewayConfig, breaker: CircuitBreaker) -> Step | None:
    """The policy step that `policies:` names, configured; None when switched off."""
    if name == "date_context":
        settings = config.server.date_context
        return DateContext(settings.timezone) if settings.enabled else None
    quotas = {name: p.quota for name, p in config.providers.items() if p.quota is not None}
    if name == "upstream_quota":
        return UpstreamQuota(quotas) if quotas else None  # no quota: no layer to pass through
    steps: dict[str, Step] = {
        "fallback": Fallback(),
        "retry": Retry(),
        "circuit_breaker": breaker,
        "timeouts": Timeouts(),
    }
    return steps[name]
