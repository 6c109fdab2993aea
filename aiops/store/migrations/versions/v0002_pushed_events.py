"""Pushed telemetry: aiops_events, appended by the ingest API and read by id by the push sources.

Was schema version 2.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from aiops.store.migrations.existing import has_table

revision = "0002"
down_revision: str | None = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if has_table("aiops_events"):
        return
    op.create_table(
        "aiops_events",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("stream", sa.String(100), nullable=False),
        sa.Column("kind", sa.String(10), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("ts", sa.Float, nullable=False),
        sa.Column("value", sa.Float),
        sa.Column("labels", sa.JSON, nullable=False),
        sa.Column("data", sa.JSON, nullable=False),
        sa.Column("received_at", sa.Float, nullable=False),
        sa.Index("ix_aiops_events_stream_id", "stream", "id"),
        sa.Index("ix_aiops_events_received_at", "received_at"),
    )


def downgrade() -> None:
    op.drop_table("aiops_events")
