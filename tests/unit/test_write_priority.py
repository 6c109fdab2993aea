"""An ingest write goes before checkpoint slices for SQLite's single write lock (real store, real threads)."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from aiops.store.checkpoints import SeriesBlob
from aiops.store.records import EventKind, PushedEvent
from aiops.store.store import Store
from aiops.store.write_priority import WritePriority


def test_a_checkpoint_slice_waits_while_an_ingest_write_is_pending(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path}/s.db")
    store.migrate()
    saved = threading.Event()

    def checkpoint() -> None:
        store.save_checkpoint("c", [SeriesBlob("d", "s", b"state")], None, 1.0)
        saved.set()

    with store._write_priority.urgent():  # an ingest request between "wants the lock" and "committed"
        writer = threading.Thread(target=checkpoint)
        writer.start()
        assert not saved.wait(0.2), "the checkpoint slice took the lock while an ingest write was pending"
        assert store.append_events([PushedEvent("s", EventKind.POINT, "m", 1.0, 2.0, {}, {})], 1.0) == [1]
    assert saved.wait(10), "the checkpoint slice did not go on once the ingest write committed"
    writer.join(10)
    assert [blob.series for blob in store.iter_checkpoint("c")] == ["s"]
    store.engine.dispose()


def test_a_steady_stream_of_urgent_writes_delays_the_deferrable_writer_but_never_stops_it() -> None:
    gate = WritePriority()
    assert gate.let_urgent_go_first(0.0)  # nothing pending: no wait
    with gate.urgent():
        started = time.monotonic()
        assert not gate.let_urgent_go_first(0.1)  # timed out: the writer goes on anyway
        assert time.monotonic() - started >= 0.1
        with gate.urgent():  # nested urgent writes (two requests at once) count separately
            pass
        assert not gate.let_urgent_go_first(0.0)
    assert gate.let_urgent_go_first(0.0)
