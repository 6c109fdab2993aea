"""Detector state checkpoints (aiops_series_state): one binary row per (check, detector, series), rewritten
only when that series changed, so a checkpoint costs what changed rather than every state as JSON.

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

from alembic import op

from aiops.store import frozen_tables as frozen

revision = "0006"
down_revision: str | None = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table("aiops_series_state", *frozen.series_state())


def downgrade() -> None:
    op.drop_table("aiops_series_state")
