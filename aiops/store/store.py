"""The durable store: incidents and their audit trail, the action ledger, the notification outbox, and the
per-check state that lets a restarted daemon carry on where it stopped.

SQLite (WAL) by default, PostgreSQL by URL; the same statements run on both. Methods return the typed
records of :mod:`aiops.store.records`, so nothing above this module depends on SQLAlchemy or on a column's
spelling.

Unit of work: every method runs in its own transaction, unless the calling thread opened one with
:meth:`Store.transaction`; then every method called inside joins it, and the whole decision (an incident's
transition, its audit row, its ledger and outbox rows) commits together or not at all. Why an ambient scope
rather than passing a connection around: the engine composes decisions from many small store calls, and a
crash between any two of them must not leave half a decision behind.
"""

from __future__ import annotations

import contextvars
import itertools
import json
import os
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, Final, TypeVar

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from aiops.errors import LeaseLost, StoreError
from aiops.store import checkpoints, migrations
from aiops.store import schema as t
from aiops.store.process_identity import BootIdentity, current_boot, identity_of, start_ticks
from aiops.store.records import (
    Action,
    Breaker,
    CheckState,
    FlapEpisode,
    Incident,
    JsonObject,
    NotificationState,
    OutboxMessage,
    PushedEvent,
    RepeatLog,
    Silence,
    StoredEvent,
    Transition,
    column_names,
)
from aiops.store.wal_checkpoints import BACKSTOP_PAGES, WalCheckpoints
from aiops.store.write_priority import WritePriority
from aiops.types import ActionState, IncidentState, json_safe

R = TypeVar("R")  # a typed record read from a row

Row = dict[str, Any]
#: SQLite's own default: a commit that grows the WAL past this many pages checkpoints it.
DEFAULT_AUTOCHECKPOINT_PAGES: Final = 1000
POOL_SIZE = 5  # connections kept open on a server database (SQLAlchemy's default); the daemon asks for more
OPEN_STATES = [s.value for s in IncidentState if s.is_open]

#: SQLite errors after which a pooled connection must not be reused: a connection opened while the file was
#: read-only stays read-only for good, and one that saw an I/O error may hold a broken file handle.
# How long a checkpoint slice waits for pending ingest writes before taking the lock anyway (a steady stream
# of requests slows a round down, never stops it).
CHECKPOINT_YIELD_S = 0.5
_SQLITE_BROKEN = ("readonly database", "disk i/o error", "database or disk is full", "unable to open database")


@dataclass(frozen=True)
class Fence:
    """A lease (``kind``, ``name``) as held with fencing token ``token``: what a fenced write carries."""

    kind: str
    name: str
    token: int
    owner: str

    def signature(self) -> dict[str, str | int]:
        """The columns that record who wrote a row under this lease."""
        return {"written_by": self.owner, "fence_token": self.token}


def _check_fence(conn: sa.Connection, fence: Fence) -> None:
    current = conn.execute(
        sa.select(t.leases.c.token)
        .where(t.leases.c.kind == fence.kind, t.leases.c.name == fence.name)
        .with_for_update(read=True, key_share=True)
    ).scalar()
    if current is not None and int(current) > fence.token:
        raise LeaseLost(
            f"{fence.kind} {fence.name}: lease taken over (fencing token {current} > {fence.token}); write refused"
        )


def _normalise_url(url: str) -> str:
    if url.startswith(("postgres://", "postgresql://")):
        return "postgresql+psycopg://" + url.split("://", 1)[1]
    return url


