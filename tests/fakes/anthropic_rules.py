"""The Messages API's request rules: those that depend on the model and the API version,
the endpoints' top-level fields, and the entry points (`violation`,
`count_tokens_violation`) that run these and `anthropic_content_rules` in the API's order.

The fake Anthropic server answers a request that breaks one of these with the real
400 `invalid_request_error` before any stream starts, so that a gateway that sends what
the real API refuses fails its tests instead of passing against a lenient fake.  The
rules are written here from Anthropic's documentation (DESIGN.md, "Upstream facts"),
never imported from the gateway: a fake that shares the code under test shares its bugs.

- A final assistant turn (a prefill) is refused by the 4.6 models and every later one,
  and by every model when thinking is on; where a prefill is accepted, its content must
  not end in whitespace.
- `temperature`, `top_p` and `top_k` are refused by Opus 4.7+, Sonnet 5+ and Haiku 5.5+,
  and by every model under `anthropic-version: 2026-10-21`.
- Every message has content, except a final assistant turn.
- Where they are accepted, models from 4.1 on refuse `temperature` and `top_p` together
  (observed on the real API for Opus 4.1, Sonnet 4.5, Haiku 4.5 and Sonnet 4.6).
- An id the table cannot read as a Claude family and version gets the newest (strictest)
  rules.
- A top-level field the endpoint does not define is refused (`MESSAGES_FIELDS`,
  `COUNT_TOKENS_FIELDS`): an OpenAI-only field leaking into a request fails here.
- What the request carries (tools, content blocks, tool turns, signed thinking) follows
  `anthropic_content_rules`.

A token count takes no `max_tokens` and no sampling parameters.  The messages are the
real API's, as reported verbatim from its 400s (2026), kept as constants so that tests
can match them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from tests.fakes import anthropic_content_rules as content

STRICT_API_VERSION = "2026-10-21"  # the official SDKs' default from Python SDK 2.0
API_VERSIONS = frozenset({"2023-01-01", "2023-06-01", STRICT_API_VERSION})
SAMPLING_PARAMS = ("temperature", "top_p", "top_k")
STOP_REASONS = frozenset(
    {
        "end_turn",
        "max_tokens",
        "stop_sequence",
        "tool_use",
        "pause_turn",
        "refusal",
        "model_context_window_exceeded",
    }
)
# The top-level fields of each endpoint: MessageCreateParams and MessageCountTokensParams of
# the official Python SDK 2.15 (whose `workspace_id` and `user_profile_id` are headers), the
# beta `mcp_servers` and `context_management`, and, on Messages, the sampling parameters
# that API versions before 2026-10-21 take (the sampling rules below judge those).
_COMMON_FIELDS = frozenset(
    {
        "model",
        "messages",
        "system",
        "tools",
        "tool_choice",
        "thinking",
        "cache_control",
        "output_config",
        "speed",
        "mcp_servers",
        "context_management",
    }
)
MESSAGES_FIELDS = _COMMON_FIELDS | {
    "max_tokens",
    "metadata",
    "stop_sequences",
    "stream",
    "service_tier",
    "container",
    "diagnostics",
    "inference_geo",
    *SAMPLING_PARAMS,
}
COUNT_TOKENS_FIELDS = _COMMON_FIELDS
THINKING_TYPES = ("enabled", "adaptive", "disabled")
MIN_THINKING_BUDGET = 1024

PREFILL_PHRASE = "assistant message prefill"
PREFILL_UNSUPPORTED = (
    "This model does not support assistant message prefill. "
    "The conversation must end with a user message."
)
PREFILL_WITH_THINKING = (
    "Thinking does not support assistant message prefill. "
    "The conversation must end with a user message."
)
TEMPERATURE_AND_TOP_P = (
    "temperature and top_p cannot both be specified for this model. Please use only one."
)
TRAILING_WHITESPACE = "messages: final assistant content cannot end with trailing whitespace"
FIRST_MESSAGE_NOT_USER = 'messages: first message must use the "user" role'
EMPTY_CONTENT = (
    "all messages must have non-empty content except for the optional final assistant message"
)


def extra_input(param: str) -> str:
    """Any sampling parameter under API version 2026-10-21."""
    return f"{param}: Extra inputs are not permitted"


def deprecated_for_model(param: str) -> str:
    """A sampling parameter on a model that refuses it, under API version 2023-06-01."""
    return f"`{param}` is deprecated for this model."


def invalid_api_version(version: str) -> str:
    return f"anthropic-version: {version!r} is not a valid version"


# --- the model table --------------------------------------------------------------------

_NO_PREFILL_FROM = (4, 6)
_ONE_SAMPLER_FROM = (4, 1)  # temperature or top_p, not both
_NO_SAMPLING_FROM = {"opus": (4, 7), "sonnet": (5, 0), "haiku": (5, 5)}
_FAMILY = r"(?P<family>opus|sonnet|haiku)"
_VERSION = r"(?P<major>\d+)(?:-(?P<minor>\d{1,2}))?"
_SNAPSHOT = r"(?:-\d{8}|-latest)?"
_IDS = (
    re.compile(f"claude-{_FAMILY}-{_VERSION}{_SNAPSHOT}"),  # claude-opus-4-20250514
    re.compile(f"claude-{_VERSION}-{_FAMILY}{_SNAPSHOT}"),  # claude-3-5-sonnet-20241022
)


@dataclass(frozen=True, slots=True)
class ClaudeModel:
    family: str  # opus | sonnet | haiku
    version: tuple[int, int]  # (major, minor)


def parse_model(model_id: str) -> ClaudeModel | None:
    """`claude-sonnet-4-5-20250929` → sonnet (4, 5); `claude-opus-4-20250514` → opus (4, 0);
    None for anything else (the whole id must match: a date is never read as a minor)."""
    for pattern in _IDS:
        match = pattern.fullmatch(model_id)
        if match:
            minor = match.group("minor")
            version = (int(match.group("major")), int(minor) if minor else 0)
            return ClaudeModel(match.group("family"), version)
    return None


def accepts_prefill(model_id: str) -> bool:
    model = parse_model(model_id)
    return model is not None and model.version < _NO_PREFILL_FROM


def accepts_temperature_with_top_p(model_id: str) -> bool:
    model = parse_model(model_id)
    return model is not None and model.version < _ONE_SAMPLER_FROM


def accepts_sampling(model_id: str, api_version: str) -> bool:
    model = parse_model(model_id)
    if model is None or api_version == STRICT_API_VERSION:
        return False
    return model.version < _NO_SAMPLING_FROM[model.family]


# --- checking one request ---------------------------------------------------------------


def violation(body: dict[str, Any], api_version: str) -> str | None:
    """The 400 message the real API answers a Messages request `body` with under
    `api_version`, or None."""
    return _first_problem(body, api_version, MESSAGES_FIELDS, ("model", "max_tokens", "messages"))


def count_tokens_violation(body: dict[str, Any], api_version: str) -> str | None:
    """The same for `POST /v1/messages/count_tokens`."""
    return _first_problem(body, api_version, COUNT_TOKENS_FIELDS, ("model", "messages"))


def _first_problem(
    body: dict[str, Any], api_version: str, fields: frozenset[str], required: tuple[str, ...]
) -> str | None:
    if api_version not in API_VERSIONS:
        return invalid_api_version(api_version)
    for key in required:
        if key not in body:
            return f"{key}: Field required"
    extra = [key for key in body if key not in fields]
    if extra:
        return extra_input(extra[0])
    return (
        _sampling_problem(body, api_version)
        or _thinking_problem(body)
        or content.tools_problem(body, thinking_on(body))
        or _messages_problem(body)
    )


def _sampling_problem(body: dict[str, Any], api_version: str) -> str | None:
    model_id = str(body["model"])
    sampling = [key for key in body if key in SAMPLING_PARAMS]  # the body's own order
    if sampling and api_version == STRICT_API_VERSION:
        return extra_input(sampling[0])
    if sampling and not accepts_sampling(model_id, api_version):
        return deprecated_for_model(sampling[0])
    if {"temperature", "top_p"} <= set(sampling) and not accepts_temperature_with_top_p(model_id):
        return TEMPERATURE_AND_TOP_P
    return None


def _messages_problem(body: dict[str, Any]) -> str | None:
    messages = body["messages"]
    if not messages or messages[0].get("role") != "user":
        return FIRST_MESSAGE_NOT_USER
    last = messages[-1]
    for i, message in enumerate(messages):
        empty = message.get("content") in ("", [])
        if empty and not (message is last and last.get("role") == "assistant"):
            return f"messages.{i}: {EMPTY_CONTENT}"
    problem = content.messages_problem(messages, thinking_on(body))
    if problem or last.get("role") != "assistant":
        return problem
    if thinking_on(body):
        return PREFILL_WITH_THINKING
    if not accepts_prefill(str(body["model"])):
        return PREFILL_UNSUPPORTED
    if _final_text(last.get("content")) != _final_text(last.get("content")).rstrip():
        return TRAILING_WHITESPACE
    return None


def thinking_on(body: dict[str, Any]) -> bool:
    """Whether the request asks for thinking (`enabled` with a budget, or `adaptive`)."""
    thinking = body.get("thinking")
    return isinstance(thinking, dict) and thinking.get("type") in ("enabled", "adaptive")


def _thinking_problem(body: dict[str, Any]) -> str | None:
    if "thinking" not in body:
        return None
    thinking = body["thinking"]
    kind = thinking.get("type") if isinstance(thinking, dict) else None
    if kind not in THINKING_TYPES:
        return f"thinking.type: Input should be one of {', '.join(THINKING_TYPES)}"
    if kind == "enabled":
        budget = thinking.get("budget_tokens")
        if not isinstance(budget, int) or budget < MIN_THINKING_BUDGET:
            return f"thinking.enabled.budget_tokens: Input should be >= {MIN_THINKING_BUDGET}"
        if "max_tokens" in body and budget >= body["max_tokens"]:
            return "max_tokens: must be greater than thinking.budget_tokens"
    return None


def _final_text(content: Any) -> str:
    """The text a final assistant turn ends with (string content, or its last text block)."""
    if isinstance(content, str):
        return content
    if isinstance(content, list) and content and isinstance(content[-1], dict):
        return str(content[-1].get("text", ""))
    return ""
