"""OpenAI-compatible chat completions (OpenAI, vLLM, Ollama, Groq, Together, OpenRouter,
Azure OpenAI), streamed over the gateway's shared aiohttp session.

Parts, in the order every provider module keeps: settings → client → request transform →
stream transform → error mapping → factory.

Differences from the gateway's request, by design:
- a request that came in as Chat Completions is sent as the client wrote it;
- otherwise the system prompt becomes the first `system` message, tool results `tool`
  messages, tool calls `tool_calls` (`providers.openai_content`);
- `stop_sequences` become `stop`; `metadata.user_id` becomes `user`;
- `top_k` and thinking have no equivalent: they are not sent, and reported dropped;
- `max_tokens` is sent as `max_tokens`, or as the field named by `max_tokens_field`
  (OpenAI's newer models want `max_completion_tokens`);
- a final assistant message (a prefill, or a mid-stream continuation) is sent as an
  ordinary assistant turn: most servers answer after it rather than continue it.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Mapping
from contextlib import aclosing
from typing import Any

import aiohttp
import orjson
from pydantic import BaseModel, ConfigDict, Field

from providers.base import (
    CONTINUE_PROMPT,
    Delta,
    ModelRef,
    ProviderContext,
    StreamEnd,
    TextDelta,
    UpstreamRequest,
    Usage,
)
from providers.content import Feature, part_length
from providers.errors import (
    UpstreamConnectionError,
    UpstreamError,
    attributed,
    unreadable_stream,
    upstream_error_for_status,
)
from providers.http_sse import Frame, drain, post_sse
from providers.openai_content import (
    ToolCallReader,
    native_body,
    native_token_limit,
    translated_fields,
)

# --- settings ---------------------------------------------------------------------------


class OpenAICompatibleSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    api_key: str = ""
    base_url: str = "https://api.openai.com/v1"
    headers: dict[str, str] = Field(default_factory=dict, description="sent with every call")
    max_tokens_field: str = "max_tokens"
    read_timeout_s: float = Field(default=600.0, gt=0)
    requires_api_key: bool = Field(
        default=True, description="false for local servers (vLLM, Ollama) that need none"
    )


# --- client -----------------------------------------------------------------------------


class OpenAICompatibleProvider:
    features: frozenset[Feature] = frozenset({"tools", "images"})

    def __init__(
        self, name: str, settings: OpenAICompatibleSettings, http: aiohttp.ClientSession
    ) -> None:
        self.name = name
        self._settings = settings
        self._http = http
        self._url = settings.base_url.rstrip("/") + "/chat/completions"
        self._headers = {"Content-Type": "application/json", **settings.headers}
        if settings.api_key:
            self._headers["Authorization"] = f"Bearer {settings.api_key}"

    @property
    def has_credentials(self) -> bool:
        return bool(self._settings.api_key) or not self._settings.requires_api_key

    def stream(self, request: UpstreamRequest, model: ModelRef) -> AsyncGenerator[Delta, None]:
        frames = post_sse(
            self._http,
            self._url,
            self._headers,
            to_openai_body(request, model, self._settings.max_tokens_field),
            provider=self.name,
            connect_timeout_s=model.connect_timeout_s,
            read_timeout_s=self._settings.read_timeout_s,
        )
        return from_openai_frames(frames, model.id, self.name)

    async def aclose(self) -> None:
        return None  # the shared session belongs to the app


# --- request transform ------------------------------------------------------------------


def to_openai_body(
    request: UpstreamRequest, model: ModelRef, max_tokens_field: str
) -> dict[str, Any]:
    """The Chat Completions body: the client's own when it spoke Chat Completions, else a
    translation (what it cannot carry goes in `model.dropped`)."""
    body = native_body(request)
    # The client's own output limit (the field it chose, or none) passes through as it is;
    # a translated request's goes in the field this server takes.
    limit = native_token_limit(request) if body is not None else None
    if limit is None:
        limit = {max_tokens_field: request.max_tokens}
    if body is None:
        body = translated_fields(request, model.dropped)
        optional = {
            "temperature": request.temperature,
            "top_p": request.top_p,
            "stop": _stop(request, model.dropped),
            "user": request.user_id,
        }
        body.update({k: v for k, v in optional.items() if v is not None})
    if request.continue_from:
        # Chat completions answer after an assistant turn rather than continue it.
        body["messages"] = [
            *body["messages"],
            {"role": "assistant", "content": request.continue_from.rstrip()},
            {"role": "user", "content": CONTINUE_PROMPT},
        ]
    body |= {
        "model": model.id,
        **limit,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    body.update(model.options)
    return body


# --- stream transform -------------------------------------------------------------------


async def from_openai_frames(
    frames: AsyncGenerator[Frame, None], model: str, provider: str
) -> AsyncGenerator[Delta, None]:
    """Chat-completion chunks → deltas; `data: [DONE]` ends the stream.

    Usage arrives in the last chunk (`stream_options.include_usage`); until then output
    tokens are estimated from the text, so that a stream cut midway can be accounted for.
    """
    usage = Usage()
    finish_reason: str | None = None
    served_model = model
    streamed_chars = 0
    tool_calls = ToolCallReader()
    try:
        async with aclosing(frames):
            async for _, data in frames:
                if data == b"[DONE]":
                    await drain(frames)
                    yield StreamEnd(model=served_model, stop_reason=finish_reason, usage=usage)
                    return
                chunk = orjson.loads(data)
                if "error" in chunk:
                    raise _stream_error(chunk["error"], provider)
                served_model = chunk.get("model") or served_model
                if chunk.get("usage"):
                    read_usage(chunk["usage"], usage)
                for choice in chunk.get("choices") or ():
                    delta = choice.get("delta") or {}
                    if text := delta.get("content"):
                        streamed_chars += len(text)
                        usage.estimate_output(streamed_chars)
                        yield TextDelta(text)
                    for part in tool_calls.read(delta.get("tool_calls") or ()):
                        streamed_chars += part_length(part)
                        usage.estimate_output(streamed_chars)
                        yield part
                    if choice.get("finish_reason"):
                        finish_reason = choice["finish_reason"]
            raise UpstreamConnectionError("The upstream stream ended without [DONE].")
    except (ValueError, TypeError, AttributeError):
        raise unreadable_stream(provider) from None
    except UpstreamError as error:
        raise attributed(error, provider, usage) from None


MAX_STOP = 4  # Chat Completions takes at most four stop sequences


def _stop(request: UpstreamRequest, dropped: set[str]) -> list[str] | None:
    """The request's stop sequences; past the fourth they are left out, and said so."""
    if len(request.stop_sequences) > MAX_STOP:
        dropped.add("stop_sequences beyond 4")
    return list(request.stop_sequences[:MAX_STOP]) or None


