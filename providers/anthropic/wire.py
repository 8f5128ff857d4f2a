"""Anthropic Messages streaming read straight off the wire (`client: wire`).

The official SDK costs several milliseconds of CPU per 50-delta stream here (its
transport stack and typed event models; see docs/benchmarks.md); this reader parses
the same SSE frames over the gateway's shared aiohttp session for a fraction of that.
It speaks the documented protocol (`x-api-key`, `anthropic-version`), reuses the SDK
adapter's request transform and error classification, and passes the same adapter
contract tests.

Parts, in the order every provider module keeps: client → stream transform; the
settings, request transform and error types are `providers.anthropic.shared`'s.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from contextlib import aclosing
from datetime import date

import aiohttp
import orjson

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
    UpstreamConnectionError,
    UpstreamError,
    attributed,
    unreadable_stream,
    upstream_error_for_status,
)
from providers.http_sse import Frame, drain, post_json, post_sse

# --- client -----------------------------------------------------------------------------


class AnthropicWireProvider:
    features = ANTHROPIC_FEATURES

    def __init__(self, name: str, settings: AnthropicSettings, http: aiohttp.ClientSession):
        self.name = name
        self._settings = settings
        self._http = http
        self._url = settings.base_url.rstrip("/") + "/v1/messages"
        self._lessons = Lessons(name)
        self._headers = {
            "x-api-key": settings.api_key,
            "anthropic-version": settings.api_version,
            "content-type": "application/json",
            "accept": "text/event-stream",
        }

    @property
    def has_credentials(self) -> bool:
        return bool(self._settings.api_key)

    def model_lifecycle(self, model_id: str, today: date) -> ModelLifecycle | None:
        return lifecycle(model_id, today)

    def stream(self, request: UpstreamRequest, model: ModelRef) -> AsyncGenerator[Delta, None]:
        def attempt(rules: ModelRules) -> AsyncGenerator[Delta, None]:
            params = to_anthropic_params(request, rules, model.dropped)
            body = {
                "model": model.id,
                "stream": True,
                **model_options({**params, **model.options}, rules),
            }
            frames = post_sse(
                self._http,
                self._url,
                {**self._headers, **native_headers(request)},
                body,
                provider=self.name,
                connect_timeout_s=model.connect_timeout_s,
                read_timeout_s=self._settings.read_timeout_s,
            )
            return from_anthropic_frames(frames, model.id, self.name)

        return with_lessons(request, model, self._settings.api_version, self._lessons, attempt)

    async def count_tokens(self, request: UpstreamRequest, model: ModelRef) -> int:
        params = count_tokens_params(request, model, self._settings.api_version, self._lessons)
        answer = await post_json(
            self._http,
            self._url + "/count_tokens",
            {**self._headers, **native_headers(request)},
            {"model": model.id, **params},
            provider=self.name,
            timeout_s=model.connect_timeout_s + 10,
        )
        return int(answer["input_tokens"])

    async def aclose(self) -> None:
        return None  # the shared session belongs to the app


# --- stream transform -------------------------------------------------------------------


async def from_anthropic_frames(
    frames: AsyncGenerator[Frame, None], model: str, provider: str
) -> AsyncGenerator[Delta, None]:
    """SSE frames → deltas (text, and tool use and thinking as part deltas); `ping` and
    unknown events, blocks and delta types are skipped.

    Usage is kept current as the stream goes, so that a stream that fails midway can
    still be accounted for (output tokens are estimated from the text until the
    upstream reports them).
    """
    usage = Usage()
    stop_reason: str | None = None
    stop_sequence: str | None = None
    served_model = model
    streamed_chars = 0
    try:
        async with aclosing(frames):
            async for event, data in frames:
                if event == b"content_block_delta":
                    delta = orjson.loads(data)["delta"]
                    if delta.get("type") == "text_delta":
                        streamed_chars += len(delta["text"])
                        usage.estimate_output(streamed_chars)
                        yield TextDelta(delta["text"])
                    elif (part := part_of(delta)) is not None:
                        streamed_chars += part_length(part)
                        usage.estimate_output(streamed_chars)
                        yield part
                elif event == b"content_block_start":
                    if (part := block_start(orjson.loads(data)["content_block"])) is not None:
                        yield part
                elif event == b"message_start":
                    message = orjson.loads(data)["message"]
                    served_model = message.get("model") or model
                    read_usage(message.get("usage") or {}, usage)
                elif event == b"message_delta":
                    payload = orjson.loads(data)
                    stop_reason = (payload.get("delta") or {}).get("stop_reason")
                    stop_sequence = (payload.get("delta") or {}).get("stop_sequence")
                    read_usage(payload.get("usage") or {}, usage)
                elif event == b"message_stop":
                    await drain(frames)
                    yield StreamEnd(served_model, stop_reason, usage, stop_sequence)
                    return
                elif event == b"error":
                    kind = (orjson.loads(data).get("error") or {}).get("type")
                    raise upstream_error_for_status(status_of_error_type(kind), provider)
            raise UpstreamConnectionError("The upstream stream ended before message_stop.")
    except (ValueError, KeyError, TypeError, AttributeError):
        raise unreadable_stream(provider) from None
    except UpstreamError as error:
        raise attributed(error, provider, usage) from None
