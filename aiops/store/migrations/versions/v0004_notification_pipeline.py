"""Notification pipeline: outbox grouping columns, silences, notification log, group flushes, flap episodes.

The outbox gains its group key, route timing and parent row. Was schema version 4. The columns are added in
batch mode, which on SQLite alters in place when it can (an added column) and copies the table only when it
must.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from aiops.store import frozen_tables as frozen
from aiops.store.migrations.existing import create_missing, has_column, has_index

revision = "0004"
down_revision: str | None = "0003"
branch_labels = None
depends_on = None

_OUTBOX_COLUMNS = (
    ("group_key", sa.String(300)),
    ("route", sa.JSON()),
    ("parent_id", sa.Integer()),
)

#: The pipeline's tables, in creation order (dropped in the reverse order).
TABLES = (
    ("aiops_silences", frozen.silences),
    ("aiops_notify_log", frozen.notify_log),
    ("aiops_notify_groups", frozen.notify_groups),
    ("aiops_flaps", frozen.flaps),
)


def upgrade() -> None:
    missing = [(name, kind) for name, kind in _OUTBOX_COLUMNS if not has_column("aiops_outbox", name)]
    if missing:
        with op.batch_alter_table("aiops_outbox") as batch:
            for name, kind in missing:
                batch.add_column(sa.Column(name, kind))
    if not has_index("aiops_outbox", "ix_aiops_outbox_group_key"):
        op.create_index("ix_aiops_outbox_group_key", "aiops_outbox", ["group_key"])
    create_missing(TABLES)


def downgrade() -> None:
    for name, _items in reversed(TABLES):
        op.drop_table(name)
    op.drop_index("ix_aiops_outbox_group_key", "aiops_outbox")
    with op.batch_alter_table("aiops_outbox") as batch:
        for name, _kind in reversed(_OUTBOX_COLUMNS):
            batch.drop_column(name)
