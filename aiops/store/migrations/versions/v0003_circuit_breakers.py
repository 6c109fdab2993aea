"""Circuit breakers per action type (aiops_breakers), durable so a restart remembers a failing action.

Was schema version 3.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

from alembic import op

from aiops.store import frozen_tables as frozen
from aiops.store.migrations.existing import create_missing

revision = "0003"
down_revision: str | None = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    create_missing([("aiops_breakers", frozen.breakers)])


def downgrade() -> None:
    op.drop_table("aiops_breakers")
