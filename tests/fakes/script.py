"""What a fake upstream does for one request (`Script`) and what it saw (`Seen`).

A script streams, in order: its text chunks, then its tool calls (`ScriptedToolCall`), each
in the upstream's own wire format.  A stream fault (`fault`, `fault_after`) counts the text
chunks and then the tool calls: `fault_after = len(chunks) + k` cuts tool call `k` halfway
through its input JSON, and a larger one faults after every block, before the end.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from aiohttp import web

Fault = Literal["error_event", "drop", "malformed", "stall", "truncate", "thinking"]
STREAM_FAULTS = {"error_event", "drop", "malformed", "stall", "truncate"}  # end the stream


@dataclass(frozen=True)
class ScriptedToolCall:
    """A tool call the fake streams after the script's text.  `id` None is generated per
    request (`toolu_…` on Anthropic, `call_…` on OpenAI); the JSON of `input` arrives in
    pieces, as the real APIs stream it."""

    name: str
    input: dict[str, Any]
    id: str | None = None


@dataclass
class Script:
    """What the fake does for one request."""

    status: int = 200
    chunks: list[str] = field(default_factory=lambda: ["Hello", ", ", "world", "!"])
    first_token_delay: float = 0.0
    chunk_delay: float = 0.0
    retry_after: str | None = None
    message: str = "scripted failure"
    fault: Fault | None = None
    fault_after: int = 0  # text chunks, then tool calls, sent before the fault
    headers: dict[str, str] = field(default_factory=dict)
    input_tokens: int = 11
    cache_write_tokens: int = 0  # Anthropic: reported in message_start when not 0
    cache_read_tokens: int = 0
    stop_reason: str | None = None  # Messages API words; None: see `final_stop_reason`
    hold: asyncio.Event | None = None  # the first token waits until the test sets it
    tool_calls: list[ScriptedToolCall] = field(default_factory=list)  # after the text
    thinking: str | None = None  # Anthropic: a thinking block before the text

    @property
    def final_stop_reason(self) -> str:
        """The stop reason sent: the scripted one, else `tool_use` for a script with tool
        calls (what the APIs answer when the model stops to call tools), else `end_turn`."""
        if self.stop_reason is not None:
            return self.stop_reason
        return "tool_use" if self.tool_calls else "end_turn"

    def cuts_tool_call(self, k: int) -> bool:
        """Whether the stream fault comes halfway through tool call `k`."""
        return self.fault in STREAM_FAULTS and self.fault_after == len(self.chunks) + k


def input_json_pieces(value: dict[str, Any]) -> list[str]:
    """The JSON text of a tool input in the two pieces the fakes stream it in, so that a
    client must join the pieces before it parses them."""
    text = json.dumps(value)
    return [text[: len(text) // 2], text[len(text) // 2 :]]


@dataclass
class Seen:
    body: dict[str, Any]
    headers: dict[str, str]
    started: float
    path: str = ""  # the route called: a fake may answer more than one
    ended: float | None = None
    cancelled: bool = False  # the client closed the connection mid-stream
    finished: asyncio.Event = field(default_factory=asyncio.Event)


# Sends tool call `k` of a script; when the bool is set, only its first half, then returns.
SendTool = Callable[[int, ScriptedToolCall, bool], Awaitable[None]]


class FakeUpstream:
    """A real loopback server that answers one POST route by script, recording each call.

    Subclasses implement `_answer(request, body, script)` in their upstream's wire format
    (and may add routes that answer without a script, recorded through `_record`).
    """

    def __init__(self, path: str) -> None:
        self.url = ""  # set by the fixture that starts the server
        self.scripts: deque[Script] = deque()
        self.default = Script()
        self.seen: list[Seen] = []
        self.arrived = asyncio.Event()  # set at each request
        self.app = web.Application()
        self.app.router.add_post(path, self._handle)

    def script(self, *scripts: Script) -> None:
        self.scripts.extend(scripts)

    @property
    def requests(self) -> int:
        return len(self.seen)

    def _record(self, request: web.Request, body: dict[str, Any]) -> Seen:
        """Keep what a request sent, in arrival order, whichever route it called."""
        seen = Seen(
            body=body, headers=dict(request.headers), started=time.monotonic(), path=request.path
        )
        self.seen.append(seen)
        self.arrived.set()
        return seen

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        seen = self._record(request, body)
        script = self.scripts.popleft() if self.scripts else self.default
        try:
            return await self._answer(request, body, script)
        except asyncio.CancelledError:
            seen.cancelled = True
            raise
        finally:
            seen.ended = time.monotonic()
            seen.finished.set()

    ERROR_EVENT = b""  # an error inside the stream, in the subclass's wire format
    MALFORMED = b""  # a frame the client cannot parse

    async def _answer(
        self, request: web.Request, body: dict[str, Any], script: Script
    ) -> web.StreamResponse:
        raise NotImplementedError

    @staticmethod
    def _failure_headers(script: Script) -> dict[str, str]:
        """Headers of a scripted error status (with its retry-after, if any)."""
        headers = dict(script.headers)
        if script.retry_after is not None:
            headers["retry-after"] = script.retry_after
        return headers

    @staticmethod
    async def _play(script: Script, send_text: Callable[[str], Awaitable[None]]) -> bool:
        """Send the script's text chunks with its timing.  True when its stream fault is due
        (after `fault_after` chunks, or after the last one when the script has no tool
        calls): the caller then plays `_fault` instead of the rest."""
        faulty = script.fault in STREAM_FAULTS
        if script.hold is not None:
            await script.hold.wait()
        if script.first_token_delay:
            await asyncio.sleep(script.first_token_delay)
        for i, text in enumerate(script.chunks):
            if faulty and i == script.fault_after:
                return True
            if i and script.chunk_delay:
                await asyncio.sleep(script.chunk_delay)
            await send_text(text)
        return faulty and not script.tool_calls

    @staticmethod
    async def _play_tools(script: Script, send_tool: SendTool) -> bool:
        """Send the script's tool calls, `chunk_delay` apart.  True when its stream fault is
        due: `send_tool` was told to cut its call short, or every call has been sent."""
        for k, call in enumerate(script.tool_calls):
            if script.chunk_delay and (k or script.chunks):
                await asyncio.sleep(script.chunk_delay)
            cut = script.cuts_tool_call(k)
            await send_tool(k, call, cut)
            if cut:
                return True
        return script.fault in STREAM_FAULTS and bool(script.tool_calls)

    async def _fault(
        self, request: web.Request, response: web.StreamResponse, script: Script
    ) -> web.StreamResponse:
        """The scripted fault, after the stream started."""
        if script.fault in ("error_event", "malformed"):
            await response.write(
                self.ERROR_EVENT if script.fault == "error_event" else self.MALFORMED
            )
            await response.write_eof()
        elif script.fault == "truncate":
            await response.write_eof()
        elif script.fault == "stall":
            await asyncio.sleep(3600)
        elif script.fault == "drop":
            assert request.transport is not None
            request.transport.abort()
        return response
