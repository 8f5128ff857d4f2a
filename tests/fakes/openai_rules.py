"""The chat-completions request rules the fake OpenAI server enforces, with OpenAI's 400s.

The fake answers a request that breaks one of these with the real 400 before any stream
starts, so that a gateway that sends what OpenAI refuses fails its tests.  Written from
OpenAI's API reference and its observed 400s, never imported from the gateway.

- A top-level field chat completions does not define is refused (`REQUEST_FIELDS`): an
  Anthropic-only field (`top_k`, `thinking`, `stop_sequences`) leaking into a request
  fails here.
- `tools` are `{"type": "function", "function": {"name", "parameters"?, ...}}` (or a
  `custom` tool), named `^[a-zA-Z0-9_-]+$` in at most 64 characters; `tool_choice` is
  `none`, `auto`, `required` or an object, and only with `tools`.
- An assistant turn's `tool_calls` (each `function.arguments` a JSON string, not an
  object) are all answered by the `tool` messages right after it; a `tool` message answers
  one of the calls of the assistant turn before its run.

Messages quoted from OpenAI's 400s are marked "verbatim"; the others follow its style.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

# CompletionCreateParams of the official Python SDK 3.57.
REQUEST_FIELDS = frozenset(
    {
        "model",
        "messages",
        "audio",
        "frequency_penalty",
        "function_call",
        "functions",
        "logit_bias",
        "logprobs",
        "max_completion_tokens",
        "max_tokens",
        "metadata",
        "modalities",
        "moderation",
        "n",
        "parallel_tool_calls",
        "prediction",
        "presence_penalty",
        "prompt_cache_key",
        "prompt_cache_options",
        "prompt_cache_retention",
        "reasoning_effort",
        "response_format",
        "safety_identifier",
        "seed",
        "service_tier",
        "stop",
        "store",
        "stream",
        "stream_options",
        "temperature",
        "tool_choice",
        "tools",
        "top_logprobs",
        "top_p",
        "user",
        "verbosity",
        "web_search_options",
    }
)
TOOL_TYPES = ("function", "custom")
TOOL_CHOICE_MODES = ("none", "auto", "required")
TOOL_CHOICE_TYPES = ("function", "allowed_tools", "custom")
TOOL_NAME = re.compile(r"[a-zA-Z0-9_-]+")
_JSON_TYPES: tuple[tuple[type, str], ...] = (
    (dict, "an object"),
    (list, "an array"),
    (str, "a string"),
    (bool, "a boolean"),
    (int, "a number"),
    (float, "a number"),
)
MAX_TOOL_NAME = 64

TOOL_WITHOUT_CALL = (  # verbatim, OpenAI's spelling
    "Invalid parameter: messages with role 'tool' must be a response to a preceeding "
    "message with 'tool_calls'."
)
TOOL_CHOICE_WITHOUT_TOOLS = (  # verbatim
    "Invalid value for 'tool_choice': 'tool_choice' is only allowed when 'tools' are specified."
)


@dataclass(frozen=True, slots=True)
class Problem:
    """One 400 `invalid_request_error`: its message, and OpenAI's `param` and `code`."""

    message: str
    param: str | None = None
    code: str | None = None


def unrecognized(fields: list[str]) -> Problem:  # verbatim
    if len(fields) == 1:
        return Problem(f"Unrecognized request argument supplied: {fields[0]}")
    return Problem(f"Unrecognized request arguments supplied: {', '.join(sorted(fields))}")


def missing(param: str) -> Problem:
    return Problem(f"Missing required parameter: '{param}'.", param, "missing_required_parameter")


def wrong_type(param: str, expected: str, value: Any) -> Problem:  # verbatim
    got = next((name for kind, name in _JSON_TYPES if isinstance(value, kind)), "null")
    message = f"Invalid type for '{param}': expected {expected}, but got {got} instead."
    return Problem(message, param, "invalid_type")


def unsupported_value(param: str, value: Any, supported: tuple[str, ...]) -> Problem:
    listed = ", ".join(f"'{v}'" for v in supported[:-1]) + f", and '{supported[-1]}'"
    message = f"Invalid value: '{value}'. Supported values are: {listed}."
    return Problem(message, param, "invalid_value")


def unanswered_tool_calls(index: int, ids: list[str]) -> Problem:  # verbatim
    message = (
        "An assistant message with 'tool_calls' must be followed by tool messages responding "
        "to each 'tool_call_id'. The following tool_call_ids did not have response "
        f"messages: {', '.join(ids)}"
    )
    return Problem(message, f"messages.[{index}].role")


def unknown_tool_call_id(index: int, tool_call_id: Any) -> Problem:  # verbatim
    message = (
        f"Invalid parameter: 'tool_call_id' of '{tool_call_id}' not found in 'tool_calls' "
        "of previous message."
    )
    return Problem(message, f"messages.[{index}].tool_call_id")


