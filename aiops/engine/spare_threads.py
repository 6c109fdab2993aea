"""Threads for check collections, kept after a call for the next one instead of started anew each tick.

Why not a fixed pool: a collection runs on a thread of its own so that a hung source can be abandoned (its
tick times out and the check carries on); a fixed pool would be drained by a few hung sources. Here a call
takes a spare thread if one waits, else starts one; a thread whose call returns waits for the next call,
unless :data:`KEEP` spare threads already wait, then it ends. A hung call keeps only its own thread.

Why not one new thread per call: starting a thread costs a handshake with it (``Thread.start`` waits until
it runs), and with hundreds of ticks a second that was a tenth of the daemon's CPU.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from typing import Final

KEEP: Final = 64  # spare threads kept waiting (a replica has at most its scheduler's workers collecting at once)


class SpareThreads:
    """Runs each call on a spare thread (or a new one); thread-safe."""

    def __init__(self, keep: int = KEEP, name: str = "collect") -> None:
        self.keep = keep
        self.name = name
        self._spare: list[queue.SimpleQueue[Callable[[], None]]] = []
        self._lock = threading.Lock()
        self._started = 0

    def run(self, call: Callable[[], None]) -> None:
        """Start ``call`` on another thread and return at once (``call`` reports its own outcome)."""
        with self._lock:
            inbox = self._spare.pop() if self._spare else None
            if inbox is None:
                self._started += 1
                number = self._started
        if inbox is not None:
            inbox.put(call)
            return
        inbox = queue.SimpleQueue()
        inbox.put(call)
        threading.Thread(target=self._serve, args=(inbox,), name=f"{self.name}-{number}", daemon=True).start()

    def _serve(self, inbox: queue.SimpleQueue[Callable[[], None]]) -> None:
        while True:
            inbox.get()()  # calls handle their own errors (one that raises ends only this thread)
            with self._lock:
                if len(self._spare) >= self.keep:
                    return
                self._spare.append(inbox)

    @property
    def spare(self) -> int:
        """Threads waiting for a call now."""
        with self._lock:
            return len(self._spare)
