"""Time as a dependency. Policy code never calls ``time.time()`` itself, so a 10-minute flapping scenario
can be tested in milliseconds with :class:`aiops.testing.FakeClock`."""

from __future__ import annotations

import time
from typing import Protocol


class Clock(Protocol):
    def now(self) -> float: ...


class SystemClock:
    """Wall-clock seconds since the epoch."""

    def now(self) -> float:
        return time.time()