def violation(body: dict[str, Any]) -> Problem | None:
    """The 400 OpenAI answers a chat-completions `body` with, or None."""
    extra = [key for key in body if key not in REQUEST_FIELDS]
    if extra:
        return unrecognized(extra)
    return _tools_problem(body) or _messages_problem(body["messages"])


# --- tools ------------------------------------------------------------------------------


def _tools_problem(body: dict[str, Any]) -> Problem | None:
    tools = body.get("tools")
    if tools is not None and not isinstance(tools, list):
        return wrong_type("tools", "an array", tools)
    for i, tool in enumerate(tools or []):
        problem = _tool_problem(f"tools[{i}]", tool)
        if problem:
            return problem
    if "tool_choice" in body:
        return _tool_choice_problem(body["tool_choice"], bool(tools))
    return None


def _tool_problem(param: str, tool: Any) -> Problem | None:
    if not isinstance(tool, dict):
        return wrong_type(param, "an object", tool)
    if "type" not in tool:
        return missing(f"{param}.type")
    if tool["type"] not in TOOL_TYPES:
        return unsupported_value(f"{param}.type", tool["type"], TOOL_TYPES)
    if tool["type"] == "custom":
        return None
    function = tool.get("function")
    if function is None:
        return missing(f"{param}.function")
    if not isinstance(function, dict):
        return wrong_type(f"{param}.function", "an object", function)
    if "name" not in function:
        return missing(f"{param}.function.name")
    problem = _tool_name_problem(f"{param}.function.name", function["name"])
    if problem:
        return problem
    parameters = function.get("parameters", {})
    if not isinstance(parameters, dict):
        return wrong_type(f"{param}.function.parameters", "an object", parameters)
    return None


def _tool_name_problem(param: str, name: Any) -> Problem | None:
    if not isinstance(name, str):
        return wrong_type(param, "a string", name)
    if len(name) > MAX_TOOL_NAME:  # verbatim
        message = (
            f"Invalid '{param}': string too long. Expected a string with maximum length "
            f"{MAX_TOOL_NAME}, but got a string with length {len(name)} instead."
        )
        return Problem(message, param, "string_above_max_length")
    if not TOOL_NAME.fullmatch(name):  # verbatim
        message = (
            f"Invalid '{param}': string does not match pattern. Expected a string that "
            f"matches the pattern '^[a-zA-Z0-9_-]+$'."
        )
        return Problem(message, param, "invalid_value")
    return None


def _tool_choice_problem(choice: Any, has_tools: bool) -> Problem | None:
    if not has_tools:
        return Problem(TOOL_CHOICE_WITHOUT_TOOLS, "tool_choice")
    if isinstance(choice, str):
        if choice in TOOL_CHOICE_MODES:
            return None
        return unsupported_value("tool_choice", choice, TOOL_CHOICE_MODES)
    if not isinstance(choice, dict):
        return wrong_type("tool_choice", "a string or an object", choice)
    if choice.get("type") not in TOOL_CHOICE_TYPES:
        return unsupported_value("tool_choice.type", choice.get("type"), TOOL_CHOICE_TYPES)
    return None


# --- messages ---------------------------------------------------------------------------


def _messages_problem(messages: list[Any]) -> Problem | None:
    """Tool calls are well formed, and answered by the `tool` messages right after them."""
    open_calls: list[str] | None = None  # the ids the current run of tool messages answers
    unanswered: list[str] = []
    caller = 0  # the index of the assistant turn that made `open_calls`
    for i, message in enumerate(messages):
        if message.get("role") == "tool":
            if open_calls is None:
                return Problem(TOOL_WITHOUT_CALL, f"messages.[{i}].role")
            if message.get("tool_call_id") not in open_calls:
                return unknown_tool_call_id(i, message.get("tool_call_id"))
            unanswered = [id_ for id_ in unanswered if id_ != message["tool_call_id"]]
            continue
        if unanswered:
            return unanswered_tool_calls(caller, unanswered)
        open_calls = None
        if message.get("role") == "assistant" and message.get("tool_calls"):
            problem = _tool_calls_problem(i, message["tool_calls"])
            if problem:
                return problem
            open_calls = [str(call["id"]) for call in message["tool_calls"]]
            unanswered, caller = list(open_calls), i
    return unanswered_tool_calls(caller, unanswered) if unanswered else None


def _tool_calls_problem(index: int, calls: Any) -> Problem | None:
    if not isinstance(calls, list):
        return wrong_type(f"messages[{index}].tool_calls", "an array", calls)
    for k, call in enumerate(calls):
        param = f"messages[{index}].tool_calls[{k}]"
        if not isinstance(call, dict):
            return wrong_type(param, "an object", call)
        for key in ("id", "type", "function"):
            if key not in call:
                return missing(f"{param}.{key}")
        function = call["function"]
        if not isinstance(function, dict):
            return wrong_type(f"{param}.function", "an object", function)
        for key in ("name", "arguments"):
            if key not in function:
                return missing(f"{param}.function.{key}")
        if not isinstance(function["arguments"], str):
            return wrong_type(f"{param}.function.arguments", "a string", function["arguments"])
    return None
