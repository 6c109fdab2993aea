"""Tables of the durable store, as the newest schema revision has them.

SQLAlchemy Core, not the ORM: every write is one explicit statement in one transaction, which is what the
crash-safety arguments (claim with a conditional UPDATE, insert-or-ignore into the outbox) rely on. A change
here needs its Alembic revision in ``aiops/store/migrations/versions/`` (the migrations build the database;
this module only describes it to the queries); a test compares the two.
"""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()

meta = sa.Table(
    "aiops_meta",
    metadata,
    sa.Column("key", sa.String(64), primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
)

incidents = sa.Table(
    "aiops_incidents",
    metadata,
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
    # At most one open incident per fingerprint, enforced by the database: two replicas deciding about the same
    # anomaly at once both try to insert, the second insert conflicts and that replica joins the first's incident.
    sa.Index(
        "uq_aiops_incidents_open_fingerprint",
        "fingerprint",
        unique=True,
        sqlite_where=sa.text("state != 'resolved'"),
        postgresql_where=sa.text("state != 'resolved'"),
    ),
)

transitions = sa.Table(
    "aiops_transitions",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("incident_id", sa.Integer, sa.ForeignKey("aiops_incidents.id"), nullable=False, index=True),
    sa.Column("at", sa.Float, nullable=False),
    sa.Column("from_state", sa.String(20)),
    sa.Column("to_state", sa.String(20), nullable=False),
    sa.Column("actor", sa.String(100), nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("evidence", sa.JSON, nullable=False),
    # the replica and fencing token of the check's lease that wrote the row (none when no lease guarded it)
    sa.Column("written_by", sa.String(200)),
    sa.Column("fence_token", sa.BigInteger),
)

actions = sa.Table(
    "aiops_actions",
    metadata,
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

outbox = sa.Table(
    "aiops_outbox",
    metadata,
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
    # Notification pipeline: the group key of rows waiting for their group's flush, the route's timing (so a
    # reload cannot change how an already queued row is grouped or repeated), the grouped row a member went into.
    sa.Column("group_key", sa.String(300), index=True),
    sa.Column("route", sa.JSON),
    sa.Column("parent_id", sa.Integer),
    # The replica sending the row and until when its claim holds: a row is claimed before it is sent, so two
    # replicas never send it both; a claim of a replica that died before finishing lapses at ``claim_until``.
    sa.Column("claimed_by", sa.String(200)),
    sa.Column("claim_until", sa.Float),
    sa.UniqueConstraint("notifier", "dedup_key", name="uq_outbox_notifier_dedup"),
)

check_state = sa.Table(
    "aiops_check_state",
    metadata,
    sa.Column("check_name", sa.String(100), primary_key=True),
    sa.Column("since", sa.Float),
    sa.Column("detector_state", sa.JSON, nullable=False),
    sa.Column("source_state", sa.JSON, nullable=False),
    sa.Column("updated_at", sa.Float, nullable=False),
    sa.Column("written_by", sa.String(200)),
    sa.Column("fence_token", sa.BigInteger),
)


# Pushed telemetry (``POST /api/v1/ingest``, ``POST /api/v1/alertmanager``): one row per metric point or event,
# appended durably before the HTTP answer, read incrementally by the ``push``/``alertmanager`` sources by id.
events = sa.Table(
    "aiops_events",
    metadata,
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


# -- notification pipeline: silences, notification log, group flush times, flap episodes --------------------
silences = sa.Table(
    "aiops_silences",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("matchers", sa.JSON, nullable=False),  # ["check=latency", "severity=~warn.*"]
    sa.Column("starts_at", sa.Float, nullable=False),
    sa.Column("ends_at", sa.Float, nullable=False, index=True),
    sa.Column("created_by", sa.String(100), nullable=False),
    sa.Column("comment", sa.Text, nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
)

# Notification log: per (notifier, incident) the last firing-type message sent and when to repeat it.
notify_log = sa.Table(
    "aiops_notify_log",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("notifier", sa.String(100), nullable=False),
    sa.Column("incident_id", sa.Integer, nullable=False, index=True),
    sa.Column("dedup_key", sa.String(200), nullable=False),  # of the message being repeated
    sa.Column("repeats", sa.Integer, nullable=False, default=0),
    sa.Column("last_sent_at", sa.Float, nullable=False),
    sa.Column("next_repeat_at", sa.Float, index=True),  # None while a repeat is queued
    sa.UniqueConstraint("notifier", "incident_id", name="uq_notify_log_notifier_incident"),
)

# When each (notifier, group) was last flushed, for group_interval.
notify_groups = sa.Table(
    "aiops_notify_groups",
    metadata,
    sa.Column("notifier", sa.String(100), primary_key=True),
    sa.Column("group_key", sa.String(300), primary_key=True),
    sa.Column("last_flush_at", sa.Float, nullable=False),
)

# Flap episodes: a fingerprint that opened too often is held as flapping with one message.
flaps = sa.Table(
    "aiops_flaps",
    metadata,
    sa.Column("fingerprint", sa.String(64), primary_key=True),
    sa.Column("check_name", sa.String(100), nullable=False),
    sa.Column("started_at", sa.Float, nullable=False),
    sa.Column("last_at", sa.Float, nullable=False),
    sa.Column("ended_at", sa.Float),
    sa.Column("opens", sa.Integer, nullable=False, default=0),
    sa.Column("receivers", sa.JSON, nullable=False),
    sa.Column("payload", sa.JSON, nullable=False),  # the announcement, to derive the closing message
)


# Circuit breakers per action type (issue 6): durable, so a restart does not forget that an action keeps failing.
breakers = sa.Table(
    "aiops_breakers",
    metadata,
    sa.Column("action_type", sa.String(100), primary_key=True),
    sa.Column("state", sa.String(20), nullable=False),  # closed | open | half_open
    sa.Column("failures", sa.Integer, nullable=False, default=0),  # consecutive, incl. "ran but did not heal"
    sa.Column("opened_at", sa.Float),
    sa.Column("trial_action_id", sa.Integer),  # the one action let through while half-open
    sa.Column("last_reason", sa.Text),
    sa.Column("updated_at", sa.Float, nullable=False),
)


# Operators' verdicts: an incident judged useful or noise (its window is the incident's), or a finding that
# should have opened an incident and did not ("missed": no incident exists, so a check and a time window).
# Rows are never updated or deleted: a changed mind is a newer row, and the newest verdict of an incident counts.
verdicts = sa.Table(
    "aiops_verdicts",
    metadata,
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


# Detector state checkpoints: one row per (check, detector, series) in the binary form of
# :mod:`aiops.store.state_codec`, rewritten only when that series changed; ``series`` is "" for a detector
# saved whole. The check's cursor (``since``, source state) stays in ``aiops_check_state``.
series_state = sa.Table(
    "aiops_series_state",
    metadata,
    sa.Column("check_name", sa.String(100), primary_key=True),
    sa.Column("detector", sa.String(100), primary_key=True),
    sa.Column("series", sa.String(1000), primary_key=True),
    sa.Column("state", sa.LargeBinary, nullable=False),
    sa.Column("updated_at", sa.Float, nullable=False),
)


# Replicas of the daemon sharing this store: each registers at start, beats every few seconds and leaves on a
# clean shutdown; a member whose heartbeat is old is presumed gone. ``replica`` is host:pid:process-start.
members = sa.Table(
    "aiops_members",
    metadata,
    sa.Column("replica", sa.String(200), primary_key=True),
    sa.Column("host", sa.String(200), nullable=False),
    sa.Column("pid", sa.Integer, nullable=False),
    sa.Column("started_at", sa.Float, nullable=False),
    sa.Column("heartbeat_at", sa.Float, nullable=False),
    sa.Column("version", sa.String(50), nullable=False),
    sa.Column("address", sa.String(300), nullable=False),
)

# Who runs what: one row per check (kind "check") and per cluster-wide singleton job (kind "singleton"). A
# replica owns the row while ``expires_at`` is in the future; every claim increments ``token`` (the fencing
# token), so a write made under an older token can be told apart from the current owner's and refused.
leases = sa.Table(
    "aiops_leases",
    metadata,
    sa.Column("kind", sa.String(20), primary_key=True),
    sa.Column("name", sa.String(200), primary_key=True),
    sa.Column("owner", sa.String(200)),
    sa.Column("token", sa.BigInteger, nullable=False),
    sa.Column("acquired_at", sa.Float),
    sa.Column("renewed_at", sa.Float),
    sa.Column("expires_at", sa.Float, nullable=False),
)
