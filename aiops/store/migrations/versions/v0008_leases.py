"""Check leases: the table of which replica runs which check (and which cluster-wide job), with the fencing
token that every write of a check's decisions is checked against; audit rows and cursors record which
replica and token wrote them.

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision: str | None = "0007"
branch_labels = None
depends_on = None

SIGNED = ("aiops_transitions", "aiops_check_state")  # rows that say which replica and token wrote them


def upgrade() -> None:
    op.create_table(
        "aiops_leases",
        sa.Column("kind", sa.String(20), primary_key=True),
        sa.Column("name", sa.String(200), primary_key=True),
        sa.Column("owner", sa.String(200)),
        sa.Column("token", sa.BigInteger, nullable=False),
        sa.Column("acquired_at", sa.Float),
        sa.Column("renewed_at", sa.Float),
        sa.Column("expires_at", sa.Float, nullable=False),
    )
    for table in SIGNED:
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column("written_by", sa.String(200)))
            batch.add_column(sa.Column("fence_token", sa.BigInteger))


def downgrade() -> None:
    for table in SIGNED:
        with op.batch_alter_table(table) as batch:
            batch.drop_column("fence_token")
            batch.drop_column("written_by")
    op.drop_table("aiops_leases")
