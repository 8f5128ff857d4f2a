"""Stream logs in this process, for a gateway without Redis (one replica).

Bounded three ways, so that a flood of abandoned streams cannot exhaust memory: each
stream keeps its last `max_events`; a finished stream is dropped `ttl_s` after it ended;
and all streams together hold at most `max_total_events`: finished streams go first,
oldest first, and when only running ones are left a new stream is not kept (it streams
on, without `X-Stream-ID`) and a running one keeps only its newest events.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict, deque
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from gateway.resume.log import Event, EventsTrimmed, StreamGone


@dataclass(slots=True)
class _Kept:
    frames: deque[bytes]
    first_seq: int = 1  # the seq of frames[0]
    ended: bool = False
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def next_seq(self) -> int:
        return self.first_seq + len(self.frames)

    def wake(self) -> None:
        """Wake the followers waiting now; later ones wait on a fresh event."""
        self.changed.set()
        self.changed = asyncio.Event()


class MemoryStreamLog:
    kind = "memory"
    failures: tuple[type[Exception], ...] = ()

    def __init__(
        self,
        ttl_s: float,
        max_events: int,
        max_total_events: int,
        monotonic: Callable[[], float],
    ) -> None:
        self._ttl_s = ttl_s
        self._max_events = max_events
        self._max_total = max_total_events
        self._now = monotonic
        self._streams: dict[tuple[str, str], _Kept] = {}
        self._ended: OrderedDict[tuple[str, str], float] = OrderedDict()  # → when it ended
        self._total = 0
        self._bytes = 0
        self._chats: dict[tuple[str, str], str] = {}  # useChat's chat id → its last stream

    async def create(self, tenant: str, stream_id: str) -> bool:
        self._drop_expired()
        while self._total >= self._max_total and self._ended:
            self._drop(next(iter(self._ended)))
        return self._total < self._max_total  # (kept from its first event on)

    async def append(
        self, tenant: str, stream_id: str, first_seq: int, frames: Sequence[bytes], last: bool
    ) -> bool:
        kept = self._streams.get((tenant, stream_id))
        if kept is None:
            kept = self._streams[(tenant, stream_id)] = _Kept(deque(maxlen=self._max_events))
        elif kept.ended:
            return False
        for frame in frames:
            while self._total >= self._max_total and self._ended:
                self._drop(next(iter(self._ended)))
            if len(kept.frames) == kept.frames.maxlen or self._total >= self._max_total:
                self._bytes -= len(kept.frames.popleft())  # the oldest falls out
                kept.first_seq += 1
                self._total -= 1
            kept.frames.append(frame)
            self._total += 1
            self._bytes += len(frame)
        if last:
            kept.ended = True
            self._ended[(tenant, stream_id)] = self._now()
        kept.wake()
        return False  # one process: a stop reaches the stream directly

    async def stop(self, tenant: str, stream_id: str) -> bool:
        self._drop_expired()
        return (tenant, stream_id) in self._streams

    async def stop_asked(self, tenant: str, stream_id: str) -> bool:
        return False

    async def follow(self, tenant: str, stream_id: str, after: int) -> AsyncIterator[Event]:
        self._drop_expired()
        kept = self._streams.get((tenant, stream_id))
        if kept is None:
            raise StreamGone()
        if after + 1 < kept.first_seq:
            raise EventsTrimmed()
        seq = after + 1
        while True:
            while seq < kept.next_seq:
                if seq < kept.first_seq:
                    raise EventsTrimmed()  # fell out while the reader was slow
                last = kept.ended and seq == kept.next_seq - 1
                yield Event(seq, kept.frames[seq - kept.first_seq], last)
                if last:
                    return
                seq += 1
            if kept.ended:
                return
            await kept.changed.wait()

    async def set_chat(self, tenant: str, chat_id: str, stream_id: str) -> None:
        self._chats[(tenant, chat_id)] = stream_id
        if len(self._chats) > self._max_total:  # (bounded like the events)
            del self._chats[next(iter(self._chats))]

    async def chat_stream(self, tenant: str, chat_id: str) -> str | None:
        stream_id = self._chats.get((tenant, chat_id))
        kept = self._streams.get((tenant, stream_id)) if stream_id else None
        return stream_id if kept is not None and not kept.ended else None

    def describe(self) -> dict[str, Any]:
        return {
            "store": self.kind,
            "streams": len(self._streams),
            "events": self._total,
            "bytes": self._bytes,
            "max_events": self._max_total,
        }

    async def aclose(self) -> None:
        return None

    def _drop_expired(self) -> None:
        now = self._now()
        while self._ended:
            key, ended_at = next(iter(self._ended.items()))
            if now - ended_at < self._ttl_s:
                return
            self._drop(key)

    def _drop(self, key: tuple[str, str]) -> None:
        self._ended.pop(key, None)
        kept = self._streams.pop(key, None)
        if kept is not None:
            self._total -= len(kept.frames)
            self._bytes -= sum(len(frame) for frame in kept.frames)
