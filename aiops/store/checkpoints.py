"""Reading and writing detector checkpoints: statements on a connection the caller's transaction owns.

Functions take an ``sa.Connection`` rather than opening their own transaction, so the caller decides what
commits together (and can, later, put a check's cursor into the same commit as the engine's decision).
Series rows are rewritten whole (delete + insert: the same statements on SQLite and PostgreSQL, no
dialect-specific upsert).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from aiops.store import schema as t
from aiops.types import json_safe

WHOLE = ""  # the ``series`` of a detector saved as one state rather than per series
# States per transaction: ~0.9 MB of ``default``. Each transaction holds SQLite's write lock while it writes,
# and an ingest request waits for the one being written (at 32, ~7 MB took 0.1-0.8 s on a busy disk).
BATCH = 4


@dataclass(frozen=True)
class SeriesBlob:
    """One saved state: a series of a per-series detector, or (``series == WHOLE``) a whole detector."""

    detector: str
    series: str
    state: bytes


@dataclass(frozen=True)
class Cursor:
    """Where the check's source stood when the checkpoint was taken: a restart re-reads from here."""

    since: float | None
    source_state: Mapping[str, Any]


_SS = t.series_state
_DELETE = sa.delete(_SS).where(
    _SS.c.check_name == sa.bindparam("c"), _SS.c.detector == sa.bindparam("d"), _SS.c.series == sa.bindparam("s")
)


def write_series(conn: sa.Connection, check: str, blobs: Sequence[SeriesBlob], now: float) -> int:
    """Replace the saved states of ``blobs``; returns how many were written."""
    if not blobs:
        return 0
    conn.execute(_DELETE, [{"c": check, "d": b.detector, "s": b.series} for b in blobs])
    conn.execute(
        sa.insert(_SS),
        [
            {"check_name": check, "detector": b.detector, "series": b.series, "state": b.state, "updated_at": now}
            for b in blobs
        ],
    )
    return len(blobs)


def write_cursor(
    conn: sa.Connection, check: str, cursor: Cursor, now: float, signature: Mapping[str, object] | None = None
) -> None:
    """Commit the source position the series states are consistent with; clears any legacy JSON state.
    ``signature``: the replica and fencing token writing it (see :meth:`aiops.store.store.Store.signature`)."""
    values = json_safe(
        {"since": cursor.since, "detector_state": {}, "source_state": dict(cursor.source_state), "updated_at": now}
    )
    values.update(signature or {})
    cs = t.check_state
    if not conn.execute(sa.update(cs).where(cs.c.check_name == check).values(**values)).rowcount:
        conn.execute(sa.insert(cs).values(check_name=check, **values))


def read_series(conn: sa.Connection, check: str) -> Iterator[SeriesBlob]:
    """Every saved state of ``check``, streamed (a check with 10 000 series holds ~2 GB of them)."""
    query = sa.select(_SS.c.detector, _SS.c.series, _SS.c.state).where(_SS.c.check_name == check)
    for row in conn.execution_options(yield_per=256).execute(query):
        yield SeriesBlob(str(row.detector), str(row.series), bytes(row.state))
