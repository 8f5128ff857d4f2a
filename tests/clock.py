"""Time that moves only when a test moves it."""

from __future__ import annotations

from gateway.state import Clock


class FakeClock:
    """Both of the app's clocks (`gateway.state.Clock`), standing still until `advance`."""

    def __init__(self, start: float = 1_800_000_000.0) -> None:
        self.now = start  # seconds; a fixed day, so day boundaries are where a test puts them

    def time(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds

    @property
    def clock(self) -> Clock:
        return Clock(wall=self.time, monotonic=self.time)
