"""The durable store: incidents and their audit trail, the action ledger, the notification outbox, and the
per-check state that lets a restarted daemon carry on where it stopped.

SQLite (WAL) by default, PostgreSQL by URL; the same statements run on both. Methods return plain dicts so
that nothing above this module depends on SQLAlchemy.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from aiops.errors import StoreError
from aiops.store import schema as t
from aiops.types import ActionState, IncidentState, json_safe

Row = dict[str, Any]
OPEN_STATES = [s.value for s in IncidentState if s.is_open]


def _normalise_url(url: str) -> str:
    if url.startswith(("postgres://", "postgresql://")):
        return "postgresql+psycopg://" + url.split("://", 1)[1]
    return url


class Store:
    """One handle on the database; thread-safe (a connection per transaction from the pool)."""

    def __init__(self, url: str) -> None:
        self.url = _normalise_url(url)
        kwargs: dict[str, Any] = {"future": True}
        if self.url.startswith("sqlite"):
            path = self.url.split("///", 1)[-1]
            if path and path != ":memory:" and not path.startswith("file:"):
                Path(path).parent.mkdir(parents=True, exist_ok=True)
            kwargs["connect_args"] = {"check_same_thread": False, "timeout": 30}
        else:
            kwargs["pool_pre_ping"] = True
        try:
            self.engine = sa.create_engine(self.url, **kwargs)
        except (SQLAlchemyError, ImportError, ValueError) as exc:
            raise StoreError(f"cannot open store {self.redacted_url}: {exc}", recoverable=False) from exc
        if self.engine.dialect.name == "sqlite":
            sa.event.listen(self.engine, "connect", _sqlite_pragmas)

    @property
    def redacted_url(self) -> str:
        return sa.make_url(self.url).render_as_string(hide_password=True)

    @contextmanager
    def tx(self) -> Iterator[sa.Connection]:
        try:
            with self.engine.begin() as conn:
                yield conn
        except IntegrityError:
            raise
        except SQLAlchemyError as exc:
            raise StoreError(f"store {self.redacted_url}: {exc.__class__.__name__}: {exc}") from exc

    # -- lifecycle -------------------------------------------------------------------------------------

    def migrate(self) -> int:
        """Bring the schema to the current version; returns the version."""
        with self.tx() as conn:
            t.meta.create(conn, checkfirst=True)
        version = self.schema_version()
        for step_version, step in t.MIGRATIONS:
            if step_version <= version:
                continue
            with self.tx() as conn:
                step(conn)
                self._set_meta(conn, "schema_version", str(step_version))
            version = step_version
        return version

    def schema_version(self) -> int:
        with self.tx() as conn:
            value = conn.execute(sa.select(t.meta.c.value).where(t.meta.c.key == "schema_version")).scalar()
        return int(value) if value is not None else 0

    def ping(self) -> bool:
        try:
            with self.tx() as conn:
                conn.execute(sa.text("SELECT 1"))
            return True
        except StoreError:
            return False

    def close(self) -> None:
        self.engine.dispose()

    # -- meta flags ------------------------------------------------------------------------------------

    @staticmethod
    def _set_meta(conn: sa.Connection, key: str, value: str) -> None:
        updated = conn.execute(sa.update(t.meta).where(t.meta.c.key == key).values(value=value)).rowcount
        if not updated:
            conn.execute(sa.insert(t.meta).values(key=key, value=value))

    def set_flag(self, key: str, value: str) -> None:
        with self.tx() as conn:
            self._set_meta(conn, key, value)

    def get_flag(self, key: str, default: str = "") -> str:
        with self.tx() as conn:
            value = conn.execute(sa.select(t.meta.c.value).where(t.meta.c.key == key)).scalar()
        return str(value) if value is not None else default

    # -- incidents -------------------------------------------------------------------------------------

    def open_incident(self, fingerprint: str) -> Row | None:
        with self.tx() as conn:
            row = conn.execute(
                sa.select(t.incidents)
                .where(t.incidents.c.fingerprint == fingerprint, t.incidents.c.state.in_(OPEN_STATES))
                .order_by(t.incidents.c.id.desc())
                .limit(1)
            ).first()
        return dict(row._mapping) if row else None

    def create_incident(self, values: Mapping[str, Any], actor: str, reason: str) -> Row:
        data = json_safe(dict(values))
        with self.tx() as conn:
            incident_id = _inserted_id(conn.execute(sa.insert(t.incidents).values(**data)))
            conn.execute(
                sa.insert(t.transitions).values(
                    incident_id=incident_id,
                    at=data["opened_at"],
                    from_state=None,
                    to_state=data["state"],
                    actor=actor,
                    reason=reason,
                    evidence=data.get("evidence", {}),
                )
            )
            row = conn.execute(sa.select(t.incidents).where(t.incidents.c.id == incident_id)).one()
        return dict(row._mapping)

    def update_incident(
        self,
        incident_id: int,
        values: Mapping[str, Any],
        *,
        transition: tuple[str, str, str, Mapping[str, Any]] | None = None,
        now: float,
    ) -> Row:
        """Update fields; with ``transition=(to_state, actor, reason, evidence)`` also write the audit row.

        Both happen in one transaction, so the trail never disagrees with the state.
        """
        data = json_safe(dict(values))
        data["updated_at"] = now
        with self.tx() as conn:
            current = conn.execute(sa.select(t.incidents).where(t.incidents.c.id == incident_id)).first()
            if current is None:
                raise StoreError(f"no incident {incident_id}", recoverable=False, reason="not_found")
            if transition is not None:
                to_state, actor, reason, evidence = transition
                data["state"] = to_state
                conn.execute(
                    sa.insert(t.transitions).values(
                        incident_id=incident_id,
                        at=now,
                        from_state=current.state,
                        to_state=to_state,
                        actor=actor,
                        reason=reason,
                        evidence=json_safe(dict(evidence)),
                    )
                )
            conn.execute(sa.update(t.incidents).where(t.incidents.c.id == incident_id).values(**data))
            row = conn.execute(sa.select(t.incidents).where(t.incidents.c.id == incident_id)).one()
        return dict(row._mapping)

    def get_incident(self, incident_id: int) -> Row | None:
        with self.tx() as conn:
            row = conn.execute(sa.select(t.incidents).where(t.incidents.c.id == incident_id)).first()
        return dict(row._mapping) if row else None

    def list_incidents(
        self,
        *,
        state: str | None = None,
        open_only: bool = False,
        check: str | None = None,
        limit: int = 100,
    ) -> list[Row]:
        query = sa.select(t.incidents).order_by(t.incidents.c.id.desc()).limit(limit)
        if state:
            query = query.where(t.incidents.c.state == state)
        if open_only:
            query = query.where(t.incidents.c.state.in_(OPEN_STATES))
        if check:
            query = query.where(t.incidents.c.check_name == check)
        with self.tx() as conn:
            return [dict(r._mapping) for r in conn.execute(query)]

    def transitions(self, incident_id: int) -> list[Row]:
        query = sa.select(t.transitions).where(t.transitions.c.incident_id == incident_id).order_by(t.transitions.c.id)
        with self.tx() as conn:
            return [dict(r._mapping) for r in conn.execute(query)]

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

    def create_action(self, values: Mapping[str, Any]) -> Row:
        """Insert a planned action; an existing row with the same idempotency key is returned instead."""
        data = json_safe(dict(values))
        try:
            with self.tx() as conn:
                action_id = _inserted_id(conn.execute(sa.insert(t.actions).values(**data)))
        except IntegrityError:
            existing = self.action_by_key(str(data["idempotency_key"]))
            assert existing is not None
            return existing
        got = self.get_action(int(action_id))
        assert got is not None
        return got

    def get_action(self, action_id: int) -> Row | None:
        with self.tx() as conn:
            row = conn.execute(sa.select(t.actions).where(t.actions.c.id == action_id)).first()
        return dict(row._mapping) if row else None

    def action_by_key(self, key: str) -> Row | None:
        with self.tx() as conn:
            row = conn.execute(sa.select(t.actions).where(t.actions.c.idempotency_key == key)).first()
        return dict(row._mapping) if row else None

    def list_actions(self, *, state: str | None = None, incident_id: int | None = None, limit: int = 100) -> list[Row]:
        query = sa.select(t.actions).order_by(t.actions.c.id.desc()).limit(limit)
        if state:
            query = query.where(t.actions.c.state == state)
        if incident_id is not None:
            query = query.where(t.actions.c.incident_id == incident_id)
        with self.tx() as conn:
            return [dict(r._mapping) for r in conn.execute(query)]

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

    def update_action(self, action_id: int, values: Mapping[str, Any], now: float) -> Row:
        data = json_safe(dict(values))
        data["updated_at"] = now
        with self.tx() as conn:
            conn.execute(sa.update(t.actions).where(t.actions.c.id == action_id).values(**data))
            row = conn.execute(sa.select(t.actions).where(t.actions.c.id == action_id)).one()
        return dict(row._mapping)

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

    def last_action_on_target(self, target: str, states: Sequence[str]) -> Row | None:
        query = (
            sa.select(t.actions)
            .where(t.actions.c.target == target, t.actions.c.state.in_(list(states)))
            .order_by(t.actions.c.id.desc())
            .limit(1)
        )
        with self.tx() as conn:
            row = conn.execute(query).first()
        return dict(row._mapping) if row else None

    def release_leases(self, owner: str, now: float) -> int:
        """On a clean shutdown: let the next start resume our running actions at once."""
        with self.tx() as conn:
            return int(
                conn.execute(
                    sa.update(t.actions)
                    .where(t.actions.c.lease_owner == owner, t.actions.c.state == ActionState.RUNNING.value)
                    .values(lease_expires=now, updated_at=now)
                ).rowcount
            )

    # -- outbox ----------------------------------------------------------------------------------------

    def enqueue_notification(self, values: Mapping[str, Any]) -> bool:
        """Insert-or-ignore by (notifier, dedup_key): the same event is never queued twice."""
        data = json_safe(dict(values))
        try:
            with self.tx() as conn:
                conn.execute(sa.insert(t.outbox).values(**data))
        except IntegrityError:
            return False
        return True

    def due_notifications(self, now: float, limit: int = 100) -> list[Row]:
        query = (
            sa.select(t.outbox)
            .where(t.outbox.c.state == "pending", t.outbox.c.next_attempt_at <= now)
            .order_by(t.outbox.c.id)
            .limit(limit)
        )
        with self.tx() as conn:
            return [dict(r._mapping) for r in conn.execute(query)]

    def update_notification(self, notification_id: int, values: Mapping[str, Any]) -> None:
        with self.tx() as conn:
            conn.execute(sa.update(t.outbox).where(t.outbox.c.id == notification_id).values(**json_safe(dict(values))))

    def list_notifications(
        self, *, incident_id: int | None = None, state: str | None = None, limit: int = 500
    ) -> list[Row]:
        query = sa.select(t.outbox).order_by(t.outbox.c.id).limit(limit)
        if incident_id is not None:
            query = query.where(t.outbox.c.incident_id == incident_id)
        if state:
            query = query.where(t.outbox.c.state == state)
        with self.tx() as conn:
            return [dict(r._mapping) for r in conn.execute(query)]

    def outbox_pending(self) -> int:
        with self.tx() as conn:
            return int(conn.execute(sa.select(sa.func.count()).where(t.outbox.c.state == "pending")).scalar() or 0)

    # -- per-check state -------------------------------------------------------------------------------

    def load_check_state(self, check: str) -> Row | None:
        with self.tx() as conn:
            row = conn.execute(sa.select(t.check_state).where(t.check_state.c.check_name == check)).first()
        return dict(row._mapping) if row else None

    def save_check_state(
        self,
        check: str,
        since: float | None,
        detector_state: Mapping[str, Any],
        source_state: Mapping[str, Any],
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
            updated = conn.execute(
                sa.update(t.check_state).where(t.check_state.c.check_name == check).values(**values)
            ).rowcount
            if not updated:
                conn.execute(sa.insert(t.check_state).values(check_name=check, **values))


def _inserted_id(result: sa.CursorResult[Any]) -> int:
    key = result.inserted_primary_key
    assert key is not None
    return int(key[0])


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.close()


def default_owner() -> str:
    """Lease owner id: host, pid and process start time, so a dead owner on this host is recognisable."""
    import socket

    import psutil

    proc = psutil.Process(os.getpid())
    return f"{socket.gethostname()}:{os.getpid()}:{proc.create_time():.3f}"


def owner_is_dead(owner: str | None) -> bool:
    """True when the lease owner ran on this host and that exact process is gone."""
    if not owner:
        return True
    import socket

    import psutil

    try:
        host, pid_text, started = owner.rsplit(":", 2)
        pid, start_time = int(pid_text), float(started)
    except ValueError:
        return False
    if host != socket.gethostname():
        return False  # another replica: only its lease expiry can tell
    try:
        proc = psutil.Process(pid)
        return abs(proc.create_time() - start_time) > 0.01
    except psutil.NoSuchProcess:
        return True
    except psutil.Error:
        return False
