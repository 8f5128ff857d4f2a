"""What both Anthropic clients share: their settings, the Messages API request, and the
meaning of the API's error types.

Parts, in the order every provider module keeps: settings → request transform → error
mapping (the clients, `wire` and `sdk`, hold the stream transforms).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from providers.base import UpstreamRequest

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
