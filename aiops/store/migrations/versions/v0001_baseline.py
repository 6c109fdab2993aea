"""Baseline: incidents, audit trail, action ledger, outbox and check state (pre-Alembic schema version 1).

A store stamped ``aiops_meta.schema_version = 1`` by an older release is at this revision. Like every revision,
this file creates its tables from :mod:`aiops.store.frozen_tables`, never from ``aiops.store.schema``: that
module describes the newest schema, and a revision must create exactly what its version had, whatever is added
later.

Revision ID: 0001
Revises: none
"""

from __future__ import annotations

from alembic import op

from aiops.store import frozen_tables as frozen
from aiops.store.migrations.existing import create_missing

revision = "0001"
down_revision: str | None = None
branch_labels = None
depends_on = None


#: The tables of schema version 1, in creation order (dropped in the reverse order).
TABLES = (
    ("aiops_meta", frozen.meta),
    ("aiops_incidents", frozen.incidents),
    ("aiops_transitions", frozen.transitions),
    ("aiops_actions", frozen.actions),
    ("aiops_outbox", frozen.outbox),
    ("aiops_check_state", frozen.check_state),
)


def upgrade() -> None:
    create_missing(TABLES)


def downgrade() -> None:
    for name, _items in reversed(TABLES):
        op.drop_table(name)