class Store:
    """One handle on the database; thread-safe (a connection per transaction from the pool)."""

    def __init__(self, url: str, *, connections: int = POOL_SIZE, background_wal_checkpoints: bool = False) -> None:
        """``background_wal_checkpoints``: a SQLite file's WAL is checkpointed by a thread of this store's
        (:mod:`aiops.store.wal_checkpoints`), not by whichever commit fills it; for the long-running daemon."""
        self.url = _normalise_url(url)
        kwargs: dict[str, Any] = {"future": True}
        self._wal_checkpoints: WalCheckpoints | None = None
        if self.url.startswith("sqlite"):
            path = self.url.split("///", 1)[-1]
            if path and path != ":memory:" and not path.startswith("file:"):
                Path(path).parent.mkdir(parents=True, exist_ok=True)
                database = sa.make_url(self.url).database
                if background_wal_checkpoints and database:
                    self._wal_checkpoints = WalCheckpoints(database)
            kwargs["connect_args"] = {"check_same_thread": False, "timeout": 30}
        else:
            kwargs["pool_pre_ping"] = True
            # Every thread that ticks a check may hold a connection at once: with fewer pooled, the extra ones
            # were opened and closed on every tick (a new PostgreSQL backend each, on both sides' CPU).
            # No overflow beyond them: replicas x connections must stay under the server's max_connections
            # (100 by default), and a burst of actions waits for a pooled connection instead of opening more.
            kwargs["pool_size"] = connections
            kwargs["max_overflow"] = 0
        try:
            self.engine = sa.create_engine(self.url, **kwargs)
        except (SQLAlchemyError, ImportError, ValueError) as exc:
            raise StoreError(f"cannot open store {self.redacted_url}: {exc}", recoverable=False) from exc
        if self.engine.dialect.name == "sqlite":
            autocheckpoint = BACKSTOP_PAGES if self._wal_checkpoints is not None else DEFAULT_AUTOCHECKPOINT_PAGES
            sa.event.listen(self.engine, "connect", partial(_sqlite_pragmas, autocheckpoint=autocheckpoint))
            sa.event.listen(self.engine, "handle_error", _discard_broken_sqlite_connection)
        self._write_priority = WritePriority()  # ingest before checkpoint slices, for the write lock
        # The connection of the unit of work open in this thread (contextvars are per thread).
        self._current: contextvars.ContextVar[sa.Connection | None] = contextvars.ContextVar(
            f"aiops_store_tx_{id(self)}", default=None
        )
        # The lease whose fencing token every unit of work of this thread is checked against (see fenced()).
        self._fence: contextvars.ContextVar[Fence | None] = contextvars.ContextVar(
            f"aiops_store_fence_{id(self)}", default=None
        )
        if self._wal_checkpoints is not None:
            self._wal_checkpoints.start()

    @property
    def redacted_url(self) -> str:
        return sa.make_url(self.url).render_as_string(hide_password=True)

    def _all(self, record: Callable[[Mapping[str, object]], R], query: sa.Select[Any]) -> list[R]:
        """Every row of ``query`` as a typed record."""
        with self.tx() as conn:
            return [record(dict(r._mapping)) for r in conn.execute(query)]

    def _first(self, record: Callable[[Mapping[str, object]], R], query: sa.Select[Any]) -> R | None:
        """The first row of ``query`` as a typed record, None when there is none."""
        with self.tx() as conn:
            row = conn.execute(query).first()
        return record(dict(row._mapping)) if row else None

    def _count(self, query: sa.Select[Any]) -> int:
        """The number a ``count()`` query gives."""
        with self.tx() as conn:
            return int(conn.execute(query).scalar() or 0)

    def _changed(self, statement: sa.Update | sa.Delete) -> int:
        """How many rows one UPDATE or DELETE changed."""
        with self.tx() as conn:
            return int(conn.execute(statement).rowcount)

    @contextmanager
    def tx(self) -> Iterator[sa.Connection]:
        """A connection in a transaction: the thread's open unit of work, else a new one committed on exit."""
        current = self._current.get()
        if current is not None:
            yield current
            return
        with self.transaction() as conn:
            yield conn

    @contextmanager
    def transaction(self) -> Iterator[sa.Connection]:
        """The unit of work: every store call of this thread inside the block is one transaction, committed
        when the block ends normally and rolled back when it raises. Nested blocks join the outer one."""
        current = self._current.get()
        if current is not None:
            yield current
            return
        try:
            with self.engine.begin() as conn:
                fence = self._fence.get()
                if fence is not None:
                    _check_fence(conn, fence)
                token = self._current.set(conn)
                try:
                    yield conn
                finally:
                    self._current.reset(token)
        except IntegrityError:
            raise
        except SQLAlchemyError as exc:
            raise StoreError(f"store {self.redacted_url}: {exc.__class__.__name__}: {exc}") from exc

    @contextmanager
    def fenced(self, fence: Fence | None) -> Iterator[None]:
        """Every unit of work this thread opens inside the block first checks ``fence``'s lease row and raises
        :class:`~aiops.errors.LeaseLost` (committing nothing) when a newer fencing token exists.

        Why at the start of each transaction, with a share lock on the lease row: on PostgreSQL the lock holds
        until the commit, and a replica claiming the lease (``FOR UPDATE SKIP LOCKED``) skips a locked row, so
        a claim can never slip between the check and the writes it guards. The lock is ``FOR KEY SHARE``, the
        weakest that a claim's ``FOR UPDATE`` conflicts with, so the holder's own renewals (plain updates)
        never wait for its ticks. ``None`` fences nothing.
        """
        token = self._fence.set(fence)
        try:
            yield
        finally:
            self._fence.reset(token)

    @property
    def fence(self) -> Fence | None:
        """The fence this thread's units of work are checked against now (see :meth:`fenced`), if any."""
        return self._fence.get()

    @property
    def in_transaction(self) -> bool:
        return self._current.get() is not None

    # -- lifecycle -------------------------------------------------------------------------------------

    def migrate(self) -> str:
        """Bring the schema to the newest Alembic revision (adopting a store made before Alembic), serialised
        with every other process migrating the same store; returns the revision."""
        return ",".join(migrations.upgrade(self.engine))

    def schema_revision(self) -> str:
        """The Alembic revision the store is at ("" for an empty store); changes nothing."""
        return ",".join(migrations.status(self.engine).current)

    def ping(self) -> bool:
        try:
            with self.tx() as conn:
                conn.execute(sa.text("SELECT 1"))
            return True
        except StoreError:
            return False

    def probe_write(self, now: float) -> str | None:
        """None when the store accepts a write, else why not. Readiness must prove writes: a read-only
        file or a full disk still answers ``SELECT 1``, yet the daemon can record nothing."""
        try:
            self.set_flag("ready_probe", repr(now))
        except StoreError as exc:
            return str(exc)
        return None

    def close(self) -> None:
        if self._wal_checkpoints is not None:
            self._wal_checkpoints.stop()
        self.engine.dispose()

    # -- meta flags ------------------------------------------------------------------------------------

    @staticmethod
    def _set_meta(conn: sa.Connection, key: str, value: str) -> None:
        _update_or_insert(conn, t.meta, {"key": key}, {"value": value})

    def set_flag(self, key: str, value: str) -> None:
        with self.tx() as conn:
            self._set_meta(conn, key, value)

    def get_flag(self, key: str, default: str = "") -> str:
        with self.tx() as conn:
            value = conn.execute(sa.select(t.meta.c.value).where(t.meta.c.key == key)).scalar()
        return str(value) if value is not None else default

    # -- incidents -------------------------------------------------------------------------------------

    def open_incident(self, fingerprint: str) -> Incident | None:
        return self._first(
            Incident.from_row,
            sa.select(t.incidents)
            .where(t.incidents.c.fingerprint == fingerprint, t.incidents.c.state.in_(OPEN_STATES))
            .order_by(t.incidents.c.id.desc())
            .limit(1),
        )

    def last_incident(self, fingerprint: str) -> Incident | None:
        """The newest incident of a fingerprint, whatever its state."""
        return self._first(
            Incident.from_row,
            sa.select(t.incidents)
            .where(t.incidents.c.fingerprint == fingerprint)
            .order_by(t.incidents.c.id.desc())
            .limit(1),
        )

    def create_incident(self, values: Mapping[str, object], actor: str, reason: str) -> Incident:
        """Insert an incident (every column but ``id``) and its first audit row, in one transaction."""
        data = _incident_values(values)
        with self.tx() as conn:
            incident_id = _inserted_id(conn.execute(sa.insert(t.incidents).values(**data)))
            self._opened(conn, incident_id, data, actor, reason, self.signature())
            row = conn.execute(sa.select(t.incidents).where(t.incidents.c.id == incident_id)).one()
        return Incident.from_row(dict(row._mapping))

    def create_incident_once(self, values: Mapping[str, object], actor: str, reason: str) -> Incident | None:
        """Open an incident unless its fingerprint already has an open one (the database's unique index on
        open fingerprints decides, so two replicas racing both get one answer); None when another one won,
        and the caller joins that incident (:meth:`open_incident`)."""
        data = _incident_values(values)
        with self.tx() as conn:
            if not self.insert_or_ignore(conn, t.incidents, data):
                return None
            row = conn.execute(
                sa.select(t.incidents)
                .where(t.incidents.c.fingerprint == data["fingerprint"], t.incidents.c.state.in_(OPEN_STATES))
                .order_by(t.incidents.c.id.desc())
                .limit(1)
            ).one()
            self._opened(conn, int(row.id), data, actor, reason, self.signature())
        return Incident.from_row(dict(row._mapping))

    @staticmethod
    def _opened(
        conn: sa.Connection,
        incident_id: int,
        data: Mapping[str, Any],
        actor: str,
        reason: str,
        signature: Mapping[str, Any],
    ) -> None:
        """The audit row of an incident's opening."""
        conn.execute(
            sa.insert(t.transitions).values(
                incident_id=incident_id,
                at=data["opened_at"],
                from_state=None,
                to_state=data["state"],
                actor=actor,
                reason=reason,
                evidence=data.get("evidence", {}),
                **signature,
            )
        )

    def signature(self) -> dict[str, str | int]:
        """Which replica and fencing token write in this thread (see :meth:`fenced`); empty when unfenced."""
        fence = self._fence.get()
        return fence.signature() if fence is not None else {}

    def update_incident(
        self,
        incident_id: int,
        values: Mapping[str, object],
        *,
        transition: tuple[IncidentState | str, str, str, Mapping[str, object]] | None = None,
        now: float,
    ) -> Incident:
        """Update the named fields; with ``transition=(to_state, actor, reason, evidence)`` also write the
        audit row. Both happen in one transaction, so the trail never disagrees with the state.

        Only the named fields are written (not the whole record), so a caller holding an older copy of the
        incident cannot undo a field it did not mean to change.
        """
        data = _incident_values(values)
        data["updated_at"] = now
        with self.tx() as conn:
            current = conn.execute(sa.select(t.incidents).where(t.incidents.c.id == incident_id)).first()
            if current is None:
                raise StoreError(f"no incident {incident_id}", recoverable=False, reason="not_found")
            if transition is not None:
                to_state, actor, reason, evidence = transition
                data["state"] = IncidentState(to_state).value
                conn.execute(
                    sa.insert(t.transitions).values(
                        incident_id=incident_id,
                        at=now,
                        from_state=current.state,
                        to_state=data["state"],
                        actor=actor,
                        reason=reason,
                        evidence=json_safe(dict(evidence)),
                        **self.signature(),
                    )
                )
            conn.execute(sa.update(t.incidents).where(t.incidents.c.id == incident_id).values(**data))
            row = conn.execute(sa.select(t.incidents).where(t.incidents.c.id == incident_id)).one()
        return Incident.from_row(dict(row._mapping))

    def get_incident(self, incident_id: int) -> Incident | None:
        return self._first(Incident.from_row, sa.select(t.incidents).where(t.incidents.c.id == incident_id))

    def list_incidents(
        self,
        *,
        state: str | None = None,
        open_only: bool = False,
        check: str | None = None,
        limit: int = 100,
    ) -> list[Incident]:
        query = sa.select(t.incidents).order_by(t.incidents.c.id.desc()).limit(limit)
        if state:
            query = query.where(t.incidents.c.state == state)
        if open_only:
            query = query.where(t.incidents.c.state.in_(OPEN_STATES))
        if check:
            query = query.where(t.incidents.c.check_name == check)
        return self._all(Incident.from_row, query)

    def transitions(self, incident_id: int) -> list[Transition]:
        """An incident's audit trail, oldest first."""
        query = sa.select(t.transitions).where(t.transitions.c.incident_id == incident_id).order_by(t.transitions.c.id)
        return self._all(Transition.from_row, query)

    def incident_counts(self) -> dict[str, int]:
        query = (
            sa.select(t.incidents.c.state, sa.func.count())
            .where(t.incidents.c.state.in_(OPEN_STATES))
            .group_by(t.incidents.c.state)
        )
        counts = dict.fromkeys(OPEN_STATES, 0)
        with self.tx() as conn:
            for state, n in conn.execute(query):
                counts[str(state)] = int(n)
        return counts

    # -- action ledger ---------------------------------------------------------------------------------

    def create_action(self, values: Mapping[str, object]) -> Action:
        """Insert a planned action; an existing row with the same idempotency key is returned instead."""
        data = _action_values(values)
        with self.tx() as conn:
            self.insert_or_ignore(conn, t.actions, data)
            row = conn.execute(
                sa.select(t.actions).where(t.actions.c.idempotency_key == str(data["idempotency_key"]))
            ).one()
        return Action.from_row(dict(row._mapping))

    def get_action(self, action_id: int) -> Action | None:
        return self._first(Action.from_row, sa.select(t.actions).where(t.actions.c.id == action_id))

    def action_by_key(self, key: str) -> Action | None:
        return self._first(Action.from_row, sa.select(t.actions).where(t.actions.c.idempotency_key == key))

    def list_actions(
        self, *, state: str | None = None, incident_id: int | None = None, limit: int = 100
    ) -> list[Action]:
        query = sa.select(t.actions).order_by(t.actions.c.id.desc()).limit(limit)
        if state:
            query = query.where(t.actions.c.state == state)
        if incident_id is not None:
            query = query.where(t.actions.c.incident_id == incident_id)
        return self._all(Action.from_row, query)

    def claim_action(
        self, action_id: int, owner: str, lease_until: float, now: float, *, from_states: Sequence[str]
    ) -> bool:
        """Conditionally take an action for execution: exactly one claimer wins, whatever the races."""
        with self.tx() as conn:
            won = conn.execute(
                sa.update(t.actions)
                .where(t.actions.c.id == action_id, t.actions.c.state.in_(list(from_states)))
                .values(
                    state=ActionState.RUNNING.value,
                    lease_owner=owner,
                    lease_expires=lease_until,
                    started_at=sa.func.coalesce(t.actions.c.started_at, now),
                    updated_at=now,
                    runs=t.actions.c.runs + 1,
                )
            ).rowcount
        return bool(won)

    def steal_action(self, action_id: int, old_owner: str | None, owner: str, lease_until: float, now: float) -> bool:
        """Take over a running action whose owner is dead (compare-and-set on the old owner)."""
        with self.tx() as conn:
            cond = t.actions.c.lease_owner == old_owner if old_owner is not None else t.actions.c.lease_owner.is_(None)
            won = conn.execute(
                sa.update(t.actions)
                .where(t.actions.c.id == action_id, t.actions.c.state == ActionState.RUNNING.value, cond)
                .values(lease_owner=owner, lease_expires=lease_until, updated_at=now)
            ).rowcount
        return bool(won)

    def update_action(self, action_id: int, values: Mapping[str, object], now: float) -> Action:
        data = _action_values(values)
        data["updated_at"] = now
        with self.tx() as conn:
            conn.execute(sa.update(t.actions).where(t.actions.c.id == action_id).values(**data))
            row = conn.execute(sa.select(t.actions).where(t.actions.c.id == action_id)).one()
        return Action.from_row(dict(row._mapping))

    def decide_approval(self, action_id: int, approved: bool, actor: str, now: float) -> bool:
        """Approve or reject an action waiting for a person; false if it was not waiting any more."""
        new_state = ActionState.PENDING if approved else ActionState.REJECTED
        values: dict[str, Any] = {"state": new_state.value, "decided_by": actor, "updated_at": now}
        if not approved:
            values["finished_at"] = now
        with self.tx() as conn:
            won = conn.execute(
                sa.update(t.actions)
                .where(t.actions.c.id == action_id, t.actions.c.state == ActionState.AWAITING_APPROVAL.value)
                .values(**values)
            ).rowcount
        return bool(won)

    def last_action_on_target(self, target: str, states: Sequence[str]) -> Action | None:
        query = (
            sa.select(t.actions)
            .where(t.actions.c.target == target, t.actions.c.state.in_(list(states)))
            .order_by(t.actions.c.id.desc())
            .limit(1)
        )
        return self._first(Action.from_row, query)

    def release_leases(self, owner: str, now: float) -> int:
        """On a clean shutdown: let the next start resume our running actions at once."""
        return self._changed(
            sa.update(t.actions)
            .where(t.actions.c.lease_owner == owner, t.actions.c.state == ActionState.RUNNING.value)
            .values(lease_expires=now, updated_at=now)
        )

    # -- outbox ----------------------------------------------------------------------------------------

    def enqueue_notification(self, values: Mapping[str, object]) -> bool:
        """Insert-or-ignore by (notifier, dedup_key): the same event is never queued twice."""
        data = _outbox_values(values)
        with self.tx() as conn:
            return self.insert_or_ignore(conn, t.outbox, data)

    @staticmethod
    def insert_or_ignore(conn: sa.Connection, table: sa.Table, data: Mapping[str, object]) -> bool:
        """INSERT ... ON CONFLICT DO NOTHING; true when a row was inserted. Never raises on a duplicate, so it
        can run inside a unit of work (a failed statement would abort a PostgreSQL transaction)."""
        insert: Any
        if conn.dialect.name == "postgresql":
            from sqlalchemy.dialects.postgresql import insert as pg_insert

            insert = pg_insert(table)
        else:
            from sqlalchemy.dialects.sqlite import insert as sqlite_insert

            insert = sqlite_insert(table)
        key = next(iter(table.primary_key.columns))
        inserted = conn.execute(insert.values(**data).on_conflict_do_nothing().returning(key)).first()
        return inserted is not None

    def claim_notification(
        self, notification_id: int, owner: str, until: float, *, taken_from: str | None = None
    ) -> bool:
        """Take a pending outbox row for sending until ``until``: exactly one replica wins (a conditional
        UPDATE). Without ``taken_from`` only an unclaimed row (or one this owner holds) is taken; with it, the
        row is taken from that holder, which the caller judged gone (see :class:`OutboxDispatcher`), and only
        if that holder still has it."""
        o = t.outbox.c
        held = (
            o.claimed_by == taken_from
            if taken_from is not None
            else sa.or_(o.claimed_by.is_(None), o.claimed_by == owner)
        )
        with self.tx() as conn:
            won = conn.execute(
                sa.update(t.outbox)
                .where(o.id == notification_id, o.state == "pending", held)
                .values(claimed_by=owner, claim_until=until)
            ).rowcount
        return bool(won)

    def update_notification(self, notification_id: int, values: Mapping[str, object]) -> None:
        data = _outbox_values(values)
        with self.tx() as conn:
            conn.execute(sa.update(t.outbox).where(t.outbox.c.id == notification_id).values(**data))

    def list_notifications(
        self, *, incident_id: int | None = None, state: str | None = None, limit: int = 500
    ) -> list[OutboxMessage]:
        query = sa.select(t.outbox).order_by(t.outbox.c.id).limit(limit)
        if incident_id is not None:
            query = query.where(t.outbox.c.incident_id == incident_id)
        if state:
            query = query.where(t.outbox.c.state == state)
        return self._all(OutboxMessage.from_row, query)

    def outbox_pending(self) -> int:
        return self._count(sa.select(sa.func.count()).where(t.outbox.c.state == _PENDING))

    # -- per-check state -------------------------------------------------------------------------------

    def load_check_state(self, check: str) -> CheckState | None:
        return self._first(CheckState.from_row, sa.select(t.check_state).where(t.check_state.c.check_name == check))

    def save_check_state(
        self,
        check: str,
        since: float | None,
        detector_state: JsonObject,
        source_state: JsonObject,
        now: float,
    ) -> None:
        values = json_safe(
            {
                "since": since,
                "detector_state": dict(detector_state),
                "source_state": dict(source_state),
                "updated_at": now,
            }
        )
        with self.tx() as conn:
            _update_or_insert(conn, t.check_state, {"check_name": check}, values)

    def save_checkpoint(
        self, check: str, blobs: Iterable[checkpoints.SeriesBlob], cursor: checkpoints.Cursor | None, now: float
    ) -> int:
        """Save detector states, ``checkpoints.BATCH`` per transaction, then (when given) the cursor they are
        consistent with. Small transactions because SQLite has one writer: one transaction over thousands
        of 217 KB states would hold every ingest request for seconds. Rows committed without their cursor
        are valid on their own (see :mod:`aiops.engine.checkpointing`); the cursor only ever follows them."""
        written = 0
        stream = iter(blobs)
        own_tx = self._current.get() is None
        while batch := list(itertools.islice(stream, checkpoints.BATCH)):
            if own_tx:  # a waiting ingest request goes first (see aiops.store.write_priority)
                self._write_priority.let_urgent_go_first(CHECKPOINT_YIELD_S)
            with self.tx() as conn:
                written += checkpoints.write_series(conn, check, batch, now)
        if cursor is not None:
            with self.tx() as conn:
                checkpoints.write_cursor(conn, check, cursor, now, self.signature())
        return written

    def iter_checkpoint(self, check: str) -> Iterator[checkpoints.SeriesBlob]:
        """The saved detector states of ``check``, streamed inside one read transaction."""
        with self.tx() as conn:
            yield from checkpoints.read_series(conn, check)

    # -- pushed telemetry ---------------------------------------------------------------------------------

    def append_events(self, rows: Sequence[PushedEvent], now: float) -> list[int]:
        """Append pushed points/events in one transaction; returns their ids (ascending).

        One transaction: a request is stored whole or not at all, before it is answered.
        """
        if not rows:
            return []
        with self._write_priority.urgent(), self.tx() as conn:
            if conn.dialect.name == "sqlite":
                return _insert_events_sqlite(conn, rows, now)
            batch: list[dict[str, object]] = [
                {
                    "stream": row.stream,
                    "kind": row.kind.value,
                    "name": row.name,
                    "ts": float(row.ts),
                    "value": row.value,
                    "labels": _json_column(row.labels),
                    "data": _json_column(row.data),
                    "received_at": now,
                }
                for row in rows
            ]
            # Ids in ascending order, not in parameter order: a caller only needs the range, and asking for
            # parameter order makes SQLAlchemy fall back to one statement per row.
            insert = sa.insert(t.events).returning(t.events.c.id)
            return sorted(int(r[0]) for r in conn.execute(insert, batch))

    def read_events(
        self, stream: str, after_id: int = 0, limit: int = 10_000, since: float | None = None
    ) -> list[StoredEvent]:
        """Rows of ``stream`` with an id above ``after_id`` (oldest first, at most ``limit``).

        ``since`` (epoch seconds) additionally skips rows received at or before it: used on a first read
        without a cursor, so a new check does not replay a stream's whole history.
        """
        with self.tx() as conn:
            if conn.dialect.name == "sqlite":
                return _read_events_sqlite(conn, stream, after_id, limit, since)
            query = sa.select(*_STORED_EVENT_COLUMNS).where(t.events.c.stream == stream, t.events.c.id > after_id)
            if since is not None:
                query = query.where(t.events.c.received_at > since)
            result = conn.execute(query.order_by(t.events.c.id).limit(limit))
            return [StoredEvent.from_values(*r) for r in result]

    def prune_events(self, received_before: float) -> int:
        """Delete pushed rows received before a time (retention); returns how many were deleted."""
        return self._changed(sa.delete(t.events).where(t.events.c.received_at < received_before))

    # -- notification pipeline: grouping, repeats, silences, flaps ---------------------------------------

    def pending_notifications(self, limit: int = 1000) -> list[OutboxMessage]:
        """Every pending outbox row, due or not, oldest first, without its payload (see
        :meth:`get_notification`): the dispatcher keeps per-receiver order by never sending a row while an
        older one of the same receiver is still waiting, so it must see them all, cheaply, every tick."""
        query = sa.select(*_OUTBOX_LIGHT).where(t.outbox.c.state == _PENDING).order_by(t.outbox.c.id).limit(limit)
        return self._all(OutboxMessage.from_row, query)

    def get_notification(self, notification_id: int) -> OutboxMessage | None:
        return self._first(OutboxMessage.from_row, sa.select(t.outbox).where(t.outbox.c.id == notification_id))

    def notification_states(self, notifier: str, incident_id: int) -> list[OutboxMessage]:
        """Every row of one receiver for one incident, oldest first, without payloads (for their states)."""
        query = (
            sa.select(*_OUTBOX_LIGHT)
            .where(t.outbox.c.notifier == notifier, t.outbox.c.incident_id == incident_id)
            .order_by(t.outbox.c.id)
        )
        return self._all(OutboxMessage.from_row, query)

    def flush_group(
        self,
        carrier_id: int,
        member_ids: Sequence[int],
        carrier_values: Mapping[str, object],
        notifier: str,
        group_key: str,
        now: float,
    ) -> bool:
        """Turn pending group members into one message, atomically. The oldest member (the carrier) takes the
        combined payload, so the group keeps the queue position of its first message (per-incident order);
        the others become ``grouped`` and point at it; the group's flush time is recorded. False when
        another dispatcher got there first."""
        ids = [carrier_id, *member_ids]
        try:
            with self.tx() as conn:
                claimed = conn.execute(
                    sa.update(t.outbox)
                    .where(t.outbox.c.id.in_(ids), t.outbox.c.state == _PENDING, t.outbox.c.group_key == group_key)
                    .values(group_key=None)
                ).rowcount
                if claimed != len(ids):
                    raise _Conflict()
                if carrier_values:  # a group of one keeps its message as it is: an empty SET is no SQL
                    conn.execute(
                        sa.update(t.outbox).where(t.outbox.c.id == carrier_id).values(**_outbox_values(carrier_values))
                    )
                if member_ids:
                    conn.execute(
                        sa.update(t.outbox)
                        .where(t.outbox.c.id.in_(list(member_ids)))
                        .values(state=NotificationState.GROUPED.value, parent_id=carrier_id)
                    )
                self._touch_group(conn, notifier, group_key, now)
        except _Conflict:
            return False
        return True

    def notification_by_key(self, notifier: str, dedup_key: str) -> OutboxMessage | None:
        return self._first(
            OutboxMessage.from_row,
            sa.select(t.outbox).where(t.outbox.c.notifier == notifier, t.outbox.c.dedup_key == dedup_key),
        )

    @staticmethod
    def _touch_group(conn: sa.Connection, notifier: str, group_key: str, now: float) -> None:
        _update_or_insert(conn, t.notify_groups, {"notifier": notifier, "group_key": group_key}, {"last_flush_at": now})

    def group_flushed_at(self, notifier: str, group_key: str) -> float | None:
        g = t.notify_groups
        with self.tx() as conn:
            value = conn.execute(
                sa.select(g.c.last_flush_at).where(g.c.notifier == notifier, g.c.group_key == group_key)
            ).scalar()
        return float(value) if value is not None else None

    def log_notification(
        self, notifier: str, incident_id: int, dedup_key: str, now: float, next_repeat_at: float | None, *, repeat: bool
    ) -> None:
        """Record a firing-type message as sent (repeat=False starts a new series of repeats)."""
        log = t.notify_log
        with self.tx() as conn:
            row = conn.execute(
                sa.select(log).where(log.c.notifier == notifier, log.c.incident_id == incident_id)
            ).first()
            if row is None:
                conn.execute(
                    sa.insert(log).values(
                        notifier=notifier,
                        incident_id=incident_id,
                        dedup_key=dedup_key,
                        repeats=0,
                        last_sent_at=now,
                        next_repeat_at=next_repeat_at,
                    )
                )
                return
            values: dict[str, Any] = {"last_sent_at": now, "next_repeat_at": next_repeat_at}
            if not repeat:
                values.update(dedup_key=dedup_key, repeats=0)
            conn.execute(sa.update(log).where(log.c.id == row.id).values(**values))

    def due_repeats(self, now: float, limit: int = 500) -> list[RepeatLog]:
        log = t.notify_log
        query = (
            sa.select(log)
            .where(log.c.next_repeat_at.is_not(None), log.c.next_repeat_at <= now)
            .order_by(log.c.next_repeat_at)
            .limit(limit)
        )
        return self._all(RepeatLog.from_row, query)

    def update_notify_log(self, log_id: int, values: Mapping[str, object]) -> None:
        data = _column_values("repeat log", _REPEAT_LOG_COLUMNS, values)
        with self.tx() as conn:
            conn.execute(sa.update(t.notify_log).where(t.notify_log.c.id == log_id).values(**data))

    def forget_notify_log(self, incident_id: int, notifier: str | None = None) -> None:
        query = sa.delete(t.notify_log).where(t.notify_log.c.incident_id == incident_id)
        if notifier is not None:
            query = query.where(t.notify_log.c.notifier == notifier)
        with self.tx() as conn:
            conn.execute(query)

    def add_silence(self, values: Mapping[str, object]) -> Silence:
        data = _column_values("silence", _SILENCE_COLUMNS, values)
        with self.tx() as conn:
            new_id = _inserted_id(conn.execute(sa.insert(t.silences).values(**data)))
            row = conn.execute(sa.select(t.silences).where(t.silences.c.id == new_id)).one()
        return Silence.from_row(dict(row._mapping))

    def list_silences(self, *, active_at: float | None = None) -> list[Silence]:
        query = sa.select(t.silences).order_by(t.silences.c.id)
        if active_at is not None:
            query = query.where(t.silences.c.starts_at <= active_at, t.silences.c.ends_at > active_at)
        return self._all(Silence.from_row, query)

    def expire_silence(self, silence_id: int, now: float) -> bool:
        return bool(
            self._changed(
                sa.update(t.silences)
                .where(t.silences.c.id == silence_id, t.silences.c.ends_at > now)
                .values(ends_at=now)
            )
        )

    def count_opened(self, fingerprint: str, since: float) -> int:
        """How many incidents of a fingerprint opened at or after ``since`` (flap detection)."""
        inc = t.incidents
        return self._count(sa.select(sa.func.count()).where(inc.c.fingerprint == fingerprint, inc.c.opened_at >= since))

    def get_flap(self, fingerprint: str) -> FlapEpisode | None:
        return self._first(FlapEpisode.from_row, sa.select(t.flaps).where(t.flaps.c.fingerprint == fingerprint))

    def save_flap(self, fingerprint: str, values: Mapping[str, object]) -> None:
        data = _column_values("flap", _FLAP_COLUMNS, values)
        with self.tx() as conn:
            _update_or_insert(conn, t.flaps, {"fingerprint": fingerprint}, data)

    def active_flaps(self) -> list[FlapEpisode]:
        query = sa.select(t.flaps).where(t.flaps.c.ended_at.is_(None))
        return self._all(FlapEpisode.from_row, query)

    # -- safety guards: budgets from the ledger, circuit breakers ---------------------------------------

    def count_actions_since(
        self,
        since: float,
        states: Sequence[str],
        *,
        action_type: str | None = None,
        check: str | None = None,
        target: str | None = None,
        incident_id: int | None = None,
    ) -> int:
        """Actions in ``states`` started (or, never started, created) at or after ``since``."""
        when = sa.func.coalesce(t.actions.c.started_at, t.actions.c.created_at)
        query = sa.select(sa.func.count()).where(t.actions.c.state.in_(list(states)), when >= since)
        if action_type is not None:
            query = query.where(t.actions.c.action_type == action_type)
        if check is not None:
            query = query.where(t.actions.c.check_name == check)
        if target is not None:
            query = query.where(t.actions.c.target == target)
        if incident_id is not None:
            query = query.where(t.actions.c.incident_id == incident_id)
        return self._count(query)

    def targets_since(self, since: float, states: Sequence[str]) -> set[str]:
        """Distinct targets acted on since ``since``: what the blast-radius budget counts."""
        when = sa.func.coalesce(t.actions.c.started_at, t.actions.c.created_at)
        query = sa.select(t.actions.c.target).where(t.actions.c.state.in_(list(states)), when >= since).distinct()
        with self.tx() as conn:
            return {str(r[0]) for r in conn.execute(query)}

    def get_breaker(self, action_type: str) -> Breaker | None:
        return self._first(Breaker.from_row, sa.select(t.breakers).where(t.breakers.c.action_type == action_type))

    def put_breaker(self, action_type: str, values: Mapping[str, object], now: float) -> Breaker:
        """Upsert a breaker's state (one transaction)."""
        data = _column_values("breaker", _BREAKER_COLUMNS, values)
        data["updated_at"] = now
        with self.tx() as conn:
            _update_or_insert(conn, t.breakers, {"action_type": action_type}, data, {"state": "closed", **data})
            row = conn.execute(sa.select(t.breakers).where(t.breakers.c.action_type == action_type)).one()
        return Breaker.from_row(dict(row._mapping))

    def list_breakers(self) -> list[Breaker]:
        query = sa.select(t.breakers).order_by(t.breakers.c.action_type)
        return self._all(Breaker.from_row, query)


