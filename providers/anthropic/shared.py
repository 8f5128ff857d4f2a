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

from providers.anthropic.models import Lessons, ModelRules, rules_for
from providers.base import CONTINUE_PROMPT, Delta, ModelRef, UpstreamRequest
from providers.errors import UpstreamRejected

# --- settings ---------------------------------------------------------------------------


class AnthropicSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    api_key: str = ""
    base_url: str = "https://api.anthropic.com"
    client: Literal["wire", "sdk"] = "wire"
    api_version: str = Field(default="2023-06-01", description="anthropic-version, wire client")
    read_timeout_s: float = Field(default=600.0, gt=0)
    max_connections: int = Field(default=1000, ge=1, description="open streams, sdk client")


# --- request transform ------------------------------------------------------------------


def to_anthropic_params(request: UpstreamRequest, rules: ModelRules) -> dict[str, Any]:
    """The Messages API body for `request` on a model with `rules`.

    A partial answer to continue (the request's `continue_from`, or a client's own final
    assistant turn) is a prefill where the model takes one; elsewhere it is an assistant
    turn followed by a user turn asking to go on.  Sampling parameters the model refuses
    are left out; `dropped_params` names them.
    """
    messages: list[dict[str, Any]] = [
        {"role": m.role, "content": m.content} for m in request.messages
    ]
    partial = request.continue_from
    if messages[-1]["role"] == "assistant":
        partial = str(messages.pop()["content"]) + partial
    if partial.strip():
        # The API rejects trailing whitespace in a final assistant turn.
        messages.append({"role": "assistant", "content": partial.rstrip()})
        if not rules.prefill:
            messages.append({"role": "user", "content": CONTINUE_PROMPT})
    params: dict[str, Any] = {"messages": messages, "max_tokens": request.max_tokens}
    dropped = dropped_params(request, rules)
    optional = {
        "system": request.system,
        "stop_sequences": list(request.stop_sequences) or None,
        "metadata": {"user_id": request.user_id} if request.user_id else None,
        **{k: v for k, v in request.sampling().items() if k not in dropped},
    }
    params.update({k: v for k, v in optional.items() if v is not None})
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
    tried once more without it.  What the rules leave out is reported in `model.dropped`."""
    retried = False
    option = model.options.get("thinking")
    thinking = isinstance(option, dict) and option.get("type") in ("enabled", "adaptive")
    while True:
        refused = lessons.refused(model.id)
        rules = rules_for(model.id, api_version, model.capabilities, refused, thinking)
        model.dropped.update(dropped_params(request, rules))
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
