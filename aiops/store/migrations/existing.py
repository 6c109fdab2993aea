"""What a revision may find already there.

The first four revisions replace hand-written migrations that ran one statement at a time on SQLite, so a
pre-Alembic release interrupted half way through a step can have left some of that step's tables, columns or
indexes behind without recording the step as done. Those revisions create only what is missing. Offline
(``aiops db upgrade --sql``) nothing can be inspected, and the script creates everything.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import sqlalchemy as sa
from alembic import context, op

from aiops.store import frozen_tables as frozen


def _inspector() -> sa.Inspector | None:
    if context.is_offline_mode():
        return None
    return sa.inspect(op.get_bind())


def has_table(name: str) -> bool:
    inspector = _inspector()
    return inspector is not None and inspector.has_table(name)


def has_column(table: str, column: str) -> bool:
    inspector = _inspector()
    return inspector is not None and column in {c["name"] for c in inspector.get_columns(table)}


def has_index(table: str, index: str) -> bool:
    inspector = _inspector()
    return inspector is not None and index in {i["name"] for i in inspector.get_indexes(table)}


def create_missing(tables: Sequence[tuple[str, Callable[[], frozen.Items]]]) -> None:
    """Create each of ``tables`` (name, frozen definition) that is not there yet, in the order given."""
    for name, items in tables:
        if not has_table(name):
            op.create_table(name, *items())