class _Conflict(Exception):
    """Internal: a conditional update lost a race; the transaction is rolled back."""


_INCIDENT_COLUMNS = column_names(Incident) - {"id"}


_ACTION_COLUMNS = column_names(Action) - {"id"}
_BREAKER_COLUMNS = column_names(Breaker) - {"action_type"}
_SILENCE_COLUMNS = column_names(Silence) - {"id"}
_FLAP_COLUMNS = column_names(FlapEpisode) - {"fingerprint"}
_REPEAT_LOG_COLUMNS = column_names(RepeatLog) - {"id"}


def _incident_values(values: Mapping[str, object]) -> dict[str, Any]:
    """Column values for an incident write; a name that is not a column is a programming error, said so."""
    return _column_values("incident", _INCIDENT_COLUMNS, values)


def _action_values(values: Mapping[str, object]) -> dict[str, Any]:
    return _column_values("action", _ACTION_COLUMNS, values)


_OUTBOX_COLUMNS = column_names(OutboxMessage) - {"id"}
_PENDING = NotificationState.PENDING.value


#: An outbox row without its payload: what the dispatcher lists every tick (the payload is read only for
#: the rows it sends).
def _update_or_insert(
    conn: sa.Connection,
    table: sa.Table,
    key: Mapping[str, object],
    values: Mapping[str, object],
    inserted: Mapping[str, object] | None = None,
) -> None:
    """Update the row with this ``key`` to ``values``, or insert it (with ``inserted``, default ``values``).

    Portable SQL rather than a dialect's upsert: the same statements on SQLite and PostgreSQL; two writers
    inserting the same key at once fail the second on the primary key, inside its transaction.
    """
    where = [table.c[name] == value for name, value in key.items()]
    if not conn.execute(sa.update(table).where(*where).values(**values)).rowcount:
        conn.execute(sa.insert(table).values(**key, **(values if inserted is None else inserted)))


