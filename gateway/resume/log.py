"""The interface of a stream's event log, and what its readers may meet."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol


@dataclass(frozen=True, slots=True)
class Event:
    """One SSE frame of a stream (without its `id:` line), numbered from 1."""

    seq: int
    frame: bytes
    last: bool = False  # the stream's terminal event


class StreamGone(Exception):
    """No stream with this id for this tenant: never started, or expired."""


class EventsTrimmed(Exception):
    """The events asked for are no longer kept (more than `max_events` were written)."""


class StreamLog(Protocol):
    kind: str  # "redis" | "memory", for health and the start-up line
    # Its store's own errors: a read that fails with one of them (or OSError) ends a resume
    # with 503.  Declared here so that redis-py is imported only with the Redis log.
    failures: tuple[type[Exception], ...]

    async def create(self, tenant: str, stream_id: str) -> bool:
        """Open a stream's log; False when it cannot be kept (the store is full)."""
        ...

    async def append(
        self, tenant: str, stream_id: str, first_seq: int, frames: Sequence[bytes], last: bool
    ) -> bool:
        """Add `frames`, numbered from `first_seq`; `last`: the final one ends the stream.
        True when a stop was asked for the stream (on another replica: `stop`)."""
        ...

    async def stop(self, tenant: str, stream_id: str) -> bool:
        """Ask the replica running the stream to stop it; False when there is no such
        stream.  (The replica learns it at its next `append` or `stop_asked`.)"""
        ...

    async def stop_asked(self, tenant: str, stream_id: str) -> bool:
        """Whether a stop was asked for the stream, for a stream that is silent."""
        ...

    def follow(self, tenant: str, stream_id: str, after: int) -> AsyncIterator[Event]:
        """Every event after `after`, then the live ones, to the terminal event.  Raises
        `StreamGone` or `EventsTrimmed` before the first event."""
        ...

    async def set_chat(self, tenant: str, chat_id: str, stream_id: str) -> None:
        """Remember `stream_id` as the chat's latest stream (`useChat`'s resume asks)."""
        ...

    async def chat_stream(self, tenant: str, chat_id: str) -> str | None:
        """The chat's stream while it is still running, else None."""
        ...

    def describe(self) -> dict[str, Any]:
        """What the store holds, for health."""
        ...

    async def aclose(self) -> None: ...
