"""One lock per key (an incident's fingerprint), created on first use and dropped when nobody holds it.

Why not one lock for the daemon: a decision about one incident must not interleave with another decision
about the *same* incident (a check tick, an action finishing, the sweeper, a person's click), but it has no
reason to wait for decisions about other incidents. Locks are always taken before the store's unit of work
opens, never inside it, so a thread never waits for a lock while holding the database's write lock.

>>> locks = KeyedLocks()
>>> with locks.hold("a"):
...     len(locks)
1
>>> len(locks)
0
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager


class KeyedLocks:
    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._locks: dict[str, tuple[threading.RLock, int]] = {}

    @contextmanager
    def hold(self, key: str) -> Iterator[None]:
        """Hold the lock of ``key`` (re-entrant in one thread)."""
        with self._guard:
            lock, users = self._locks.get(key) or (threading.RLock(), 0)
            self._locks[key] = (lock, users + 1)
        try:
            with lock:
                yield
        finally:
            with self._guard:
                lock, users = self._locks[key]
                if users <= 1:
                    del self._locks[key]
                else:
                    self._locks[key] = (lock, users - 1)

    def __len__(self) -> int:
        with self._guard:
            return len(self._locks)
