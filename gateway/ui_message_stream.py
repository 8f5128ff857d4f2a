"""`?format=ui`: the Vercel AI SDK 5 UI message stream protocol, the default transport of
`useChat` (`DefaultChatTransport`), and the request body `useChat` sends.

The stream is SSE without `event:` lines: each chunk is one `data: <json>\\n\\n` frame
(never a newline inside one, so a chunk of the answer splits into frames at `\\n\\n`),
and the stream ends with `data: [DONE]`.  The AI SDK validates every chunk against
`uiMessageChunkSchema` (strictly in early 5.0 releases), so only the fields it defines
are sent:

    start {messageId} → start-step → text-start {id} → text-delta {id, delta}...
      → text-end {id} → finish-step → finish {messageMetadata} → [DONE]

The text part is opened by the first content (a stream without text has none);
`finish.messageMetadata` carries the guide's `done` event (model, stop reason, usage,
request id).  A failure after the start is `error {errorText}` then `[DONE]`; before it,
the error's status with one error part as the body, which `useChat` reports as the error.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal, Self

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationInfo, model_validator

from gateway.formats import with_retry_after
from gateway.schemas import ChatBody, parse_body
from gateway.sse import KEEPALIVE_FRAME, Redactor, frame
from providers.base import UpstreamRequest
from providers.content import PartDelta
from providers.errors import GatewayError

UI_MESSAGE_STREAM_HEADERS = {
    "Content-Type": "text/event-stream",
    "Cache-Control": "no-cache",
    "X-Accel-Buffering": "no",
    "x-vercel-ai-ui-message-stream": "v1",
}
DONE_FRAME = b"data: [DONE]\n\n"


class UiMessageFormat:
    """One response's UI message stream (it remembers whether the message and its text
    part were started)."""

    headers = UI_MESSAGE_STREAM_HEADERS
    keepalive: bytes | None = KEEPALIVE_FRAME  # a comment, which the AI SDK's parser skips

    def __init__(self, message_id: str | None = None) -> None:
        self.message_id = message_id or f"msg-{uuid.uuid4().hex}"
        self._text_id = "text-1"
        self._started = False
        self._text_started = False

    def content(self, text: str) -> bytes:
        opening = self._start()
        if not self._text_started:
            self._text_started = True
            opening += frame({"type": "text-start", "id": self._text_id})
        return opening + frame({"type": "text-delta", "id": self._text_id, "delta": text})

    def part(self, delta: PartDelta) -> bytes:
        return b""

    def done(self, event: dict[str, Any]) -> bytes:
        chunks = self._start()
        if self._text_started:
            chunks += frame({"type": "text-end", "id": self._text_id})
        metadata = {key: value for key, value in event.items() if key != "type"}
        chunks += frame({"type": "finish-step"})
        chunks += frame({"type": "finish", "messageMetadata": metadata})
        return chunks + DONE_FRAME

    def error(self, event: dict[str, Any]) -> bytes | None:
        return frame({"type": "error", "errorText": event["error"]}) + DONE_FRAME

    def error_response(
        self, error: GatewayError, request_id: str, redact: Redactor, headers: dict[str, str]
    ) -> web.Response:
        """A failure before the stream started: the right status, and one error part."""
        body = frame({"type": "error", "errorText": redact(error.message)})
        return with_retry_after(
            web.Response(
                status=error.client_status,
                body=body,
                headers={**UI_MESSAGE_STREAM_HEADERS, **headers},
            ),
            error,
        )

    def _start(self) -> bytes:
        if self._started:
            return b""
        self._started = True
        start = frame({"type": "start", "messageId": self.message_id})
        return start + frame({"type": "start-step"})


# --- useChat's request body ---------------------------------------------------------------


class UiPart(BaseModel):
    """A part of a UI message.  Only text parts are read; the others (files, reasoning,
    tool calls, step markers, data parts...) are accepted and left out."""

    type: str
    text: str | None = None

    @model_validator(mode="after")
    def _text_part_has_text(self) -> Self:
        if self.type == "text" and self.text is None:
            raise ValueError("a text part needs its 'text'")
        return self


class UiMessage(BaseModel):
    id: str | None = None
    role: Literal["system", "user", "assistant"]
    parts: list[UiPart]

    def texts(self) -> list[str]:
        return [part.text for part in self.parts if part.type == "text" and part.text is not None]


class UiChatBody(BaseModel):
    """`useChat`'s body (AI SDK 5 `DefaultChatTransport`): `{"id", "messages": [UIMessage],
    "trigger", "messageId"?}` plus the app's own `body` fields.

    It is read as the guide's `ChatBody` would read the same conversation, so it validates
    alike and makes the same `UpstreamRequest`: system messages' text becomes the system
    prompt (after a `system` field, if any), only text parts count, an assistant message
    without text is left out, and `max_tokens`, `temperature`, `model`... are read from the
    extra fields.
    """

    model_config = ConfigDict(extra="allow")

    id: Annotated[str, Field(min_length=1, max_length=200)]
    messages: Annotated[list[UiMessage], Field(min_length=1, max_length=1000)]
    trigger: Literal["submit-message", "regenerate-message"] = "submit-message"
    message_id: str | None = Field(default=None, alias="messageId")

    _chat: ChatBody = PrivateAttr()

    @model_validator(mode="after")
    def _read_as_chat_body(self, info: ValidationInfo) -> Self:
        limit = (info.context or {}).get("max_tokens_limit", 64_000)
        # A refusal is `parse_body`'s InvalidBody, which pydantic lets through unchanged.
        self._chat = parse_body(ChatBody, self._chat_fields(), limit)
        return self

    @property
    def chat_id(self) -> str:
        return self.id

    @property
    def model(self) -> str | None:
        return self._chat.model

    def to_upstream(self) -> UpstreamRequest:
        return self._chat.to_upstream()

    def _chat_fields(self) -> dict[str, Any]:
        fields = dict(self.model_extra or {})
        system = ["".join(m.texts()) for m in self.messages if m.role == "system"]
        given = fields.get("system")
        if system and (given is None or isinstance(given, str)):
            fields["system"] = "\n\n".join([given, *system] if given else system)
        fields["messages"] = [
            {"role": m.role, "content": [{"type": "text", "text": text} for text in m.texts()]}
            for m in self.messages
            if m.role == "user" or (m.role == "assistant" and m.texts())
        ]
        return fields


class UiFormatChatBody:
    """What `POST /ai/stream/chat?format=ui` reads: `useChat`'s body (messages with
    `parts`) as a `UiChatBody`, anything else as the guide's `ChatBody`."""

    def __init__(self, body: UiChatBody | ChatBody) -> None:
        self.body = body

    @classmethod
    def model_validate(cls, obj: Any, *, context: Any = None) -> Self:
        if has_ui_messages(obj):
            return cls(UiChatBody.model_validate(obj, context=context))
        return cls(ChatBody.model_validate(obj, context=context))

    @property
    def chat_id(self) -> str | None:
        return self.body.chat_id if isinstance(self.body, UiChatBody) else None

    @property
    def model(self) -> str | None:
        return self.body.model

    def to_upstream(self) -> UpstreamRequest:
        return self.body.to_upstream()


def has_ui_messages(body: Any) -> bool:
    """Whether `body` is `useChat`'s: its messages have `parts` rather than `content`."""
    messages = body.get("messages") if isinstance(body, dict) else None
    return isinstance(messages, list) and any(
        isinstance(message, dict) and "parts" in message for message in messages
    )
