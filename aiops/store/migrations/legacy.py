"""Stores made before Alembic: releases that versioned the schema as ``aiops_meta.schema_version = N`` and
migrated with hand-written steps. Each old version is one Alembic revision, so such a store is stamped at its
revision once and upgraded from there like any other.
"""

from __future__ import annotations

import sqlalchemy as sa

from aiops.errors import StoreError

#: schema_version written by a pre-Alembic release -> the revision with the same schema. Complete and frozen:
#: no release will write schema_version again.
LEGACY_REVISIONS: dict[int, str] = {1: "0001", 2: "0002", 3: "0003", 4: "0004"}


def legacy_schema_version(conn: sa.Connection, version_table: str) -> int | None:
    """The pre-Alembic version of the store, or None if it is empty or already under Alembic."""
    inspector = sa.inspect(conn)
    if inspector.has_table(version_table) or not inspector.has_table("aiops_meta"):
        return None
    raw = conn.execute(sa.text("SELECT value FROM aiops_meta WHERE key = 'schema_version'")).scalar()
    if raw is None:
        return None  # an old release stopped before its first step committed: nothing to keep
    try:
        return int(raw)
    except ValueError:
        raise StoreError(f"aiops_meta.schema_version is {raw!r}, not a version number", recoverable=False) from None


def legacy_revision(version: int) -> str:
    """The revision a pre-Alembic store at ``version`` is stamped with."""
    try:
        return LEGACY_REVISIONS[version]
    except KeyError:
        newest = max(LEGACY_REVISIONS)
        raise StoreError(
            f"aiops_meta.schema_version is {version}; the last release before Alembic wrote at most {newest}",
            recoverable=False,
        ) from None
