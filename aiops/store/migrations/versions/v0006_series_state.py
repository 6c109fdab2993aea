"""Detector state checkpoints (aiops_series_state): one binary row per (check, detector, series), rewritten
only when that series changed, so a checkpoint costs what changed rather than every state as JSON.

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision: str | None = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "aiops_series_state",
        sa.Column("check_name", sa.String(100), primary_key=True),
        sa.Column("detector", sa.String(100), primary_key=True),
        sa.Column("series", sa.String(1000), primary_key=True),
        sa.Column("state", sa.LargeBinary, nullable=False),
        sa.Column("updated_at", sa.Float, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("aiops_series_state")
