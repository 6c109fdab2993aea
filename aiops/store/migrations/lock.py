"""One migrating process at a time: replicas started together on an empty database must not all create the
same tables (PostgreSQL answers the losers with ``DuplicateTable`` / ``UniqueViolation``).

The lock lives in the database, so it covers processes on different hosts and is released by the database
when its holder dies: PostgreSQL's transaction-level advisory lock, SQLite's write lock taken up front with
``BEGIN IMMEDIATE``. Everything a migration does (adopting a pre-Alembic store, every revision, the version
row) runs inside that one transaction, so a waiting process sees the schema either before or after, never half
way, and then finds nothing left to do.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

import sqlalchemy as sa

#: The PostgreSQL advisory-lock key: the first 8 bytes of sha256(b"aiops.store.migrate"), as a signed bigint.
#: Fixed forever, so that every release of aiops waits for every other.
ADVISORY_LOCK_KEY = -7_659_172_704_226_641_118

# stdlib logging, not structlog's default printer: CLI commands migrate too, and their stdout is their output.
# The daemon's logging setup renders these records like its own.
log = logging.getLogger("aiops.store.migrations")


@contextmanager
def migration_transaction(engine: sa.Engine) -> Iterator[sa.Connection]:
    """A connection in a transaction that holds the store's migration lock; committed on a clean exit."""
    with engine.connect() as conn:
        dialect = conn.dialect.name
        if dialect == "postgresql":
            got = conn.execute(sa.text("SELECT pg_try_advisory_xact_lock(:key)"), {"key": ADVISORY_LOCK_KEY}).scalar()
            if not got:
                log.info("store_migration_waiting", extra={"reason": "another process is migrating the store"})
                conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": ADVISORY_LOCK_KEY})
        elif dialect == "sqlite":
            # pysqlite would begin lazily at the first write; IMMEDIATE takes the write lock now (waiting up to
            # the connection's busy timeout), so no other process reads the schema until this one commits.
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        yield conn
        conn.commit()