_OUTBOX_LIGHT = [c for c in t.outbox.c if c.name != "payload"]


def _outbox_values(values: Mapping[str, object]) -> dict[str, Any]:
    return _column_values("outbox", _OUTBOX_COLUMNS, values)


def _column_values(what: str, columns: frozenset[str], values: Mapping[str, object]) -> dict[str, Any]:
    unknown = set(values) - columns
    if unknown:
        raise StoreError(f"not {what} columns: {sorted(unknown)}", recoverable=False, reason="bad_request")
    data: dict[str, Any] = json_safe(dict(values))
    return data


def _inserted_id(result: sa.CursorResult[Any]) -> int:
    key = result.inserted_primary_key
    assert key is not None
    return int(key[0])


_EVENT_COLUMNS = ("stream", "kind", "name", "ts", "value", "labels", "data", "received_at")
_STORED_EVENT_COLUMNS = tuple(t.events.c[name] for name in StoredEvent._fields)
_SELECT_EVENTS_SQLITE = (
    f"SELECT {', '.join(StoredEvent._fields)} FROM {t.events.name} WHERE stream = ? AND id > ?{{since}} "
    "ORDER BY id LIMIT ?"
)
_INSERT_EVENTS_SQLITE = (
    f"INSERT INTO {t.events.name} ({', '.join(_EVENT_COLUMNS)}) VALUES ({', '.join('?' * len(_EVENT_COLUMNS))})"
)


