"""Anthropic Messages API: `client: wire` (default, `providers.anthropic_wire`) reads the
streaming protocol directly over the shared aiohttp session; `client: sdk` goes through
the official `anthropic` SDK.  Both give the same deltas and errors (one contract suite).

Parts, in the order every provider module keeps: settings → client → request transform →
stream transform → error mapping → factory.  The SDK's own retries are off (max_retries=0):
the policy chain owns retries.  One `AsyncAnthropic` client per configured provider,
reused by every request.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator, AsyncIterator, Mapping
from typing import Any, Literal

import anthropic
import httpx2
from pydantic import BaseModel, ConfigDict, Field

from providers.base import (
    Delta,
    ModelRef,
    Provider,
    StreamEnd,
    TextDelta,
    UpstreamRequest,
    Usage,
)
from providers.errors import (
    UnsendableRequest,
    UpstreamConnectionError,
    UpstreamError,
    UpstreamTimeout,
    attributed,
    parse_retry_after,
    unreadable_stream,
    upstream_error_for_status,
)
from providers.registry import ProviderContext

log = logging.getLogger(__name__)

# --- settings ---------------------------------------------------------------------------


class AnthropicSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    api_key: str = ""
    base_url: str = "https://api.anthropic.com"
    client: Literal["wire", "sdk"] = "wire"
    api_version: str = Field(default="2023-06-01", description="anthropic-version, wire client")
    read_timeout_s: float = Field(default=600.0, gt=0)
    max_connections: int = Field(default=1000, ge=1, description="open streams, sdk client")


# --- client -----------------------------------------------------------------------------


class AnthropicProvider:
    def __init__(self, name: str, settings: AnthropicSettings) -> None:
        self.name = name
        self._has_key = bool(settings.api_key)
        self._read_timeout_s = settings.read_timeout_s
        self._client = anthropic.AsyncAnthropic(
            api_key=settings.api_key or "missing",
            base_url=settings.base_url,
            max_retries=0,
            http_client=anthropic.DefaultAsyncHttpxClient(
                limits=httpx2.Limits(
                    max_connections=settings.max_connections, max_keepalive_connections=100
                ),
            ),
        )

    @property
    def has_credentials(self) -> bool:
        return self._has_key

    async def stream(
        self, request: UpstreamRequest, model: ModelRef
    ) -> AsyncGenerator[Delta, None]:
        usage = Usage()
        try:
            events = await self._client.messages.create(
                model=model.id,
                stream=True,
                timeout=httpx2.Timeout(self._read_timeout_s, connect=model.connect_timeout_s),
                extra_body=dict(model.options) or None,
                **to_anthropic_params(request),
            )
            async with events:
                async for delta in from_anthropic_events(events, model.id, usage):
                    yield delta
        except Exception as exc:
            error = exc if isinstance(exc, UpstreamError) else map_anthropic_error(exc, self.name)
            raise attributed(error, self.name, usage) from None

    async def aclose(self) -> None:
        await self._client.close()


# --- request transform ------------------------------------------------------------------


def to_anthropic_params(request: UpstreamRequest) -> dict[str, Any]:
    messages: list[dict[str, Any]] = [
        {"role": m.role, "content": m.content} for m in request.messages
    ]
    last = messages[-1]
    if last["role"] == "assistant":
        # The API continues a final assistant message but rejects trailing whitespace in it.
        last["content"] = str(last["content"]).rstrip()
    # temperature, top_p and top_k are not sent: from API version 2026-10-21 (the one this
    # SDK speaks) any sampling parameter is a 400 on every model.
    params: dict[str, Any] = {"messages": messages, "max_tokens": request.max_tokens}
    optional = {
        "system": request.system,
        "stop_sequences": list(request.stop_sequences) or None,
        "metadata": {"user_id": request.user_id} if request.user_id else None,
    }
    params.update({k: v for k, v in optional.items() if v is not None})
    return params


# --- stream transform -------------------------------------------------------------------


async def from_anthropic_events(
    events: AsyncIterator[Any], model: str, usage: Usage
) -> AsyncGenerator[Delta, None]:
    """Messages stream events → deltas.  Unknown event and delta types are skipped.

    `usage` is kept current as the stream goes, so that a stream that fails midway can
    still be accounted for (output tokens are estimated from the text until the
    upstream reports them).
    """
    stop_reason: str | None = None
    served_model = model
    streamed_chars = 0
    async for event in events:
        kind = event.type
        if kind == "content_block_delta":
            if event.delta.type == "text_delta":
                streamed_chars += len(event.delta.text)
                usage.estimate_output(streamed_chars)
                yield TextDelta(event.delta.text)
        elif kind == "message_start":
            served_model = event.message.model or model
            usage.input_tokens = event.message.usage.input_tokens or 0
        elif kind == "message_delta":
            stop_reason = event.delta.stop_reason
            usage.output_tokens = event.usage.output_tokens or 0
            if getattr(event.usage, "input_tokens", None):
                usage.input_tokens = event.usage.input_tokens
        elif kind == "message_stop":
            yield StreamEnd(model=served_model, stop_reason=stop_reason, usage=usage)
            return
    raise UpstreamConnectionError("The upstream stream ended before message_stop.")


# --- error mapping ----------------------------------------------------------------------

_STATUS_OF_ERROR_TYPE = {
    "invalid_request_error": 400,
    "authentication_error": 401,
    "permission_error": 403,
    "not_found_error": 404,
    "request_too_large": 413,
    "rate_limit_error": 429,
    "api_error": 500,
    "overloaded_error": 529,
}


def status_of_error_type(kind: object) -> int:
    """The HTTP status an `event: error` after the 200 stands for, by its error type."""
    return _STATUS_OF_ERROR_TYPE.get(str(kind), 500)


def map_anthropic_error(exc: Exception, provider: str) -> UpstreamError:
    if isinstance(exc, UnicodeEncodeError):  # the request's JSON, not the upstream's answer
        return UnsendableRequest(provider)
    if isinstance(exc, anthropic.APIStatusError):
        status = exc.status_code
        if status < 400:  # an `event: error` after the 200: the body names the kind
            status = status_of_error_type(exc.type)
        retry_after = parse_retry_after(exc.response.headers.get("retry-after"))
        return upstream_error_for_status(status, provider, retry_after)
    if isinstance(exc, anthropic.APITimeoutError | httpx2.TimeoutException):
        return UpstreamTimeout(f"The upstream provider '{provider}' timed out.", provider=provider)
    if isinstance(exc, anthropic.APIConnectionError | httpx2.TransportError):
        return UpstreamConnectionError(
            f"The connection to the upstream provider '{provider}' failed.", provider=provider
        )
    log.warning("unreadable answer from provider %s", provider, exc_info=exc)
    return unreadable_stream(provider)


# --- factory ----------------------------------------------------------------------------


def create_anthropic_provider(
    name: str, options: Mapping[str, Any], context: ProviderContext
) -> Provider:
    settings = AnthropicSettings.model_validate(dict(options))
    if settings.client == "sdk":
        return AnthropicProvider(name, settings)
    from providers.anthropic_wire import AnthropicWireProvider

    return AnthropicWireProvider(name, settings, context.http)
