"""Replicas on one store: one open incident per fingerprint, outbox rows claimed before they are sent, and the
members table (aiops_members) of the replicas sharing the store.

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import context, op

from aiops.store import frozen_tables as frozen
from aiops.store.migrations.existing import has_table

revision = "0007"
down_revision: str | None = "0006"
branch_labels = None
depends_on = None

OPEN = sa.text("state != 'resolved'")
DUPLICATE_REASON = "duplicate of an older open incident of the same fingerprint (upgrade to revision 0006)"


def upgrade() -> None:
    # A store adopted from a pre-Alembic release that never made the incident tables has nothing to index.
    if context.is_offline_mode() or has_table("aiops_incidents"):
        _resolve_duplicate_open_incidents()
        op.create_index(
            "uq_aiops_incidents_open_fingerprint",
            "aiops_incidents",
            ["fingerprint"],
            unique=True,
            sqlite_where=OPEN,
            postgresql_where=OPEN,
        )
    with op.batch_alter_table("aiops_outbox") as batch:
        for column in frozen.outbox_claims():
            batch.add_column(column)
    op.create_table("aiops_members", *frozen.members())


def _resolve_duplicate_open_incidents() -> None:
    """A store written by replicas before this revision may hold several open incidents of one fingerprint;
    the unique index needs one, so the oldest stays open and the younger ones are resolved, with an audit row
    saying why (they were the same anomaly counted twice). Plain SQL, so the offline script does it too."""
    empty_json = "'{}'::json" if op.get_context().dialect.name == "postgresql" else "'{}'"
    duplicate = (
        "i.state != 'resolved' AND EXISTS (SELECT 1 FROM aiops_incidents o WHERE o.fingerprint = i.fingerprint "
        "AND o.state != 'resolved' AND o.id < i.id)"
    )
    op.execute(
        "INSERT INTO aiops_transitions (incident_id, at, from_state, to_state, actor, reason, evidence) "
        f"SELECT i.id, i.updated_at, i.state, 'resolved', 'system', '{DUPLICATE_REASON}', {empty_json} "
        f"FROM aiops_incidents i WHERE {duplicate}"
    )
    op.execute(
        f"UPDATE aiops_incidents SET state = 'resolved', resolved_at = updated_at WHERE id IN "
        f"(SELECT i.id FROM aiops_incidents i WHERE {duplicate})"
    )


def downgrade() -> None:
    op.drop_table("aiops_members")
    with op.batch_alter_table("aiops_outbox") as batch:
        batch.drop_column("claim_until")
        batch.drop_column("claimed_by")
    op.drop_index("uq_aiops_incidents_open_fingerprint", table_name="aiops_incidents")
