"""What a fake upstream does for one request (`Script`) and what it saw (`Seen`)."""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from aiohttp import web

Fault = Literal["error_event", "drop", "malformed", "stall", "truncate", "thinking"]
STREAM_FAULTS = {"error_event", "drop", "malformed", "stall", "truncate"}  # end the stream


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
    fault_after: int = 0  # chunks sent before the fault
    headers: dict[str, str] = field(default_factory=dict)
    input_tokens: int = 11
    stop_reason: str = "end_turn"
    hold: asyncio.Event | None = None  # the first token waits until the test sets it


@dataclass
class Seen:
    body: dict[str, Any]
    headers: dict[str, str]
    started: float
    ended: float | None = None
    cancelled: bool = False  # the client closed the connection mid-stream
    finished: asyncio.Event = field(default_factory=asyncio.Event)


class FakeUpstream:
    """A real loopback server that answers one POST route by script, recording each call.

    Subclasses implement `_answer(request, body, script)` in their upstream's wire format.
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

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        seen = Seen(body=body, headers=dict(request.headers), started=time.monotonic())
        self.seen.append(seen)
        self.arrived.set()
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
        (after `fault_after` chunks): the caller then plays `_fault` instead of the end."""
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
        return faulty

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