def _insert_events_sqlite(conn: sa.Connection, rows: Sequence[PushedEvent], now: float) -> list[int]:
    """One driver-level ``executemany`` (the JSON columns encoded as SQLAlchemy's JSON type would), and the
    ids from ``last_insert_rowid()``.

    Why not the ORM-free Core insert: with its per-row JSON bind processing and parameter handling it cost
    three quarters of an ingest request's CPU, paid while holding the GIL, on the path whose latency clients
    see; for the same reason the parameters are built straight from the records, in one pass. The ids are
    contiguous because the statement runs inside one write transaction (SQLite's single writer lock) on a
    rowid table, where each new rowid is the largest one plus one.
    """
    try:
        params = _event_params(rows, now, _STRICT_JSON.encode)
    except (TypeError, ValueError):  # a non-JSON type (numpy, datetime) or a NaN/infinity: json_safe's job
        params = _event_params(rows, now, _json_text)
    conn.exec_driver_sql(_INSERT_EVENTS_SQLITE, params)
    last = int(conn.exec_driver_sql("SELECT last_insert_rowid()").scalar_one())
    return list(range(last - len(params) + 1, last + 1))


_STRICT_JSON = json.JSONEncoder(allow_nan=False)  # plain JSON only: anything else goes through json_safe


def _event_params(
    rows: Sequence[PushedEvent], now: float, encode: Callable[[Mapping[str, Any]], str]
) -> list[tuple[object, ...]]:
    """The insert's parameter rows, the JSON columns written by ``encode`` (empty ones without a call)."""
    return [
        (
            row.stream,
            row.kind.value,
            row.name,
            float(row.ts),
            row.value,
            encode(row.labels) if row.labels else "{}",
            encode(row.data) if row.data else "{}",
            now,
        )
        for row in rows
    ]


