"""Each table's columns as the Alembic revision that created it made them (and columns a later revision added):
frozen history, written once for the revision and for :mod:`aiops.store.schema`.

Why frozen: a revision must create exactly what its version had, whatever is added later, so nothing here is
ever edited. A schema change is a new revision that alters the table (``op.add_column``, ...); the schema module
then adds the change after the frozen columns (as it adds the open-fingerprint index to ``aiops_incidents``),
or spells the table out itself if the change replaces a column defined here.

Each function returns new objects on every call: a column belongs to one table, and the revision and the schema
module each build their own. ``default=`` is SQLAlchemy's insert-time value, never part of the DDL, so it does
not change what a revision creates.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

Items = tuple[sa.schema.SchemaItem, ...]
Columns = tuple[sa.Column[Any], ...]


# -- revision 0001 (the pre-Alembic schema version 1) ---------------------------------------------------------


def meta() -> Items:
    return (
        sa.Column("key", sa.String(64), primary_key=True),
        sa.Column("value", sa.Text, nullable=False),
    )


def incidents() -> Items:
    return (
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
        sa.Column("rung", sa.Integer, nullable=False, default=0),
        sa.Column("attempts", sa.Integer, nullable=False, default=0),
        sa.Column("verify_started_at", sa.Float),
        sa.Column("verify_deadline", sa.Float),
        sa.Column("healthy_ticks", sa.Integer, nullable=False, default=0),
        sa.Column("acknowledged_by", sa.String(100)),
        sa.Column("silenced_until", sa.Float),
        sa.Column("guard_note", sa.Text),
        sa.Column("notified_firing", sa.Boolean, nullable=False, default=False),
    )


def transitions() -> Items:
    return (
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("incident_id", sa.Integer, sa.ForeignKey("aiops_incidents.id"), nullable=False, index=True),
        sa.Column("at", sa.Float, nullable=False),
        sa.Column("from_state", sa.String(20)),
        sa.Column("to_state", sa.String(20), nullable=False),
        sa.Column("actor", sa.String(100), nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("evidence", sa.JSON, nullable=False),
    )


def actions() -> Items:
    return (
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
        sa.Column("runs", sa.Integer, nullable=False, default=0),
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


def outbox() -> Items:
    return (
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("notifier", sa.String(100), nullable=False),
        sa.Column("dedup_key", sa.String(200), nullable=False),
        sa.Column("incident_id", sa.Integer, sa.ForeignKey("aiops_incidents.id"), index=True),
        sa.Column("event", sa.String(30), nullable=False),
        sa.Column("payload", sa.JSON, nullable=False),
        sa.Column("state", sa.String(20), nullable=False, index=True),
        sa.Column("attempts", sa.Integer, nullable=False, default=0),
        sa.Column("next_attempt_at", sa.Float, nullable=False),
        sa.Column("last_error", sa.Text),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("sent_at", sa.Float),
        sa.UniqueConstraint("notifier", "dedup_key", name="uq_outbox_notifier_dedup"),
    )


def check_state() -> Items:
    return (
        sa.Column("check_name", sa.String(100), primary_key=True),
        sa.Column("since", sa.Float),
        sa.Column("detector_state", sa.JSON, nullable=False),
        sa.Column("source_state", sa.JSON, nullable=False),
        sa.Column("updated_at", sa.Float, nullable=False),
    )


# -- revision 0002: pushed telemetry ---------------------------------------------------------------------------


def events() -> Items:
    return (
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("stream", sa.String(100), nullable=False),
        sa.Column("kind", sa.String(10), nullable=False),  # point | event
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("ts", sa.Float, nullable=False),
        sa.Column("value", sa.Float),
        sa.Column("labels", sa.JSON, nullable=False),
        sa.Column("data", sa.JSON, nullable=False),
        sa.Column("received_at", sa.Float, nullable=False),
        sa.Index("ix_aiops_events_stream_id", "stream", "id"),
        sa.Index("ix_aiops_events_received_at", "received_at"),
    )


# -- revision 0003: circuit breakers ---------------------------------------------------------------------------


def breakers() -> Items:
    return (
        sa.Column("action_type", sa.String(100), primary_key=True),
        sa.Column("state", sa.String(20), nullable=False),  # closed | open | half_open
        sa.Column("failures", sa.Integer, nullable=False, default=0),  # consecutive, incl. "ran but did not heal"
        sa.Column("opened_at", sa.Float),
        sa.Column("trial_action_id", sa.Integer),  # the one action let through while half-open
        sa.Column("last_reason", sa.Text),
        sa.Column("updated_at", sa.Float, nullable=False),
    )


# -- revision 0004: the notification pipeline ------------------------------------------------------------------


def silences() -> Items:
    return (
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("matchers", sa.JSON, nullable=False),  # ["check=latency", "severity=~warn.*"]
        sa.Column("starts_at", sa.Float, nullable=False),
        sa.Column("ends_at", sa.Float, nullable=False, index=True),
        sa.Column("created_by", sa.String(100), nullable=False),
        sa.Column("comment", sa.Text, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
    )


def notify_log() -> Items:
    return (
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("notifier", sa.String(100), nullable=False),
        sa.Column("incident_id", sa.Integer, nullable=False, index=True),
        sa.Column("dedup_key", sa.String(200), nullable=False),  # of the message being repeated
        sa.Column("repeats", sa.Integer, nullable=False, default=0),
        sa.Column("last_sent_at", sa.Float, nullable=False),
        sa.Column("next_repeat_at", sa.Float, index=True),  # None while a repeat is queued
        sa.UniqueConstraint("notifier", "incident_id", name="uq_notify_log_notifier_incident"),
    )


def notify_groups() -> Items:
    return (
        sa.Column("notifier", sa.String(100), primary_key=True),
        sa.Column("group_key", sa.String(300), primary_key=True),
        sa.Column("last_flush_at", sa.Float, nullable=False),
    )


def flaps() -> Items:
    return (
        sa.Column("fingerprint", sa.String(64), primary_key=True),
        sa.Column("check_name", sa.String(100), nullable=False),
        sa.Column("started_at", sa.Float, nullable=False),
        sa.Column("last_at", sa.Float, nullable=False),
        sa.Column("ended_at", sa.Float),
        sa.Column("opens", sa.Integer, nullable=False, default=0),
        sa.Column("receivers", sa.JSON, nullable=False),
        sa.Column("payload", sa.JSON, nullable=False),  # the announcement, to derive the closing message
    )


# -- revision 0005: operators' verdicts ------------------------------------------------------------------------


def verdicts() -> Items:
    return (
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("incident_id", sa.Integer, sa.ForeignKey("aiops_incidents.id"), index=True),  # None when missed
        sa.Column("check_name", sa.String(100), nullable=False, index=True),
        sa.Column("fingerprint", sa.String(64)),
        sa.Column("verdict", sa.String(10), nullable=False),  # useful | noise | missed
        sa.Column("starts_at", sa.Float, nullable=False),
        sa.Column("ends_at", sa.Float, nullable=False),
        sa.Column("comment", sa.Text, nullable=False),
        sa.Column("actor", sa.String(100), nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
    )


# -- revision 0006: detector state per series ------------------------------------------------------------------


def series_state() -> Items:
    return (
        sa.Column("check_name", sa.String(100), primary_key=True),
        sa.Column("detector", sa.String(100), primary_key=True),
        sa.Column("series", sa.String(1000), primary_key=True),
        sa.Column("state", sa.LargeBinary, nullable=False),
        sa.Column("updated_at", sa.Float, nullable=False),
    )


# -- revision 0007: replicas on one store ----------------------------------------------------------------------


def outbox_claims() -> Columns:
    """Added to ``aiops_outbox``: the replica sending the row and until when its claim holds."""
    return (
        sa.Column("claimed_by", sa.String(200)),
        sa.Column("claim_until", sa.Float),
    )


def members() -> Items:
    return (
        sa.Column("replica", sa.String(200), primary_key=True),
        sa.Column("host", sa.String(200), nullable=False),
        sa.Column("pid", sa.Integer, nullable=False),
        sa.Column("started_at", sa.Float, nullable=False),
        sa.Column("heartbeat_at", sa.Float, nullable=False),
        sa.Column("version", sa.String(50), nullable=False),
        sa.Column("address", sa.String(300), nullable=False),
    )


# -- revision 0008: leases and fencing tokens ------------------------------------------------------------------


def leases() -> Items:
    return (
        sa.Column("kind", sa.String(20), primary_key=True),
        sa.Column("name", sa.String(200), primary_key=True),
        sa.Column("owner", sa.String(200)),
        sa.Column("token", sa.BigInteger, nullable=False),
        sa.Column("acquired_at", sa.Float),
        sa.Column("renewed_at", sa.Float),
        sa.Column("expires_at", sa.Float, nullable=False),
    )


def signed() -> Columns:
    """Added to ``aiops_transitions`` and ``aiops_check_state``: the replica and fencing token of the check's
    lease that wrote the row (none when no lease guarded it)."""
    return (
        sa.Column("written_by", sa.String(200)),
        sa.Column("fence_token", sa.BigInteger),
    )
