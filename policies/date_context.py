"""Tell the model the current date and time by adding it to the system prompt.

Models do not know today's date; answers about "now" go wrong without it.  On by default
(`server.date_context.enabled`), in UTC unless a zone is configured.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Callable
from datetime import datetime
from zoneinfo import ZoneInfo

from policies.base import Call, Handler
from providers.base import Delta


def date_context_line(now: datetime) -> str:
    return f"Current date and time: {now:%A, %d %B %Y, %H:%M} {now.tzname()}."


def add_date_context(system: str | None, now: datetime) -> str:
    line = date_context_line(now)
    return f"{system}\n\n{line}" if system else line


class DateContext:
    def __init__(self, timezone: str = "UTC", clock: Callable[[ZoneInfo], datetime] | None = None):
        self._zone = ZoneInfo(timezone)
        self._clock = clock or (lambda zone: datetime.now(zone))

    def __call__(self, call: Call, call_next: Handler) -> AsyncGenerator[Delta, None]:
        if not call.date_context:  # a route whose clients send their own system prompts
            return call_next(call)
        system = add_date_context(call.request.system, self._clock(self._zone))
        return call_next(call.with_request(call.request.with_system(system)))
