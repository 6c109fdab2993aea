"""Operators' verdicts (aiops_verdicts): an incident marked useful or noise, or a missed finding over a window.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

from alembic import op

from aiops.store import frozen_tables as frozen

revision = "0005"
down_revision: str | None = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table("aiops_verdicts", *frozen.verdicts())


def downgrade() -> None:
    op.drop_table("aiops_verdicts")
