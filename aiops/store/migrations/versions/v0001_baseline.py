"""Baseline: incidents, audit trail, action ledger, outbox and check state (pre-Alembic schema version 1).

A store stamped ``aiops_meta.schema_version = 1`` by an older release is at this revision. Like every revision,
this file spells its tables out instead of reusing ``aiops.store.schema``: that module describes the newest
schema, and a revision must create exactly what its version had, whatever is added later.

Revision ID: 0001
Revises: none
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from aiops.store.migrations.existing import has_table

revision = "0001"
down_revision: str | None = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    if not has_table("aiops_meta"):
        op.create_table(
            "aiops_meta",
            sa.Column("key", sa.String(64), primary_key=True),
            sa.Column("value", sa.Text, nullable=False),
        )
    if not has_table("aiops_incidents"):
        op.create_table(
            "aiops_incidents",
            sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
            sa.Column("fingerprint", sa.String(64), nullable=False, index=True),
            sa.Column("check_name", sa.String(100), nullable=False, index=True),
            sa.Column("labels", sa.JSON, nullable=False),
            sa.Column("state", sa.String(20), nullable=False, index=True),
            sa.Column("severity", sa.String(10), nullable=False),
            sa.Column("kind", sa.String(40), nullable=False),
            sa.Column("summary", sa.Text, nullable=False),
            sa.Column("evidence", sa.JSON, nullable=False),
            sa.Column("opened_at", sa.Float, nullable=False),
            sa.Column("updated_at", sa.Float, nullable=False),
            sa.Column("firing_at", sa.Float),
            sa.Column("resolved_at", sa.Float),
            sa.Column("last_seen_at", sa.Float, nullable=False),
            sa.Column("rung", sa.Integer, nullable=False),
            sa.Column("attempts", sa.Integer, nullable=False),
            sa.Column("verify_started_at", sa.Float),
            sa.Column("verify_deadline", sa.Float),
            sa.Column("healthy_ticks", sa.Integer, nullable=False),
            sa.Column("acknowledged_by", sa.String(100)),
            sa.Column("silenced_until", sa.Float),
            sa.Column("guard_note", sa.Text),
            sa.Column("notified_firing", sa.Boolean, nullable=False),
        )
    if not has_table("aiops_transitions"):
        op.create_table(
            "aiops_transitions",
            sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
            sa.Column("incident_id", sa.Integer, sa.ForeignKey("aiops_incidents.id"), nullable=False, index=True),
            sa.Column("at", sa.Float, nullable=False),
            sa.Column("from_state", sa.String(20)),
            sa.Column("to_state", sa.String(20), nullable=False),
            sa.Column("actor", sa.String(100), nullable=False),
            sa.Column("reason", sa.Text, nullable=False),
            sa.Column("evidence", sa.JSON, nullable=False),
        )
    if not has_table("aiops_actions"):
        op.create_table(
            "aiops_actions",
            sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
            sa.Column("idempotency_key", sa.String(200), nullable=False, unique=True),
            sa.Column("incident_id", sa.Integer, sa.ForeignKey("aiops_incidents.id"), nullable=False, index=True),
            sa.Column("check_name", sa.String(100), nullable=False),
            sa.Column("rung", sa.Integer, nullable=False),
            sa.Column("action_type", sa.String(100), nullable=False),
            sa.Column("action_label", sa.String(100), nullable=False),
            sa.Column("mode", sa.String(20), nullable=False),
            sa.Column("target", sa.String(300), nullable=False, index=True),
            sa.Column("plan", sa.JSON, nullable=False),
            sa.Column("state", sa.String(30), nullable=False, index=True),
            sa.Column("runs", sa.Integer, nullable=False),
            sa.Column("lease_owner", sa.String(200)),
            sa.Column("lease_expires", sa.Float),
            sa.Column("handle", sa.JSON),
            sa.Column("created_at", sa.Float, nullable=False),
            sa.Column("updated_at", sa.Float, nullable=False),
            sa.Column("started_at", sa.Float),
            sa.Column("finished_at", sa.Float),
            sa.Column("deadline", sa.Float),
            sa.Column("approval_deadline", sa.Float),
            sa.Column("decided_by", sa.String(100)),
            sa.Column("guard", sa.Text),
            sa.Column("outcome", sa.JSON),
            sa.Column("error", sa.Text),
        )
    if not has_table("aiops_outbox"):
        op.create_table(
            "aiops_outbox",
            sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
            sa.Column("notifier", sa.String(100), nullable=False),
            sa.Column("dedup_key", sa.String(200), nullable=False),
            sa.Column("incident_id", sa.Integer, sa.ForeignKey("aiops_incidents.id"), index=True),
            sa.Column("event", sa.String(30), nullable=False),
            sa.Column("payload", sa.JSON, nullable=False),
            sa.Column("state", sa.String(20), nullable=False, index=True),
            sa.Column("attempts", sa.Integer, nullable=False),
            sa.Column("next_attempt_at", sa.Float, nullable=False),
            sa.Column("last_error", sa.Text),
            sa.Column("created_at", sa.Float, nullable=False),
            sa.Column("sent_at", sa.Float),
            sa.UniqueConstraint("notifier", "dedup_key", name="uq_outbox_notifier_dedup"),
        )
    if not has_table("aiops_check_state"):
        op.create_table(
            "aiops_check_state",
            sa.Column("check_name", sa.String(100), primary_key=True),
            sa.Column("since", sa.Float),
            sa.Column("detector_state", sa.JSON, nullable=False),
            sa.Column("source_state", sa.JSON, nullable=False),
            sa.Column("updated_at", sa.Float, nullable=False),
        )


def downgrade() -> None:
    for table in ("aiops_check_state", "aiops_outbox", "aiops_actions", "aiops_transitions", "aiops_incidents"):
        op.drop_table(table)
    op.drop_table("aiops_meta")
