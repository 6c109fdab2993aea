"""Which of this process's writers goes first when both want SQLite's single write lock.

Why: a checkpoint round of a big check writes hundreds of megabytes of detector state, slice after slice,
for up to a quarter of the check's interval, and each slice's transaction re-takes the write lock the moment
the previous one commits. SQLite's lock is not a queue: an ingest request that found it taken sleeps in
SQLite's busy handler (1, 2, 5 ... 100 ms steps) and, on waking, mostly finds the next slice holding it. So
the request, whose client is waiting and whose rows must be committed before it is answered, waited behind
seconds of background writing. With this gate, a background writer that could wait (a checkpoint) steps
aside before each transaction while a request's write is pending; the request then waits for at most the
one slice already being written.

Only within one process: another process (a replica, the CLI) on the same file still meets SQLite's own
locking. The background side waits a bounded time, so a steady stream of requests slows checkpoints down
(a round then spans more ticks, which is safe) but never stops them.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager


class WritePriority:
    """Pending urgent writes (ingest) that deferrable writers (checkpoints) let go first."""

    def __init__(self) -> None:
        self._idle = threading.Condition()
        self._pending = 0

    @contextmanager
    def urgent(self) -> Iterator[None]:
        """Mark a write whose caller is waiting, from before it asks for the lock until it has committed."""
        with self._idle:
            self._pending += 1
        try:
            yield
        finally:
            with self._idle:
                self._pending -= 1
                if not self._pending:
                    self._idle.notify_all()

    def let_urgent_go_first(self, timeout: float) -> bool:
        """Wait (at most ``timeout`` seconds) until no urgent write is pending; False if it timed out.

        Call it only outside any transaction of one's own: the urgent writer may be waiting for that lock.
        """
        with self._idle:
            return self._idle.wait_for(lambda: not self._pending, timeout)
