"""Anthropic Messages API through the official `anthropic` SDK (`client: sdk`).

Parts, in the order every provider module keeps: client → stream transform → error
mapping; settings and the request transform are `providers.anthropic.shared`'s.  The SDK's
own retries are off (max_retries=0): the policy chain owns retries.  One `AsyncAnthropic`
client per configured provider, reused by every request.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator, AsyncIterator
from datetime import date
from typing import Any

import anthropic
import httpx2
from anthropic._constants import ANTHROPIC_API_VERSION

from providers.anthropic.content import block_start, native_headers, part_of, read_usage
from providers.anthropic.lifecycle import lifecycle
from providers.anthropic.models import Lessons, ModelRules
from providers.anthropic.shared import (
    ANTHROPIC_FEATURES,
    AnthropicSettings,
    count_tokens_params,
    model_options,
    status_of_error_type,
    to_anthropic_params,
    with_lessons,
)
from providers.base import (
    Delta,
    ModelLifecycle,
    ModelRef,
    StreamEnd,
    TextDelta,
    UpstreamRequest,
    Usage,
)
from providers.content import part_length
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
from providers.tracing import with_trace_context

log = logging.getLogger(__name__)

# --- client -----------------------------------------------------------------------------


class AnthropicSdkProvider:
    features = ANTHROPIC_FEATURES

    def __init__(self, name: str, settings: AnthropicSettings) -> None:
        self.name = name
        self._has_key = bool(settings.api_key)
        self._read_timeout_s = settings.read_timeout_s
        self._lessons = Lessons(name)
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

    def model_lifecycle(self, model_id: str, today: date) -> ModelLifecycle | None:
        return lifecycle(model_id, today)

    def stream(self, request: UpstreamRequest, model: ModelRef) -> AsyncGenerator[Delta, None]:
        def attempt(rules: ModelRules) -> AsyncGenerator[Delta, None]:
            return self._attempt(request, model, rules)

        return with_lessons(request, model, ANTHROPIC_API_VERSION, self._lessons, attempt)

    async def _attempt(
        self, request: UpstreamRequest, model: ModelRef, rules: ModelRules
    ) -> AsyncGenerator[Delta, None]:
        usage = Usage()
        params = to_anthropic_params(request, rules, model.dropped)
        params = model_options({**params, **model.options}, rules)
        # Only the required arguments go by name: the SDK's own no longer include sampling
        # parameters, and a client's body may hold fields newer than this SDK.
        messages, max_tokens = params.pop("messages"), params.pop("max_tokens")
        try:
            events = await self._client.messages.create(
                model=model.id,
                messages=messages,
                max_tokens=max_tokens,
                stream=True,
                timeout=httpx2.Timeout(self._read_timeout_s, connect=model.connect_timeout_s),
                extra_headers=dict(with_trace_context(native_headers(request))) or None,
                extra_body=params or None,
            )
            async with events:
                async for delta in from_anthropic_events(events, model.id, usage):
                    yield delta
        except Exception as exc:
            error = exc if isinstance(exc, UpstreamError) else map_anthropic_error(exc, self.name)
            raise attributed(error, self.name, usage) from None

    async def count_tokens(self, request: UpstreamRequest, model: ModelRef) -> int:
        params = count_tokens_params(request, model, ANTHROPIC_API_VERSION, self._lessons)
        try:
            counted = await self._client.messages.count_tokens(
                model=model.id,
                messages=params.pop("messages"),
                timeout=httpx2.Timeout(model.connect_timeout_s + 10),
                extra_headers=dict(with_trace_context(native_headers(request))) or None,
                extra_body=params or None,
            )
        except Exception as exc:
            raise map_anthropic_error(exc, self.name) from None
        return counted.input_tokens

    async def aclose(self) -> None:
        await self._client.close()


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
    stop_sequence: str | None = None
    served_model = model
    streamed_chars = 0
    async for event in events:
        kind = event.type
        if kind == "content_block_delta":
            if event.delta.type == "text_delta":
                streamed_chars += len(event.delta.text)
                usage.estimate_output(streamed_chars)
                yield TextDelta(event.delta.text)
            elif (part := part_of(event.delta.to_dict())) is not None:
                streamed_chars += part_length(part)
                usage.estimate_output(streamed_chars)
                yield part
        elif kind == "content_block_start":
            if (part := block_start(event.content_block.to_dict())) is not None:
                yield part
        elif kind == "message_start":
            served_model = event.message.model or model
            read_usage(event.message.usage.to_dict(), usage)
        elif kind == "message_delta":
            stop_reason, stop_sequence = event.delta.stop_reason, event.delta.stop_sequence
            read_usage(event.usage.to_dict(), usage)
        elif kind == "message_stop":
            yield StreamEnd(served_model, stop_reason, usage, stop_sequence)
            return
    raise UpstreamConnectionError("The upstream stream ended before message_stop.")


# --- error mapping ----------------------------------------------------------------------


def map_anthropic_error(exc: Exception, provider: str) -> UpstreamError:
    if isinstance(exc, UnicodeEncodeError):  # the request's JSON, not the upstream's answer
        return UnsendableRequest(provider)
    if isinstance(exc, anthropic.APIStatusError):
        status = exc.status_code
        if status < 400:  # an `event: error` after the 200: the body names the kind
            status = status_of_error_type(exc.type)
        retry_after = parse_retry_after(exc.response.headers.get("retry-after"))
        error = exc.body.get("error") if isinstance(exc.body, dict) else None
        detail = str(error.get("message") or "") if isinstance(error, dict) else ""
        return upstream_error_for_status(status, provider, retry_after, detail)
    if isinstance(exc, anthropic.APITimeoutError | httpx2.TimeoutException):
        return UpstreamTimeout(f"The upstream provider '{provider}' timed out.", provider=provider)
    if isinstance(exc, anthropic.APIConnectionError | httpx2.TransportError):
        return UpstreamConnectionError(
            f"The connection to the upstream provider '{provider}' failed.", provider=provider
        )
    log.warning("unreadable answer from provider %s", provider, exc_info=exc)
    return unreadable_stream(provider)
