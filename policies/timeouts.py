"""Per-target time limits on one attempt: first token, idle gap between deltas, total.

A time-out cancels the upstream read (closing its connection) and raises
`UpstreamTimeout`, which the retry step may retry while no text was sent.  Time the
client takes to read is not counted: only waits on the upstream are bounded.

One timer per attempt, not one per delta: each delta only moves a deadline (a float);
the timer, when it goes off early, re-arms itself for the moved deadline.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator
from contextlib import aclosing

from policies.base import Call, Handler
from policies.settings import TimeoutSettings
from providers.base import Delta
from providers.errors import UpstreamTimeout


class Timeouts:
    async def __call__(self, call: Call, call_next: Handler) -> AsyncGenerator[Delta, None]:
        target = call.current_target
        task = asyncio.current_task()
        assert task is not None
        guard = _Deadline(task, target.timeouts)
        try:
            async with aclosing(call_next(call)) as stream:
                while True:
                    guard.waiting = True
                    try:
                        delta = await anext(stream)
                    except StopAsyncIteration:
                        return
                    except asyncio.CancelledError:
                        if guard.expired and task.uncancel() == 0:
                            raise UpstreamTimeout(
                                f"The upstream model '{target.model}' timed out waiting "
                                f"for {guard.what}.",
                                provider=target.provider.name,
                            ) from None
                        raise
                    finally:
                        guard.waiting = False
                    guard.next_gap()
                    yield delta
        finally:
            guard.stop()


class _Deadline:
    """Cancels `task` when it has waited on the upstream past the current deadline."""

    def __init__(self, task: asyncio.Task[object], limits: TimeoutSettings) -> None:
        self._loop = asyncio.get_running_loop()
        self._task = task
        self._idle_s = limits.idle_s
        now = self._loop.time()
        self._end = now + limits.total_s
        self.deadline = min(now + limits.first_token_s, self._end)
        self.what = "the first token" if self.deadline < self._end else "the whole answer"
        self.waiting = False
        self.expired = False
        self._timer: asyncio.TimerHandle | None = None
        self._arm(self.deadline)

    def next_gap(self) -> None:
        now = self._loop.time()
        self.deadline = min(now + self._idle_s, self._end)
        self.what = "the next chunk" if self.deadline < self._end else "the whole answer"
        if self._timer is not None and self.deadline < self._timer_at:
            self._timer.cancel()  # only after the first token, when idle_s < first_token_s
            self._arm(self.deadline)

    def _arm(self, when: float) -> None:
        self._timer_at = when
        self._timer = self._loop.call_at(when, self._check)

    def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _check(self) -> None:
        now = self._loop.time()
        if now >= self.deadline and self.waiting:
            self.expired = True
            self._timer = None
            self._task.cancel()
        else:
            # moved since the timer was set, or the client is reading: look again later
            self._arm(max(self.deadline, now + self._idle_s / 10))