def _json_text(value: Mapping[str, Any]) -> str:
    """A JSON column's text as SQLAlchemy's JSON type writes it, after :func:`_json_column`."""
    return json.dumps(_json_column(value))


def _read_events_sqlite(
    conn: sa.Connection, stream: str, after_id: int, limit: int, since: float | None
) -> list[StoredEvent]:
    """:meth:`Store.read_events` at the driver level, the JSON columns of all rows decoded in one call.

    Why: a tick of a push check reads up to 10 000 rows, and that read runs while ingest requests wait for
    the interpreter; per-row mappings and a ``json.loads`` per column were most of its CPU (read through
    SQLAlchemy's JSON type: ~150 ms for 10 000 rows, against ~40 ms this way).
    """
    received = "" if since is None else " AND received_at > ?"
    params: tuple[object, ...] = (stream, after_id) if since is None else (stream, after_id, since)
    rows = conn.exec_driver_sql(_SELECT_EVENTS_SQLITE.format(since=received), (*params, limit)).all()
    if not rows:
        return []
    labels = _decode_json_texts([r[5] for r in rows])
    data = _decode_json_texts([r[6] for r in rows])
    return [
        StoredEvent.from_values(r[0], r[1], r[2], r[3], r[4], lab, dat, r[7], r[8])
        for r, lab, dat in zip(rows, labels, data, strict=True)
    ]


