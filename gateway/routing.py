"""Which targets serve a request: chains and model aliases from config, and demo mode.

A request's optional `model` names a chain or a model alias; without one, the default
chain serves.  Demo mode (no configured provider has credentials) resolves every name
to the demo provider, so a fresh install streams without a key.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from gateway.config import GatewayConfig
from policies.base import Target
from providers.base import Provider
from providers.demo import DEMO_MODEL
from providers.errors import InvalidRequest


@dataclass(frozen=True, slots=True)
class Route:
    chain: str
    targets: tuple[Target, ...]


class Router:
    def __init__(
        self, config: GatewayConfig, providers: Mapping[str, Provider], demo: Provider | None
    ) -> None:
        self.demo_mode = demo is not None
        self.default_chain = config.default_chain
        targets = {
            alias: Target(alias, providers[m.provider], m.model)
            for alias, m in config.models.items()
        }
        self._routes: dict[str, Route] = {}
        for alias, target in targets.items():
            self._routes[alias] = Route(alias, (target,))
        for name, chain in config.chains.items():
            self._routes[name] = Route(name, tuple(targets[t] for t in chain.targets))
        if demo is not None:
            demo_target = (Target("demo", demo, DEMO_MODEL),)
            self._routes = {name: Route(name, demo_target) for name in self._routes}

    @property
    def names(self) -> list[str]:
        return sorted(self._routes)

    def primary_model(self) -> str:
        return self._routes[self.default_chain].targets[0].model

    def resolve(self, name: str | None) -> Route:
        route = self._routes.get(name or self.default_chain)
        if route is None:
            raise InvalidRequest(
                f"Unknown model '{name}'. Valid names: {', '.join(self.names)}.",
                code="unknown_model",
            )
        return route
