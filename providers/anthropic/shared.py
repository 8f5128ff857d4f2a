"""What both Anthropic clients share: their settings, the Messages API request, and the
meaning of the API's error types.

Parts, in the order every provider module keeps: settings → request transform → error
mapping (the clients, `wire` and `sdk`, hold the stream transforms).
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Callable, Mapping
from contextlib import aclosing
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from providers.anthropic.content import (
    capped_temperature,
    final_text,
    native_body,
    native_headers,
    translated_fields,
)
from providers.anthropic.models import Lessons, ModelRules, rules_for
from providers.base import CONTINUE_PROMPT, Delta, ModelRef, UpstreamRequest
from providers.content import Feature
from providers.errors import UpstreamRejected

# --- settings ---------------------------------------------------------------------------

ANTHROPIC_FEATURES: frozenset[Feature] = frozenset({"tools", "images"})


class AnthropicSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    api_key: str = ""
    base_url: str = "https://api.anthropic.com"
    client: Literal["wire", "sdk"] = "wire"
    api_version: str = Field(default="2023-06-01", description="anthropic-version, wire client")
    read_timeout_s: float = Field(default=600.0, gt=0)
    max_connections: int = Field(default=1000, ge=1, description="open streams, sdk client")


# --- request transform ------------------------------------------------------------------


def to_anthropic_params(
    request: UpstreamRequest, rules: ModelRules, dropped: set[str]
) -> dict[str, Any]:
    """The Messages API body for `request` on a model with `rules` (model and stream
    aside): the client's own body when it spoke the Messages API, else a translation.

    A partial answer to continue (the request's `continue_from`, or a client's own final
    assistant turn of text) is a prefill where the model takes one; elsewhere it is an
    assistant turn followed by a user turn asking to go on.  Sampling parameters the model
    refuses are left out; they, and what a translation cannot carry, go in `dropped`.
    """
    params = native_body(request)
    if params is None:
        params = translated_fields(request, dropped)
        optional = {
            "stop_sequences": list(request.stop_sequences) or None,
            "metadata": {"user_id": request.user_id} if request.user_id else None,
            **request.sampling(),
        }
        if "temperature" in optional:
            optional["temperature"] = capped_temperature(request, dropped)
        params.update({k: v for k, v in optional.items() if v is not None})
    params["max_tokens"] = request.max_tokens
    params["messages"] = _with_partial(list(params["messages"]), request.continue_from, rules)
    for name in dropped_params(request, rules):
        params.pop(name, None)
        dropped.add(name)
    return params


def _with_partial(messages: list[Any], partial: str, rules: ModelRules) -> list[Any]:
    last = messages[-1]
    text = final_text(last) if last["role"] == "assistant" else None
    if text is not None:
        messages.pop()
        partial = text + partial
    if partial.strip():
        # The API rejects trailing whitespace in a final assistant turn.
        messages.append({"role": "assistant", "content": partial.rstrip()})
        if not rules.prefill:
            messages.append({"role": "user", "content": CONTINUE_PROMPT})
    return messages


def count_tokens_params(
    request: UpstreamRequest, model: ModelRef, api_version: str, lessons: Lessons
) -> dict[str, Any]:
    """The `count_tokens` body for `request`: the messages body without what only an
    answer takes (`max_tokens`), thinking in the form the model takes."""
    thinking = _thinking_on(model.options) or _thinking_on(native_body(request) or {})
    rules = rules_for(
        model.id, api_version, model.capabilities, lessons.refused(model.id), thinking
    )
    params = to_anthropic_params(request, rules, model.dropped)
    params = model_options({**params, **model.options}, rules)
    params.pop("max_tokens")
    return params


def model_options(options: Mapping[str, Any], rules: ModelRules) -> dict[str, Any]:
    """The alias's extra request fields, with `thinking: {type: enabled, budget_tokens}`
    turned into `{type: adaptive}` for the models that take only that form (4.6 on)."""
    fields = dict(options)
    thinking = fields.get("thinking")
    if rules.adaptive_thinking and isinstance(thinking, dict) and thinking.get("type") == "enabled":
        fields["thinking"] = {"type": "adaptive"}
    return fields


def dropped_params(request: UpstreamRequest, rules: ModelRules) -> list[str]:
    """The client's sampling parameters that `rules` leave out."""
    given = request.sampling()
    dropped = [name for name in given if name not in rules.sampling]
    if rules.temperature_or_top_p and "temperature" in given and "top_p" in given:
        dropped.append("top_p")
    return dropped


async def with_lessons(
    request: UpstreamRequest,
    model: ModelRef,
    api_version: str,
    lessons: Lessons,
    attempt: Callable[[ModelRules], AsyncGenerator[Delta, None]],
) -> AsyncGenerator[Delta, None]:
    """`attempt(rules)`'s deltas.  When the upstream refuses, before any delta, something
    the rules let through and its 400 names it, the lesson is kept and the request is
    tried once more without it.  `attempt` reports what it leaves out in `model.dropped`."""
    retried = False
    while True:
        rules = _rules(request, model, api_version, lessons)
        started = False
        try:
            async with aclosing(attempt(rules)) as deltas:
                async for delta in deltas:
                    started = True
                    yield delta
            return
        except UpstreamRejected as error:
            if started or retried or not lessons.learn(model.id, error, request, rules):
                raise
            retried = True


def _rules(
    request: UpstreamRequest, model: ModelRef, api_version: str, lessons: Lessons
) -> ModelRules:
    """What `model` takes, given whether the alias or the client turned thinking on, under
    the API version the request is sent with (the client's own, when its body passes
    through with its `anthropic-version`)."""
    thinking = _thinking_on(model.options) or _thinking_on(native_body(request) or {})
    refused = lessons.refused(model.id)
    version = native_headers(request).get("anthropic-version", api_version)
    return rules_for(model.id, version, model.capabilities, refused, thinking)


def _thinking_on(fields: Mapping[str, Any]) -> bool:
    thinking = fields.get("thinking")
    return isinstance(thinking, dict) and thinking.get("type") in ("enabled", "adaptive")


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
