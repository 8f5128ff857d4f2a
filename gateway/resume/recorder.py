"""Numbers a stream's frames (`id: <stream id>:<seq>`) and writes them to its log.

Writes are batched, not one round trip per frame: the first batch is written before the
client gets the stream's first frame (so a resume that follows at once finds the
stream), later frames at most `interval_s` later or every `batch` frames, and the
terminal frame with whatever is left, awaited.  A log that fails stops the recording
(logged once); the stream itself goes on.

A stop asked on another replica (`StreamLog.stop`) is learnt with each batch, and every
`STOP_CHECK_S` while the stream is silent; `on_stop` then ends the stream.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from gateway.resume.log import StreamLog

log = logging.getLogger(__name__)

BATCH = 64
INTERVAL_S = 0.05
STOP_CHECK_S = 1.0


class Recorder:
    def __init__(
        self,
        stream_log: StreamLog,
        tenant: str,
        stream_id: str,
        on_stop: Callable[[], None],
        interval_s: float = INTERVAL_S,
        batch: int = BATCH,
    ) -> None:
        self.stream_id = stream_id
        self._log = stream_log
        self._tenant = tenant
        self._interval_s = interval_s
        self._batch = batch
        self._prefix = b"id: " + stream_id.encode() + b":"
        self._seq = 0
        self._pending: list[bytes] = []
        self._first_seq = 1  # the seq of _pending[0]
        self._writing = asyncio.Lock()
        self._flushes: set[asyncio.Task[None]] = set()
        self._timer: asyncio.TimerHandle | None = None
        self._broken = False
        self._on_stop = on_stop
        self._watch: asyncio.Task[None] | None = None
        self._finishing: asyncio.Task[None] | None = None
        self._last_write = 0.0
        self.ended = False

    def watch_stops(self) -> None:
        """Look for a stop asked elsewhere while the stream is silent (Redis only: in one
        process a stop reaches the stream directly)."""
        if self._log.kind == "redis" and self._watch is None:
            self._watch = asyncio.ensure_future(self._watch_stops())

    async def _watch_stops(self) -> None:
        loop = asyncio.get_running_loop()
        while not self.ended:
            await asyncio.sleep(STOP_CHECK_S)
            if self.ended or self._broken or loop.time() - self._last_write < STOP_CHECK_S:
                continue
            try:
                asked = await self._log.stop_asked(self._tenant, self.stream_id)
            except Exception:
                continue  # the next batch tries again
            if asked:
                self._on_stop()
                return

    def finish_in_background(self, frame: bytes) -> None:
        """End the log with `frame` from a task of its own (the stream's was cancelled)."""

        async def finish() -> None:
            await self.record(frame, last=True)

        self._finishing = asyncio.ensure_future(finish())  # (kept referenced until done)

    def close(self) -> None:
        """The stream is over (or abandoned): stop watching."""
        if self._watch is not None:
            self._watch.cancel()

    @property
    def seq(self) -> int:
        """The seq of the last frame numbered."""
        return self._seq

    async def record(self, chunk: bytes, last: bool = False) -> bytes:
        """`chunk`'s frames, each with its `id:` line, once they are on their way to the
        log; `last`: the chunk ends the stream, and the whole log is written first."""
        numbered = []
        for frame in _frames(chunk):
            self._seq += 1
            self._pending.append(frame)
            numbered.append(self._prefix + str(self._seq).encode() + b"\n" + frame)
        if last:
            self.ended = True
            await self._drain()
        elif self._seq == len(self._pending):  # the stream's first frames
            await self._flush()
        elif len(self._pending) >= self._batch:
            self._flush_soon(0)
        elif self._timer is None:
            self._flush_soon(self._interval_s)
        return b"".join(numbered)

    async def _drain(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        await self._flush()
        if self._flushes:
            await asyncio.gather(*self._flushes, return_exceptions=True)

    def _flush_soon(self, delay_s: float) -> None:
        def start() -> None:
            self._timer = None
            task = asyncio.ensure_future(self._flush())
            self._flushes.add(task)
            task.add_done_callback(self._flushes.discard)

        if self._timer is not None:
            self._timer.cancel()
        self._timer = asyncio.get_running_loop().call_later(delay_s, start)

    async def _flush(self) -> None:
        async with self._writing:  # batches reach the log in order
            frames, first = self._pending, self._first_seq
            self._pending, self._first_seq = [], first + len(frames)
            if not frames or self._broken:
                return
            last = self.ended and not self._pending
            self._last_write = asyncio.get_running_loop().time()
            try:
                stop = await self._log.append(self._tenant, self.stream_id, first, frames, last)
            except Exception:
                self._broken = True
                log.warning(
                    "stream %s: its event log failed; it cannot be resumed",
                    self.stream_id,
                    exc_info=True,
                )
                return
            if stop and not last:
                self._on_stop()


def _frames(chunk: bytes) -> list[bytes]:
    """The SSE frames of `chunk` (each ends with its blank line; JSON has no raw ones)."""
    return [part + b"\n\n" for part in chunk.split(b"\n\n") if part]
