"""Anthropic Messages API, through one of two clients that give the same deltas and errors
(one contract suite):

- `client: wire` (default, `providers.anthropic.wire`) reads the streaming protocol
  directly over the gateway's shared aiohttp session;
- `client: sdk` (`providers.anthropic.sdk`) goes through the official `anthropic` SDK.
  It is imported only when configured: importing it costs tens of MB of memory and about
  a second of start-up that the wire client does not need.

`providers.anthropic.shared` holds what both share (settings, request transform, error
types).  This module is the factory.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from providers.anthropic.shared import AnthropicSettings
from providers.anthropic.wire import AnthropicWireProvider
from providers.base import Provider, ProviderContext

# --- factory ----------------------------------------------------------------------------


def create_anthropic_provider(
    name: str, options: Mapping[str, Any], context: ProviderContext
) -> Provider:
    settings = AnthropicSettings.model_validate(dict(options))
    if settings.client == "sdk":
        from providers.anthropic.sdk import AnthropicSdkProvider

        return AnthropicSdkProvider(name, settings)
    return AnthropicWireProvider(name, settings, context.http)
