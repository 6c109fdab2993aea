"""The daemon's SQLite store checkpoints its write-ahead log on a thread of its own, so no request's commit
copies the log into the database file (real SQLite file, real thread)."""

from __future__ import annotations

import time
from pathlib import Path

import sqlalchemy as sa
import structlog

from aiops.store.records import EventKind, PushedEvent
from aiops.store.store import DEFAULT_AUTOCHECKPOINT_PAGES, Store
from aiops.store.wal_checkpoints import BACKSTOP_PAGES, WalCheckpoints


def _autocheckpoint(store: Store) -> int:
    with store.engine.connect() as conn:
        return int(conn.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar() or 0)


def _write_pages(store: Store, megabytes: int) -> None:
    """About ``megabytes`` MB of pushed rows, a megabyte per commit (as ingest requests commit)."""
    for i in range(megabytes):
        data = {"blob": "x" * 1000}
        rows = [PushedEvent("s", EventKind.EVENT, "e", float(i), None, {}, data) for _ in range(1000)]
        store.append_events(rows, float(i))


def test_commits_leave_the_log_to_the_checkpoint_thread(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    store = Store(f"sqlite:///{db}", background_wal_checkpoints=True)
    try:
        store.migrate()
        assert _autocheckpoint(store) == BACKSTOP_PAGES  # a commit checkpoints only past the backstop
        before = db.stat().st_size
        _write_pages(store, 6)  # 1 500 pages: a commit past SQLite's 1 000 would have checkpointed
        deadline = time.monotonic() + 10
        while db.stat().st_size < before + 5_000_000 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert db.stat().st_size >= before + 5_000_000, "the checkpoint thread never copied the log"
    finally:
        store.close()
    assert store._wal_checkpoints is not None and not store._wal_checkpoints._thread.is_alive()


def test_a_short_lived_store_keeps_sqlite_s_own_checkpoints(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path}/s.db")
    try:
        store.migrate()
        assert _autocheckpoint(store) == DEFAULT_AUTOCHECKPOINT_PAGES
        assert store._wal_checkpoints is None
    finally:
        store.close()


def test_a_failing_checkpoint_is_reported_once_and_the_thread_recovers(tmp_path: Path) -> None:
    missing = tmp_path / "not-yet" / "s.db"  # cannot be opened until its directory exists
    checkpoints = WalCheckpoints(str(missing), every=0.02)
    with structlog.testing.capture_logs() as logs:
        checkpoints.start()
        try:
            time.sleep(0.3)  # several failed rounds
            missing.parent.mkdir()
            engine = sa.create_engine(f"sqlite:///{missing}")
            with engine.begin() as conn:
                conn.exec_driver_sql("PRAGMA journal_mode=WAL")
                conn.exec_driver_sql("CREATE TABLE t (x)")
            deadline = time.monotonic() + 10
            while not any(e["event"] == "WAL checkpoints resumed" for e in logs) and time.monotonic() < deadline:
                time.sleep(0.02)
            engine.dispose()
        finally:
            checkpoints.stop()
    events = [e["event"] for e in logs]
    assert events.count("WAL checkpoint failed; commits checkpoint past the backstop") == 1
    assert events.count("WAL checkpoints resumed") == 1
