"""Pushed telemetry: aiops_events, appended by the ingest API and read by id by the push sources.

Was schema version 2.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

from alembic import op

from aiops.store import frozen_tables as frozen
from aiops.store.migrations.existing import create_missing

revision = "0002"
down_revision: str | None = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    create_missing([("aiops_events", frozen.events)])


def downgrade() -> None:
    op.drop_table("aiops_events")
