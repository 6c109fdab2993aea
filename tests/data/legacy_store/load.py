"""Recreate the pre-Alembic fixture store (``sqlite.sql`` / ``postgresql.sql``, written by ``generate.py`` with
the old release's code) in an empty database, for the upgrade tests."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import sqlalchemy as sa

HERE = Path(__file__).resolve().parent

#: What the fixture holds, as the old release wrote it (see generate.py).
INCIDENTS = {1: ("fp-latency", "resolved"), 2: ("fp-drift", "firing"), 3: ("fp-volume", "pending")}
ACTIONS = {1: ("1:0:rollback", "succeeded"), 2: ("2:0:rollback", "awaiting_approval")}
OUTBOX = {1: ("1:firing", "sent"), 2: ("1:resolved", "pending"), 3: ("2:firing", "pending")}


def load_legacy_store(url: str) -> None:
    """Fill the empty database at ``url`` (SQLite file or PostgreSQL database) with the fixture."""
    parsed = sa.make_url(url)
    if parsed.get_backend_name() == "sqlite":
        conn = sqlite3.connect(str(parsed.database))
        try:
            conn.executescript((HERE / "sqlite.sql").read_text())
        finally:
            conn.close()
        return
    import psycopg

    dsn = parsed.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute((HERE / "postgresql.sql").read_text().encode())  # bytes: a script of many statements
