"""Time as a dependency, so domain code and its tests never read the real clock.

Domain functions take a ``Clock``; tests pass ``FakeClock`` and move it by hand.
"""

from __future__ import annotations

import time
from typing import Protocol


class Clock(Protocol):
    def now(self) -> float:
        """Seconds since the Unix epoch (UTC), as a float."""
        ...


class SystemClock:
    def now(self) -> float:
        return time.time()


class FakeClock:
    def __init__(self, start: float = 1_800_000_000.0) -> None:
        self._now = start

    def now(self) -> float:
        return self._now

    def advance(self, secs: float) -> None:
        self._now += secs


def to_ms(t: float) -> int:
    return int(t * 1000)
