"""Which chain serves a request: chains and model aliases from config, and demo mode.

A request's optional `model` names a chain, a model alias, or the upstream model id of
an alias (`claude-sonnet-4-5-20250929`); without one, the default chain serves.  An
alias used on its own is a one-target chain with the default chain's
settings.  Demo mode (no configured provider has credentials) resolves every name to the
demo provider, so a fresh install streams without a key.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence

from gateway.config import ChainConfig, GatewayConfig, PriceConfig, TargetConfig
from policies.base import Chain, Target
from providers.base import Capabilities, Price, Provider
from providers.demo import DEMO_MODEL
from providers.errors import UnknownModel


class Chains:
    def __init__(
        self, config: GatewayConfig, providers: Mapping[str, Provider], demo: Provider | None
    ) -> None:
        self.demo_mode = demo is not None
        self.default_chain = config.default_chain
        self._chains: dict[str, Chain] = {}
        default = config.chains[config.default_chain]
        for alias in config.models:
            self._chains[alias] = _chain(
                alias, default, [TargetConfig(model=alias)], config, providers
            )
        for name, chain in config.chains.items():
            self._chains[name] = _chain(name, chain, chain.targets, config, providers)
        for alias, model in config.models.items():  # an upstream model id names its alias too
            self._chains.setdefault(model.model, self._chains[alias])
        if demo is not None:
            demo_target = (Target("demo", demo, DEMO_MODEL),)
            self._chains = {
                name: Chain(name, demo_target, chain.deadline_s)
                for name, chain in self._chains.items()
            }

    @property
    def names(self) -> list[str]:
        return sorted(self._chains)

    def names_for(self, allowed: Collection[str]) -> list[str]:
        """The names a tenant limited to `allowed` may put in `model` (all when none is
        listed), sorted: for the model lists the clients ask for."""
        return sorted(set(allowed)) if allowed else self.names

    def all(self) -> list[Chain]:
        return list(self._chains.values())

    def primary_model(self) -> str:
        return self._chains[self.default_chain].targets[0].model

    def resolve(self, name: str | None, allowed: Sequence[str] = ()) -> Chain:
        """The chain `name` stands for.  An unknown name is refused with the names the
        caller may use: `allowed` when it limits them (a tenant's), else every name."""
        chain = self._chains.get(name or self.default_chain)
        if chain is None:
            valid = sorted(allowed) if allowed else self.names
            raise UnknownModel(f"Unknown model '{name}'. Valid names: {', '.join(valid)}.")
        return chain


def price_of_model(price: PriceConfig | None) -> Price | None:
    """A model's configured price; cache prices default to Anthropic's multipliers of the
    input price (1.25 to write, 0.1 to read)."""
    if price is None:
        return None
    write = price.cache_write if price.cache_write is not None else 1.25 * price.input
    read = price.cache_read if price.cache_read is not None else 0.1 * price.input
    return Price(price.input, price.output, write, read)


def _chain(
    name: str,
    chain: ChainConfig,
    targets: list[TargetConfig],
    config: GatewayConfig,
    providers: Mapping[str, Provider],
) -> Chain:
    resolved = []
    for target in targets:
        model = config.models[target.model]
        retry, timeouts, breaker = chain.settings_for(target)
        resolved.append(
            Target(
                target.model,
                providers[model.provider],
                model.model,
                retry,
                timeouts,
                breaker,
                model.options,
                Capabilities(**model.capabilities.model_dump()),
                price_of_model(model.price),
            )
        )
    return Chain(name, tuple(resolved), chain.retry.deadline_s, chain.on_stream_failure)
