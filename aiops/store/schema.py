"""Tables of the durable store, as the newest schema revision has them.

SQLAlchemy Core, not the ORM: every write is one explicit statement in one transaction, which is what the
crash-safety arguments (claim with a conditional UPDATE, insert-or-ignore into the outbox) rely on. A change
here needs its Alembic revision in ``aiops/store/migrations/versions/`` (the migrations build the database;
this module only describes it to the queries); a test compares the two.

Each table is its columns as the revision that created it made them (:mod:`aiops.store.frozen_tables`, written
once for the revision and for this module) followed by what later revisions added.
"""

from __future__ import annotations

import sqlalchemy as sa

from aiops.store import frozen_tables as frozen

metadata = sa.MetaData()

meta = sa.Table("aiops_meta", metadata, *frozen.meta())

incidents = sa.Table(
    "aiops_incidents",
    metadata,
    *frozen.incidents(),
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

transitions = sa.Table("aiops_transitions", metadata, *frozen.transitions(), *frozen.signed())

actions = sa.Table("aiops_actions", metadata, *frozen.actions())

outbox = sa.Table(
    "aiops_outbox",
    metadata,
    *frozen.outbox(),
    # Notification pipeline: the group key of rows waiting for their group's flush, the route's timing (so a
    # reload cannot change how an already queued row is grouped or repeated), the grouped row a member went into.
    sa.Column("group_key", sa.String(300), index=True),
    sa.Column("route", sa.JSON),
    sa.Column("parent_id", sa.Integer),
    # The replica sending the row and until when its claim holds: a row is claimed before it is sent, so two
    # replicas never send it both; a claim of a replica that died before finishing lapses at ``claim_until``.
    *frozen.outbox_claims(),
)

check_state = sa.Table("aiops_check_state", metadata, *frozen.check_state(), *frozen.signed())


# Pushed telemetry (``POST /api/v1/ingest``, ``POST /api/v1/alertmanager``): one row per metric point or event,
# appended durably before the HTTP answer, read incrementally by the ``push``/``alertmanager`` sources by id.
events = sa.Table("aiops_events", metadata, *frozen.events())


# -- notification pipeline: silences, notification log, group flush times, flap episodes --------------------
silences = sa.Table("aiops_silences", metadata, *frozen.silences())

# Notification log: per (notifier, incident) the last firing-type message sent and when to repeat it.
notify_log = sa.Table("aiops_notify_log", metadata, *frozen.notify_log())

# When each (notifier, group) was last flushed, for group_interval.
notify_groups = sa.Table("aiops_notify_groups", metadata, *frozen.notify_groups())

# Flap episodes: a fingerprint that opened too often is held as flapping with one message.
flaps = sa.Table("aiops_flaps", metadata, *frozen.flaps())


# Circuit breakers per action type: durable, so a restart does not forget that an action keeps failing.
breakers = sa.Table("aiops_breakers", metadata, *frozen.breakers())


# Operators' verdicts: an incident judged useful or noise (its window is the incident's), or a finding that
# should have opened an incident and did not ("missed": no incident exists, so a check and a time window).
# Rows are never updated or deleted: a changed mind is a newer row, and the newest verdict of an incident counts.
verdicts = sa.Table("aiops_verdicts", metadata, *frozen.verdicts())


# Detector state checkpoints: one row per (check, detector, series) in the binary form of
# :mod:`aiops.store.state_codec`, rewritten only when that series changed; ``series`` is "" for a detector
# saved whole. The check's cursor (``since``, source state) stays in ``aiops_check_state``.
series_state = sa.Table("aiops_series_state", metadata, *frozen.series_state())


# Replicas of the daemon sharing this store: each registers at start, beats every few seconds and leaves on a
# clean shutdown; a member whose heartbeat is old is presumed gone. ``replica`` is host:pid:process-start
# (on Linux followed by @boot-id/start-ticks, see aiops.store.process_identity).
members = sa.Table("aiops_members", metadata, *frozen.members())

# Who runs what: one row per check (kind "check") and per cluster-wide singleton job (kind "singleton"). A
# replica owns the row while ``expires_at`` is in the future; every claim increments ``token`` (the fencing
# token), so a write made under an older token can be told apart from the current owner's and refused.
leases = sa.Table("aiops_leases", metadata, *frozen.leases())