def _decode_json_texts(texts: list[object]) -> list[object]:
    """Many JSON texts decoded by one ``json.loads`` (the usual empty object without decoding at all)."""
    if all(text == "{}" for text in texts):
        return [{} for _ in texts]
    return list(json.loads("[" + ",".join(text if isinstance(text, str) else "null" for text in texts) + "]"))


def _json_column(value: Mapping[str, Any] | None) -> dict[str, Any]:
    """A JSON column's value: a mapping of plain strings as it is (what validated labels are, so the common
    ingest row skips the recursive walk), anything else made JSON-safe."""
    if not value:
        return {}
    if all(type(v) is str for v in value.values()) and all(type(k) is str for k in value):
        return dict(value)
    return dict(json_safe(dict(value)))


def _discard_broken_sqlite_connection(ctx: sa.engine.ExceptionContext) -> None:
    """Treat a read-only / I/O / disk-full error as a lost connection, so the pool drops it (and its
    siblings) and the next transaction opens a fresh one: writes resume by themselves once the fault clears."""
    if any(text in str(ctx.original_exception).lower() for text in _SQLITE_BROKEN):
        ctx.is_disconnect = True


def _sqlite_pragmas(dbapi_conn: Any, _record: Any, *, autocheckpoint: int) -> None:
    import sqlite3
    import time

    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA busy_timeout=30000")
    # switching a new file to WAL takes an exclusive lock and SQLite answers "database is locked" at once,
    # without its busy handler, while another process (a replica starting together) holds one
    for attempt in range(200):
        try:
            cur.execute("PRAGMA journal_mode=WAL")
            break
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or attempt == 199:
                raise
            time.sleep(0.05)
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute(f"PRAGMA wal_autocheckpoint={int(autocheckpoint)}")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.close()


