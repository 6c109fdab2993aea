"""Circuit breakers per action type (aiops_breakers), durable so a restart remembers a failing action.

Was schema version 3.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from aiops.store.migrations.existing import has_table

revision = "0003"
down_revision: str | None = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if has_table("aiops_breakers"):
        return
    op.create_table(
        "aiops_breakers",
        sa.Column("action_type", sa.String(100), primary_key=True),
        sa.Column("state", sa.String(20), nullable=False),
        sa.Column("failures", sa.Integer, nullable=False),
        sa.Column("opened_at", sa.Float),
        sa.Column("trial_action_id", sa.Integer),
        sa.Column("last_reason", sa.Text),
        sa.Column("updated_at", sa.Float, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("aiops_breakers")
