"""Configured models that their provider has deprecated or retired.

A deprecated model is warned about (start-up, `check-config`, `/ai/stream/health`); a
retired one fails every request, so a config naming it is refused unless its alias says
`allow_retired: true`.  Which ids are which is the provider's knowledge
(`providers.base.KnowsModelLifecycle`).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, date, datetime

from gateway.config import ConfigError, GatewayConfig
from providers.base import KnowsModelLifecycle, Provider


def model_warnings(
    config: GatewayConfig, providers: Mapping[str, Provider], today: date
) -> list[str]:
    """One line per deprecated (or allowed retired) model; `ConfigError` for a retired one."""
    warnings: list[str] = []
    refused: list[str] = []
    for alias, model in config.models.items():
        provider = providers.get(model.provider)
        if not isinstance(provider, KnowsModelLifecycle):
            continue
        state = provider.model_lifecycle(model.model, today)
        if state is None:
            continue
        line = f"models.{alias}: {state.describe()}"
        if state.retired and not model.allow_retired:
            refused.append(f"{line} (or set models.{alias}.allow_retired: true)")
        else:
            warnings.append(line)
    if refused:
        raise ConfigError("; ".join(refused))
    return warnings


def today_of(wall_s: float) -> date:
    return datetime.fromtimestamp(wall_s, UTC).date()
