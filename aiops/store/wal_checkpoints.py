"""SQLite's WAL checkpoints on a thread of their own, so a request's commit never copies the log.

Why: by default SQLite checkpoints inside the commit that grows the write-ahead log past 1 000 pages: that
commit copies the log into the database file and syncs it before it returns. In the daemon that commit
was whichever came next, often an ingest request's (whose client is waiting): 16-77 ms added to about one
request in twenty while detector state was being written. A passive checkpoint here, every second, on a
connection of its own, does the same copy without holding the write lock: writers and readers go on
meanwhile, and the commit is only the append to the log.

The commits keep a backstop: with this thread stalled or failing (a full disk, a read-only file), the
commit that grows the log past :data:`BACKSTOP_PAGES` checkpoints as before, so the log stays bounded.
Only the daemon runs this thread; short-lived commands keep SQLite's default.
"""

from __future__ import annotations

import sqlite3
import threading
from typing import Final

import structlog

log = structlog.get_logger(__name__)

#: The log's size (pages, 4 KiB each by default: 64 MiB) past which a commit checkpoints by itself.
BACKSTOP_PAGES: Final = 16_384
#: Seconds between passive checkpoints.
EVERY: Final = 1.0


class WalCheckpoints:
    """A daemon thread running ``PRAGMA wal_checkpoint(PASSIVE)`` on ``path`` every :data:`EVERY` seconds."""

    def __init__(self, path: str, every: float = EVERY) -> None:
        self.path = path
        self.every = every
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="aiops-wal-checkpoints", daemon=True)
        self._failing = False

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(10)

    def _run(self) -> None:
        conn: sqlite3.Connection | None = None
        try:
            while not self._stop.wait(self.every):
                try:
                    if conn is None:
                        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
                    conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                    if self._failing:
                        log.info("WAL checkpoints resumed", store=self.path)
                    self._failing = False
                except sqlite3.Error as exc:
                    # A fault of the file (read-only, disk full) is the store's to report (readiness); here
                    # it is said once, and commits checkpoint by themselves past the backstop meanwhile.
                    if not self._failing:
                        log.warning("WAL checkpoint failed; commits checkpoint past the backstop", error=str(exc))
                    self._failing = True
                    if conn is not None:
                        conn.close()
                    conn = None  # a connection opened while the fault lasted may stay broken: open anew
        finally:
            if conn is not None:
                conn.close()
