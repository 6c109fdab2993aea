"""Which daemon replicas share this store, and whether they are alive.

Each replica registers a row in ``aiops_members`` when it starts (its id is host:pid:process-start, on Linux
followed by @boot-id/ticks: the same id that owns action leases), beats every :data:`HEARTBEAT_INTERVAL`
seconds and removes its row on a clean shutdown. A replica whose heartbeat is older than :data:`STALE_AFTER`,
or whose process on this host is gone, is presumed dead: it is listed as such and never blocks anything; after
:data:`PRUNE_AFTER` its row is deleted.

Why in the database and not a coordination service: the store is the one thing every replica already shares
(as Airflow's schedulers share their metadata database), so membership needs no extra component.

A SQLite store serves one daemon only (SQLite's single writer and file locks do not stretch across hosts, and
the engine's exactly-once guarantees between replicas are proven on PostgreSQL): :meth:`Membership.join`
refuses to start a second live daemon on the same SQLite file and names the one already running.
"""

from __future__ import annotations

import contextlib
import socket
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any, Final

import sqlalchemy as sa

from aiops import __version__
from aiops.cluster.leases import by_owner, holdings, leases
from aiops.errors import AiopsError, StoreError
from aiops.store import schema as t
from aiops.store.store import Store, owner_is_dead

HEARTBEAT_INTERVAL: Final = 5.0  # seconds between two heartbeats of one replica
STALE_AFTER: Final = 3 * HEARTBEAT_INTERVAL  # no heartbeat for this long: the replica is presumed dead
PRUNE_AFTER: Final = 3600.0  # a dead replica stays listed (and alerted on) this long, then its row is deleted


class StoreInUse(AiopsError):
    """Another live daemon already serves this single-replica (SQLite) store."""

    reason = "store_in_use"


@dataclass(frozen=True)
class Member:
    """One replica as registered in the store."""

    replica: str
    host: str
    pid: int
    started_at: float
    heartbeat_at: float
    version: str
    address: str

    def heartbeat_age(self, now: float) -> float:
        return max(0.0, now - self.heartbeat_at)

    def alive(self, now: float) -> bool:
        """Heartbeat recent, and (when it ran on this host) its exact process still exists."""
        return self.heartbeat_age(now) < STALE_AFTER and not owner_is_dead(self.replica)

    def to_dict(self, now: float) -> dict[str, Any]:
        age = self.heartbeat_age(now)
        return {**asdict(self), "heartbeat_age": round(age, 3), "alive": self.alive(now)}


def members(store: Store) -> list[Member]:
    """Every registered replica, oldest first (dead ones included until they are pruned)."""
    with store.tx() as conn:
        rows = conn.execute(sa.select(t.members).order_by(t.members.c.started_at, t.members.c.replica)).all()
    return [Member(**dict(r._mapping)) for r in rows]


def _host_and_pid(replica: str) -> tuple[str, int]:
    """Host and pid out of a replica id (host:pid:process-start)."""
    parts = replica.rsplit(":", 2)
    if len(parts) == 3 and parts[1].isdigit():
        return parts[0], int(parts[1])
    return socket.gethostname(), 0


def _since(when: float) -> str:
    return datetime.fromtimestamp(when, UTC).isoformat(timespec="seconds")


class Membership:
    """This replica's row in ``aiops_members``: join at start, :meth:`tick` from a 1 s job, leave at stop."""

    def __init__(self, store: Store, replica: str, address: str, now: Callable[[], float] = time.time) -> None:
        self.store = store
        self.replica = replica
        self.address = address
        self.now = now
        self.started_at = now()
        self._last_beat = float("-inf")

    @classmethod
    def join(cls, store: Store, replica: str, address: str, now: Callable[[], float] = time.time) -> Membership:
        """Register this replica; on SQLite, unregister again and refuse when an older live daemon serves the
        store (:class:`StoreInUse`, naming it)."""
        membership = cls(store, replica, address, now)
        membership.beat()
        if store.engine.dialect.name == "sqlite":
            membership._refuse_a_second_daemon()
        return membership

    def _refuse_a_second_daemon(self) -> None:
        """Register first, then look: of two daemons started at the same instant each sees the other's row,
        and the younger one (later start, then higher id) gives way, so exactly one keeps the store."""
        now = self.now()
        mine = (self.started_at, self.replica)
        for other in members(self.store):
            if other.replica == self.replica:
                continue
            if other.alive(now) and (other.started_at, other.replica) < mine:
                self._forget(self.replica)
                raise StoreInUse(
                    f"another aiops daemon already uses the SQLite store {self.store.redacted_url}: pid {other.pid} "
                    f"on {other.host}, running since {_since(other.started_at)} (last heartbeat "
                    f"{other.heartbeat_age(now):.0f}s ago). A SQLite store serves one daemon: stop that one, or "
                    "use PostgreSQL to run several replicas"
                )
            if not other.alive(now):
                self._forget(other.replica)  # a dead daemon's row: it must not block anyone

    def _forget(self, replica: str) -> None:
        with self.store.tx() as conn:
            conn.execute(sa.delete(t.members).where(t.members.c.replica == replica))

    def beat(self) -> None:
        """Record that this replica is alive (re-registering if an operator or a prune removed the row)."""
        now = self.now()
        values = {"heartbeat_at": now, "version": __version__, "address": self.address}
        with self.store.tx() as conn:
            updated = conn.execute(
                sa.update(t.members).where(t.members.c.replica == self.replica).values(**values)
            ).rowcount
            if not updated:
                host, pid = _host_and_pid(self.replica)
                conn.execute(
                    sa.insert(t.members).values(
                        replica=self.replica, host=host, pid=pid, started_at=self.started_at, **values
                    )
                )
            # Survivors forget replicas dead for long: the list and the "replica lost" alert show a loss for an
            # hour, not forever.
            conn.execute(sa.delete(t.members).where(t.members.c.heartbeat_at < now - PRUNE_AFTER))
        self._last_beat = now

    def tick(self) -> None:
        """From the daemon's 1 s housekeeping: beat when the interval has passed. A store that is down only
        delays the beat; the replica then looks stale to the others, which is the truth."""
        if self.now() - self._last_beat < HEARTBEAT_INTERVAL:
            return
        with contextlib.suppress(StoreError):  # the other jobs report the store's trouble; retried next second
            self.beat()

    def leave(self) -> None:
        """Remove this replica's row on a clean shutdown, so the others see it gone at once."""
        with contextlib.suppress(StoreError):  # else the row goes stale by itself
            self._forget(self.replica)

    def live(self, within: float) -> set[str]:
        """The replicas whose heartbeat is younger than ``within`` seconds and whose process (when on this
        host) still exists: the ones that share the checks (see :mod:`aiops.cluster.leases`)."""
        now = self.now()
        return {
            m.replica for m in members(self.store) if m.heartbeat_age(now) < within and not owner_is_dead(m.replica)
        }

    def view(self) -> list[dict[str, Any]]:
        """Every member with its heartbeat age, liveness, how many checks it owns and the ages of its leases
        (for ``aiops cluster`` and the API)."""
        now = self.now()
        held = by_owner(leases(self.store), now)
        return [{**m.to_dict(now), **holdings(held.get(m.replica, []), now)} for m in members(self.store)]
