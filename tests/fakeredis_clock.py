"""A clock for fakeredis that a test sets, so script and expiry tests never sleep.

fakeredis offers no clock of its own to inject (its issue tracker points to freezegun or
time-machine, which replace `time.time` for the whole process, asyncio and pytest
included).  It reads the wall clock with `time.time()` in three modules (fakeredis 2.40,
2.41):

- `fakeredis._socket._base`: before each command, `db.time = time.time()`; every expiry
  (SET PX, PEXPIRE, PTTL, dropping a key whose time is up) is measured against `db.time`.
  Commands inside one Lua script share the time set when the script started, as in Redis;
- `fakeredis.commands_mixins.server_mixin`: the TIME command, which our Lua scripts call;
- `fakeredis._helpers.current_time`: hash-field and set-member expiry.

`FakeRedisClock` replaces the name `time` in those three modules only, with a stand-in
whose `time()` returns the clock and which passes every other attribute (`monotonic`,
`sleep`, ...) to the real module: the rest of the process keeps real time.  The clock
stands still until `advance` moves it.  A blocking command with a time-out (BLPOP ...)
would therefore never time out; the limiter sends none.

If a fakeredis upgrade no longer reads the clock through these names, the constructor
fails; if it reads it somewhere new, tests/test_fakeredis_clock.py fails.  Either way,
update CLOCK_READERS and the list above.  Undone at the end of the test by `monkeypatch`.
"""

from __future__ import annotations

import importlib
import time
from typing import Any

import pytest

CLOCK_READERS = (
    "fakeredis._socket._base",
    "fakeredis.commands_mixins.server_mixin",
    "fakeredis._helpers",
)


class FakeRedisClock:
    def __init__(self, monkeypatch: pytest.MonkeyPatch, start_ms: int) -> None:
        self.now_ms = start_ms
        stand_in = _TimeModule(self)
        for name in CLOCK_READERS:
            try:
                module = importlib.import_module(name)
            except ModuleNotFoundError:
                module = None
            if getattr(module, "time", None) is not time:
                raise RuntimeError(
                    f"this fakeredis does not read the clock through {name}.time "
                    "(the layout is that of fakeredis 2.40 and later): "
                    "update CLOCK_READERS in tests/fakeredis_clock.py"
                )
            monkeypatch.setattr(module, "time", stand_in)

    def advance(self, ms: int) -> None:
        """Move the clock forward by `ms` milliseconds; keys whose time is up expire."""
        if ms < 0:
            raise ValueError("the clock only moves forward")
        self.now_ms += ms


class _TimeModule:
    """The `time` module, except that `time()` is the fake clock's."""

    def __init__(self, clock: FakeRedisClock) -> None:
        self._clock = clock

    def time(self) -> float:
        return self._clock.now_ms / 1000

    def __getattr__(self, name: str) -> Any:
        return getattr(time, name)
