"""Each interval check ticks at its own phase inside its interval, so a replica's checks do not all fire at once.

Why: a check's next tick is due one interval after its previous one, so checks scheduled together (every check
at start, a replica's share after a lease round) stayed in step forever. A thousand checks every second were
then a burst of a thousand runs at the top of each second, queued behind the scheduler's workers: the runs at
the back started late, and those later than half an interval were skipped (counted, reported as
``check_overrun``) even when the replica had time to spare over the whole second. With phases spread over the
interval the same checks arrive as an even stream, and a replica runs as many as its workers can wait on.

The phase comes from the check's name (one of :data:`SLOTS` slots of the interval), so it is the same on
every replica: a check taken over keeps the rhythm it had. A check's first run after it is scheduled still
happens at once (a replica that gains a check runs it without waiting); the next ones fall on its phase.
"""

from __future__ import annotations

import datetime
import math
import zlib
from typing import Final

from apscheduler.triggers.interval import IntervalTrigger

SLOTS: Final = 20  # phases per interval: an even spread, while the scheduler wakes at most this often per interval
_EPSILON: Final = 1e-6  # of an interval: a previous run time read back from a datetime lands on its slot


def slot_of(name: str) -> int:
    """Which of the :data:`SLOTS` slots of its interval check ``name`` ticks in."""
    return zlib.crc32(name.encode()) % SLOTS


def phase_of(name: str, every: float) -> float:
    """Seconds after each multiple of ``every`` (since the epoch) at which check ``name`` ticks."""
    return slot_of(name) * every / SLOTS


class PhasedInterval(IntervalTrigger):  # type: ignore[misc]  # APScheduler 3 ships no type hints
    """An interval trigger whose fire times are ``phase + k * every`` (epoch seconds)."""

    def __init__(self, every: float, phase: float) -> None:
        super().__init__(seconds=every, timezone="UTC")
        self.phase = phase

    def get_next_fire_time(
        self, previous_fire_time: datetime.datetime | None, now: datetime.datetime
    ) -> datetime.datetime:
        every = self.interval_length
        if previous_fire_time is None:  # the first slot at or after now
            slot = math.ceil((now.timestamp() - self.phase) / every - _EPSILON)
        else:  # the first slot after the previous run
            slot = math.floor((previous_fire_time.timestamp() - self.phase) / every + _EPSILON) + 1
        return datetime.datetime.fromtimestamp(self.phase + slot * every, tz=datetime.UTC)

    def __str__(self) -> str:
        return f"interval[{self.interval!s}] at +{self.phase:g}s"