def default_owner() -> str:
    """Lease owner id: ``host:pid:start``, so a dead owner on this host is recognisable.

    ``start`` is the process's start time (epoch seconds, for people reading it), followed on Linux by
    ``@boot-id/ticks`` (:mod:`aiops.store.process_identity`), which :func:`owner_is_dead` compares instead:
    unlike the start time, it does not move when the wall clock is stepped. The id stays in the same columns
    as before (a string of host, pid and start), so ids written by earlier releases are still read."""
    import socket

    import psutil

    pid = os.getpid()
    identity = identity_of(pid)
    suffix = f"@{identity}" if identity is not None else ""
    return f"{socket.gethostname()}:{pid}:{psutil.Process(pid).create_time():.3f}{suffix}"


#: How far a live process's start time may move between two readings, for owner ids without a boot identity
#: (written by an earlier release, or on a system without /proc). psutil derives it from the boot time in
#: /proc/stat, a whole second that moves when the wall clock is stepped (ntpd steps offsets over 128 ms): one
#: step of a fraction of a second moves it by 1 s, and a live owner compared to the hundredth would be taken
#: for dead, its leases, outbox claims and running actions taken over while it works. A process that reused
#: the pid starts later than this (a pid comes back only after the whole pid space went round).
SAME_PROCESS_SLACK: Final = 2.5


def owner_is_dead(owner: str | None) -> bool:
    """True when the lease owner ran on this host and that exact process is gone.

    With a boot identity in the id (``host:pid:start@boot/ticks``, see :func:`default_owner`) and /proc here,
    the process is gone when the host rebooted since (another boot id) or the pid now names no process or one
    that started at other ticks (the pid was reused); a stepped wall clock changes none of these. Otherwise
    (an id written by an earlier release, or no /proc on this system) the start times are compared as before,
    within :data:`SAME_PROCESS_SLACK`."""
    if not owner:
        return True
    import socket

    try:
        host, pid_text, started = owner.rsplit(":", 2)
        stamp, _, boot_part = started.partition("@")
        pid, start_time = int(pid_text), float(stamp)
    except ValueError:
        return False
    if host != socket.gethostname():
        return False  # another replica: only its lease expiry can tell
    stored = BootIdentity.parse(boot_part) if boot_part else None
    boot = current_boot() if stored is not None else None
    if stored is not None and boot is not None:
        if stored.boot != boot:
            return True  # this host rebooted since: no process of that boot exists any more
        try:
            return start_ticks(pid) != stored.ticks  # None: no such process
        except (OSError, ValueError):
            return False  # unreadable: only its lease expiry can tell
    return _start_time_differs(pid, start_time)


def _start_time_differs(pid: int, start_time: float) -> bool:
    """The comparison by psutil's start time, with its slack for wall-clock steps."""
    import psutil

    try:
        proc = psutil.Process(pid)
        return abs(proc.create_time() - start_time) > SAME_PROCESS_SLACK
    except psutil.NoSuchProcess:
        return True
    except psutil.Error:
        return False
