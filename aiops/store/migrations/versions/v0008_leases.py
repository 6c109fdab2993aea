"""Check leases: the table of which replica runs which check (and which cluster-wide job), with the fencing
token that every write of a check's decisions is checked against; audit rows and cursors record which
replica and token wrote them.

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

from alembic import op

from aiops.store import frozen_tables as frozen

revision = "0008"
down_revision: str | None = "0007"
branch_labels = None
depends_on = None

SIGNED = ("aiops_transitions", "aiops_check_state")  # rows that say which replica and token wrote them


def upgrade() -> None:
    op.create_table("aiops_leases", *frozen.leases())
    for table in SIGNED:
        with op.batch_alter_table(table) as batch:
            for column in frozen.signed():
                batch.add_column(column)


def downgrade() -> None:
    for table in SIGNED:
        with op.batch_alter_table(table) as batch:
            batch.drop_column("fence_token")
            batch.drop_column("written_by")
    op.drop_table("aiops_leases")
