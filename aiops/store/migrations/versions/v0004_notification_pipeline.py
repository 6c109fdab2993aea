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

from aiops.store.migrations.existing import has_column, has_index, has_table

revision = "0004"
down_revision: str | None = "0003"
branch_labels = None
depends_on = None

_OUTBOX_COLUMNS = (
    ("group_key", sa.String(300)),
    ("route", sa.JSON()),
    ("parent_id", sa.Integer()),
)


def upgrade() -> None:
    missing = [(name, kind) for name, kind in _OUTBOX_COLUMNS if not has_column("aiops_outbox", name)]
    if missing:
        with op.batch_alter_table("aiops_outbox") as batch:
            for name, kind in missing:
                batch.add_column(sa.Column(name, kind))
    if not has_index("aiops_outbox", "ix_aiops_outbox_group_key"):
        op.create_index("ix_aiops_outbox_group_key", "aiops_outbox", ["group_key"])
    if not has_table("aiops_silences"):
        op.create_table(
            "aiops_silences",
            sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
            sa.Column("matchers", sa.JSON, nullable=False),
            sa.Column("starts_at", sa.Float, nullable=False),
            sa.Column("ends_at", sa.Float, nullable=False, index=True),
            sa.Column("created_by", sa.String(100), nullable=False),
            sa.Column("comment", sa.Text, nullable=False),
            sa.Column("created_at", sa.Float, nullable=False),
        )
    if not has_table("aiops_notify_log"):
        op.create_table(
            "aiops_notify_log",
            sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
            sa.Column("notifier", sa.String(100), nullable=False),
            sa.Column("incident_id", sa.Integer, nullable=False, index=True),
            sa.Column("dedup_key", sa.String(200), nullable=False),
            sa.Column("repeats", sa.Integer, nullable=False),
            sa.Column("last_sent_at", sa.Float, nullable=False),
            sa.Column("next_repeat_at", sa.Float, index=True),
            sa.UniqueConstraint("notifier", "incident_id", name="uq_notify_log_notifier_incident"),
        )
    if not has_table("aiops_notify_groups"):
        op.create_table(
            "aiops_notify_groups",
            sa.Column("notifier", sa.String(100), primary_key=True),
            sa.Column("group_key", sa.String(300), primary_key=True),
            sa.Column("last_flush_at", sa.Float, nullable=False),
        )
    if not has_table("aiops_flaps"):
        op.create_table(
            "aiops_flaps",
            sa.Column("fingerprint", sa.String(64), primary_key=True),
            sa.Column("check_name", sa.String(100), nullable=False),
            sa.Column("started_at", sa.Float, nullable=False),
            sa.Column("last_at", sa.Float, nullable=False),
            sa.Column("ended_at", sa.Float),
            sa.Column("opens", sa.Integer, nullable=False),
            sa.Column("receivers", sa.JSON, nullable=False),
            sa.Column("payload", sa.JSON, nullable=False),
        )


def downgrade() -> None:
    for table in ("aiops_flaps", "aiops_notify_groups", "aiops_notify_log", "aiops_silences"):
        op.drop_table(table)
    op.drop_index("ix_aiops_outbox_group_key", "aiops_outbox")
    with op.batch_alter_table("aiops_outbox") as batch:
        for name, _kind in reversed(_OUTBOX_COLUMNS):
            batch.drop_column(name)