def read_usage(reported: dict[str, Any], usage: Usage) -> None:
    """Chat Completions' usage in the gateway's terms: cached prompt tokens (which OpenAI
    counts inside `prompt_tokens`) apart from the rest."""
    cached = (reported.get("prompt_tokens_details") or {}).get("cached_tokens") or 0
    usage.input_tokens = (reported.get("prompt_tokens") or 0) - cached
    usage.cache_read_tokens = cached
    usage.output_tokens = reported.get("completion_tokens") or 0


# --- error mapping ----------------------------------------------------------------------


def _stream_error(error: Any, provider: str) -> UpstreamError:
    """An error object sent inside a 200 stream, classified like an HTTP status."""
    kind = (
        " ".join(str(error.get(k, "")) for k in ("type", "code")) if isinstance(error, dict) else ""
    )
    if "rate_limit" in kind:
        status = 429
    elif "overloaded" in kind:
        status = 529
    elif "invalid_request" in kind:
        status = 400
    else:
        status = 500
    return upstream_error_for_status(status, provider)


# --- factory ----------------------------------------------------------------------------


def create_openai_compatible_provider(
    name: str, options: Mapping[str, Any], context: ProviderContext
) -> OpenAICompatibleProvider:
    settings = OpenAICompatibleSettings.model_validate(dict(options))
    return OpenAICompatibleProvider(name, settings, context.http)
