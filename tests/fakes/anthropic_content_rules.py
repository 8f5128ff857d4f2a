"""The Messages API's rules on what a request carries: tools, `tool_choice`, content blocks,
the pairing of `tool_use` with `tool_result`, and signed thinking.

`anthropic_rules.violation` runs these after the model and version rules; the fake answers
a break with the real 400.  Like those rules, they are written from the API's documentation
and its observed 400s, never imported from the gateway.

- A client tool is named `^[a-zA-Z0-9_-]{1,64}$` and takes an `input_schema` of type
  `object`; a server tool (a versioned type such as `web_search_20250305`) is taken as sent;
  tool names are unique; `tool_choice` is `auto`, `any`, `none`, or `tool` naming a tool.
- Content blocks are of the API's types; an image's source is base64 (of a JPEG, PNG, GIF or
  WebP that matches its `media_type`) or an http(s) URL; a `tool_use` has an id, a name and
  an object input.
- Every `tool_use` of an assistant turn is answered by a `tool_result` in the next turn,
  and every `tool_result` answers a `tool_use` of the turn before.
- A thinking block sent back carries the signature the fake issued for its text
  (`sign_thinking`); with thinking on, a last assistant turn that calls tools starts with
  a thinking block; thinking does not go with a `tool_choice` that forces a tool.

Messages quoted from the real API's 400s are marked "verbatim"; the others follow its
style (pydantic paths such as `messages.1.content.0.tool_use.input`).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
from typing import Any

TOOL_NAME = re.compile(r"[a-zA-Z0-9_-]{1,64}")
SERVER_TOOL_TYPE = re.compile(r"[a-z][a-z0-9_]*_\d{8}")  # bash_20250124, web_search_20250305
CUSTOM_TOOL_FIELDS = frozenset(  # ToolParam of the official SDK 2.15
    {
        "type",
        "name",
        "description",
        "input_schema",
        "cache_control",
        "strict",
        "input_examples",
        "defer_loading",
        "allowed_callers",
        "eager_input_streaming",
    }
)
TOOL_CHOICE_TYPES = ("auto", "any", "tool", "none")
BLOCK_TYPES = (  # ContentBlockParam of the official SDK 2.15
    "text",
    "image",
    "document",
    "search_result",
    "thinking",
    "redacted_thinking",
    "tool_use",
    "tool_result",
    "server_tool_use",
    "web_search_tool_result",
    "web_fetch_tool_result",
    "code_execution_tool_result",
    "bash_code_execution_tool_result",
    "text_editor_code_execution_tool_result",
    "tool_search_tool_result",
    "container_upload",
)
IMAGE_MAGIC = {  # how each media type's bytes begin
    "image/jpeg": (b"\xff\xd8\xff",),
    "image/png": (b"\x89PNG\r\n\x1a\n",),
    "image/gif": (b"GIF87a", b"GIF89a"),
    "image/webp": (b"RIFF",),
}
SERVER_TOOL_EXAMPLES = (  # a few of the SDK's server tool types, for the refusal's wording
    "bash_20250124",
    "code_execution_20250825",
    "memory_20250818",
    "text_editor_20250728",
    "web_fetch_20250910",
    "web_search_20250305",
)
THINKING_BLOCKS = ("thinking", "redacted_thinking")
_SIGNING_KEY = b"fake-anthropic-thinking-signatures"

TOOL_NAMES_NOT_UNIQUE = "tools: Tool names must be unique."
TOOL_CHOICE_WITH_THINKING = (  # verbatim
    "Thinking may not be enabled when tool_choice forces tool use."
)
NOT_AN_OBJECT = "Input should be a valid dictionary or object to extract fields from"
IMAGE_MEDIA_TYPES = (  # verbatim
    "Input should be 'image/jpeg', 'image/png', 'image/gif' or 'image/webp'"
)
INVALID_SIGNATURE = "Invalid `signature` in `thinking` block"  # verbatim


def sign_thinking(thinking: str) -> str:
    """The signature the fake streams with a thinking text: base64 of an HMAC-SHA256 under a
    fixed key, so that a block sent back can be told from an edited or invented one."""
    digest = hmac.new(_SIGNING_KEY, thinking.encode(), hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def tool_use_without_result(index: int, ids: list[str]) -> str:  # verbatim
    return (
        f"messages.{index}: `tool_use` ids were found without `tool_result` blocks "
        f"immediately after: {', '.join(ids)}. Each `tool_use` block must have a "
        "corresponding `tool_result` block in the next message."
    )


def unexpected_tool_result(path: str, tool_use_id: str) -> str:  # verbatim
    return (
        f"{path}: unexpected `tool_use_id` found in `tool_result` blocks: {tool_use_id}. "
        "Each `tool_result` block must have a corresponding `tool_use` block in the "
        "previous message."
    )


def thinking_must_come_first(index: int, found: str) -> str:  # verbatim
    return (
        f"messages.{index}.content.0.type: Expected `thinking` or `redacted_thinking`, but "
        f"found `{found}`. When `thinking` is enabled, a final `assistant` message must start "
        "with a thinking block (preceeding the lastmost set of `tool_use` and `tool_result` "
        "blocks). We recommend you include thinking blocks from previous turns. To avoid "
        "this requirement, disable `thinking`. Please consult our documentation at "
        "https://docs.claude.com/en/docs/build-with-claude/extended-thinking"
    )


def unknown_tag(path: str, tag: Any, tags: tuple[str, ...]) -> str:
    """A discriminated union meeting a `type` it does not know (pydantic's wording)."""
    expected = ", ".join(f"'{t}'" for t in tags)
    return (
        f"{path}: Input tag '{tag}' found using 'type' does not match any of the expected "
        f"tags: {expected}"
    )


# --- tools ------------------------------------------------------------------------------


def tools_problem(body: dict[str, Any], thinking: bool) -> str | None:
    """What is wrong with the request's `tools` and `tool_choice`, or None."""
    tools = body.get("tools", [])
    if not isinstance(tools, list):
        return "tools: Input should be a valid list"
    for i, tool in enumerate(tools):
        problem = _tool_problem(f"tools.{i}", tool)
        if problem:
            return problem
    names = [tool.get("name") for tool in tools]
    if len(names) != len(set(names)):
        return TOOL_NAMES_NOT_UNIQUE
    if "tool_choice" in body:
        return _tool_choice_problem(body["tool_choice"], names, thinking)
    return None


def _tool_problem(path: str, tool: Any) -> str | None:
    if not isinstance(tool, dict):
        return f"{path}: {NOT_AN_OBJECT}"
    kind = tool.get("type")
    if kind not in (None, "custom"):
        if isinstance(kind, str) and SERVER_TOOL_TYPE.fullmatch(kind):
            return None  # a server tool: the fake takes it as sent
        return unknown_tag(path, kind, ("custom", *SERVER_TOOL_EXAMPLES))
    path += ".custom"
    for key in ("name", "input_schema"):
        if key not in tool:
            return f"{path}.{key}: Field required"
    extra = [key for key in tool if key not in CUSTOM_TOOL_FIELDS]
    if extra:
        return f"{path}.{extra[0]}: Extra inputs are not permitted"
    name = tool["name"]
    if not isinstance(name, str) or not TOOL_NAME.fullmatch(name):
        return f"{path}.name: String should match pattern '^[a-zA-Z0-9_-]{{1,64}}$'"  # verbatim
    schema = tool["input_schema"]
    if not isinstance(schema, dict):
        return f"{path}.input_schema: {NOT_AN_OBJECT}"
    if schema.get("type") != "object":
        return f"{path}.input_schema.type: Input should be 'object'"
    return None


def _tool_choice_problem(choice: Any, names: list[Any], thinking: bool) -> str | None:
    if not isinstance(choice, dict):
        return f"tool_choice: {NOT_AN_OBJECT}"
    kind = choice.get("type")
    if kind not in TOOL_CHOICE_TYPES:
        return unknown_tag("tool_choice", kind, TOOL_CHOICE_TYPES)
    allowed = {"type"} if kind == "none" else {"type", "disable_parallel_tool_use"}
    if kind == "tool":
        if "name" not in choice:
            return "tool_choice.tool.name: Field required"
        if choice["name"] not in names:
            return f"tool_choice.tool.name: Tool '{choice['name']}' not found in `tools`"
        allowed.add("name")
    extra = [key for key in choice if key not in allowed]
    if extra:
        return f"tool_choice.{kind}.{extra[0]}: Extra inputs are not permitted"
    if thinking and kind in ("any", "tool"):
        return TOOL_CHOICE_WITH_THINKING
    return None


# --- messages ---------------------------------------------------------------------------


def messages_problem(messages: list[dict[str, Any]], thinking: bool) -> str | None:
    """What is wrong with the messages' content blocks and their tool turns, or None."""
    for i, message in enumerate(messages):
        for j, block in enumerate(_blocks(message)):
            problem = _block_problem(f"messages.{i}.content.{j}", block)
            if problem:
                return problem
    problem = _pairing_problem(messages)
    if problem or not thinking:
        return problem
    return _thinking_first_problem(messages)


def _blocks(message: Any) -> list[Any]:
    content = message.get("content") if isinstance(message, dict) else None
    return content if isinstance(content, list) else []


def _block_problem(path: str, block: Any) -> str | None:
    if not isinstance(block, dict):
        return f"{path}: {NOT_AN_OBJECT}"
    kind = block.get("type")
    if kind not in BLOCK_TYPES:
        return unknown_tag(path, kind, BLOCK_TYPES)
    if kind == "image":
        return _image_problem(f"{path}.image", block)
    if kind == "tool_use":
        return _tool_use_problem(f"{path}.tool_use", block)
    if kind == "tool_result":
        if "tool_use_id" not in block:
            return f"{path}.tool_result.tool_use_id: Field required"
        for k, part in enumerate(_blocks(block)):
            if isinstance(part, dict) and part.get("type") == "image":
                problem = _image_problem(f"{path}.tool_result.content.{k}.image", part)
                if problem:
                    return problem
    if kind == "thinking":
        return _thinking_problem(path, block)
    return None


def _image_problem(path: str, block: dict[str, Any]) -> str | None:
    source = block.get("source")
    if not isinstance(source, dict):
        return f"{path}.source: {'Field required' if source is None else NOT_AN_OBJECT}"
    kind = source.get("type")
    if kind == "url":
        url = source.get("url")
        if not isinstance(url, str):
            return f"{path}.source.url.url: Field required"
        if not url.startswith(("https://", "http://")):
            return f"{path}.source.url.url: URL must use the http or https scheme"
        return None
    if kind != "base64":
        return unknown_tag(f"{path}.source", kind, ("base64", "url"))
    media_type = source.get("media_type")
    if media_type not in IMAGE_MAGIC:
        return f"{path}.source.base64.media_type: {IMAGE_MEDIA_TYPES}"
    return _image_data_problem(f"{path}.source.base64", media_type, source.get("data"))


def _image_data_problem(path: str, media_type: str, data: Any) -> str | None:
    """The real API decodes the image: its data must be base64 of an image of its type."""
    if not isinstance(data, str):
        return f"{path}.data: Field required"
    if not data:
        return f"{path}: image cannot be empty"  # verbatim
    try:
        image = base64.b64decode(data, validate=True)
    except binascii.Error:
        return f"{path}: invalid base64 data"  # verbatim
    if not image.startswith(IMAGE_MAGIC[media_type]):
        return f"{path}.data: Image does not match the provided media type {media_type}"
    return None


def _tool_use_problem(path: str, block: dict[str, Any]) -> str | None:
    for key in ("id", "name", "input"):
        if key not in block:
            return f"{path}.{key}: Field required"
    if not isinstance(block["input"], dict):
        return f"{path}.input: Input should be a valid dictionary"  # verbatim
    return None


def _thinking_problem(path: str, block: dict[str, Any]) -> str | None:
    for key in ("thinking", "signature"):
        if not isinstance(block.get(key), str):
            return f"{path}.thinking.{key}: Field required"
    if not hmac.compare_digest(block["signature"], sign_thinking(block["thinking"])):
        return f"{path}: {INVALID_SIGNATURE}"
    return None


def _ids(message: Any, kind: str, key: str) -> list[str]:
    return [str(b.get(key)) for b in _blocks(message) if isinstance(b, dict) and b["type"] == kind]


def _pairing_problem(messages: list[dict[str, Any]]) -> str | None:
    """Tool calls and their results sit in adjacent turns: an assistant turn's `tool_use`
    ids are all answered in the next turn, and a user turn answers only the turn before."""
    for i, message in enumerate(messages):
        if message.get("role") == "assistant":
            following = messages[i + 1] if i + 1 < len(messages) else {}
            answered = set(_ids(following, "tool_result", "tool_use_id"))
            missing = [id_ for id_ in _ids(message, "tool_use", "id") if id_ not in answered]
            if missing:
                return tool_use_without_result(i, missing)
            continue
        previous = messages[i - 1] if i and messages[i - 1].get("role") == "assistant" else {}
        issued = set(_ids(previous, "tool_use", "id"))
        for j, block in enumerate(_blocks(message)):
            if block["type"] == "tool_result" and str(block.get("tool_use_id")) not in issued:
                return unexpected_tool_result(f"messages.{i}.content.{j}", block.get("tool_use_id"))
    return None


def _thinking_first_problem(messages: list[dict[str, Any]]) -> str | None:
    """With thinking on, the last assistant turn, when it calls tools, starts with thinking."""
    turns = [i for i, message in enumerate(messages) if message.get("role") == "assistant"]
    if not turns or not _ids(messages[turns[-1]], "tool_use", "id"):
        return None
    first = _blocks(messages[turns[-1]])[0]["type"]
    return None if first in THINKING_BLOCKS else thinking_must_come_first(turns[-1], first)
