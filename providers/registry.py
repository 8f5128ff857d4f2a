"""Find the provider class for a config `type:`: built-ins first, then entry points.

A third-party package adds a provider by declaring, in its own pyproject.toml:

    [project.entry-points."ai_gateway.providers"]
    my_type = "my_package.module:factory"

where `factory` is a `providers.base.ProviderFactory`: `factory(name, options, context)`
returns an object that satisfies `providers.base.Provider`.  (`ProviderContext` and
`ProviderFactory` are importable from here too, as plug-ins written before they moved to
`providers.base` expect.)
"""

from __future__ import annotations

from importlib.metadata import entry_points

from providers.base import ProviderContext, ProviderFactory

__all__ = ["ProviderContext", "ProviderFactory", "available_types", "find_factory"]

ENTRY_POINT_GROUP = "ai_gateway.providers"


def _builtin_factories() -> dict[str, ProviderFactory]:
    from providers.anthropic import create_anthropic_provider
    from providers.demo import create_demo_provider
    from providers.openai_compatible import create_openai_compatible_provider

    return {
        "anthropic": create_anthropic_provider,
        "demo": create_demo_provider,
        "openai_compatible": create_openai_compatible_provider,
    }


def available_types() -> list[str]:
    names = set(_builtin_factories())
    names.update(ep.name for ep in entry_points(group=ENTRY_POINT_GROUP))
    return sorted(names)


def find_factory(provider_type: str) -> ProviderFactory:
    builtins = _builtin_factories()
    if provider_type in builtins:
        return builtins[provider_type]
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        if ep.name == provider_type:
            factory: ProviderFactory = ep.load()
            return factory
    raise ValueError(
        f"unknown provider type '{provider_type}' (available: {', '.join(available_types())})"
    )
