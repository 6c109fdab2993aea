"""Which replica runs which check: lease rows in ``aiops_leases``, claimed, renewed and shared out fairly.

Every replica runs :meth:`Leases.round` every second (every third of the lease when that is shorter;
``cluster.lease`` is 15 s by default). A round, in one transaction:

1. renews the leases this replica holds (``expires_at = now + lease``);
2. releases the checks it holds above its fair share, ``ceil(checks / live replicas)`` (a replica that just
   joined then finds them free), and those no longer configured;
3. claims free or expired leases up to its fair share with ``SELECT ... FOR UPDATE SKIP LOCKED``, so replicas
   claiming at the same moment never wait for each other nor take the same row; every claim increments the
   row's fencing token.

So a round takes at most the fair share (never the whole table at once: no thundering herd when a replica joins
or leaves), and a replica that stops renewing (killed, paused, cut off) loses its checks once its leases expire:
the survivors take them at their next round, within one lease period and one round (a second).

Why the fencing token: a paused replica can wake up in the middle of a tick, unaware that its lease expired.
Every unit of work of a check's tick is fenced (:meth:`aiops.store.store.Store.fenced`): it is refused when the
lease row carries a newer token than the one the tick started with, so the old owner's late decision is
discarded whole and never mixes with the new owner's.

Live replicas are the members (:mod:`aiops.cluster.membership`) whose heartbeat is younger than one lease; a
round beats first, so a replica counts itself. Expiry compares wall clocks of different hosts: keep them in
sync (NTP) to well under a lease. On SQLite the one replica simply owns every check, through the same code.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import KW_ONLY, dataclass, field
from typing import Any, Final

import sqlalchemy as sa

from aiops.store import schema as t
from aiops.store.store import Fence, Store, owner_is_dead

CHECK: Final = "check"  # the kind of a check's lease row
RENEWALS_PER_LEASE: Final = 3  # a lease is renewed at least this many times per period: one late round loses nothing
ROUND_EVERY: Final = 1.0  # the longest wait between two rounds: a lease that expired is claimed this soon after
LOCAL_MARGIN: Final = 0.2  # this share of the lease before its expiry, the holder itself stops acting on it

_L = t.leases


@dataclass(frozen=True)
class Lease:
    """One lease row: who holds it (``owner``, None when free), since when, until when, with which token."""

    kind: str
    name: str
    owner: str | None
    token: int
    acquired_at: float | None
    renewed_at: float | None
    expires_at: float

    def held(self, now: float) -> bool:
        return self.owner is not None and self.expires_at > now

    def age(self, now: float) -> float:
        """Seconds since the current owner claimed it."""
        return max(0.0, now - self.acquired_at) if self.acquired_at is not None else 0.0


@dataclass(frozen=True)
class Round:
    """What one round changed for this replica."""

    acquired: tuple[str, ...]  # checks claimed in this round (their runners must reload the saved state)
    taken_over: int  # of those, how many another replica held before (expired or released)
    lost: tuple[str, ...]  # checks this replica held and does not any more (taken over, released)
    owned: int  # checks held after the round
    live: int  # live replicas counted for the fair share


@dataclass(eq=False)
class Leases:
    """This replica's side of the lease table. Thread-safe: the scheduler's check jobs ask :meth:`fence`
    while the housekeeping job runs :meth:`tick`."""

    store: Store
    replica: str
    lease: float
    _: KW_ONLY
    now: Callable[[], float] = time.time
    monotonic: Callable[[], float] = time.monotonic
    beat: Callable[[], None] | None = None
    """The membership heartbeat, run before each round so this replica counts as live."""
    live: Callable[[float], set[str]] | None = None
    """The replicas whose heartbeat is younger than the given seconds (the membership's)."""
    # check -> (fencing token, monotonic deadline)
    _held: dict[str, tuple[int, float]] = field(default_factory=dict, init=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False)
    _next_round: float = field(default=float("-inf"), init=False)
    _rows_made: set[str] = field(default_factory=set, init=False)  # checks known to have a lease row (never deleted)

    # -- what this replica holds -----------------------------------------------------------------------

    def fence(self, check: str) -> Fence | None:
        """The fence of ``check`` when this replica holds its lease (and renewed it recently enough to be sure
        nobody else can have claimed it), else None: the tick returns at once."""
        with self._lock:
            held = self._held.get(check)
        if held is None or self.monotonic() >= held[1]:
            return None
        return Fence(CHECK, check, held[0], self.replica)

    def owned(self) -> list[str]:
        """The checks this replica holds now, sorted."""
        now = self.monotonic()
        with self._lock:
            return sorted(name for name, (_, deadline) in self._held.items() if now < deadline)

    # -- rounds ----------------------------------------------------------------------------------------

    def tick(self, checks: Sequence[str]) -> Round | None:
        """From the daemon's 1 s housekeeping: a round when one is due (every second, or every third of a lease
        shorter than 3 s)."""
        if self.monotonic() < self._next_round:
            return None
        return self.round(checks)

    def round(self, checks: Sequence[str]) -> Round:
        """Renew, release the surplus, claim up to the fair share (see the module's docstring)."""
        started = self.monotonic()
        self._next_round = started + min(ROUND_EVERY, self.lease / RENEWALS_PER_LEASE)
        if self.beat is not None:
            self.beat()
        now = self.now()
        configured = sorted(set(checks))
        self._ensure_rows(configured)
        live = self._live(now)
        fair = math.ceil(len(configured) / live) if configured else 0
        with self.store.tx() as conn:
            conn.execute(
                sa.update(_L)
                .where(_L.c.kind == CHECK, _L.c.owner == self.replica)
                .values(renewed_at=now, expires_at=now + self.lease)
            )
            # name and token only, as plain rows: this runs every second over every check the replica holds
            mine = conn.execute(
                sa.select(_L.c.name, _L.c.token)
                .where(_L.c.kind == CHECK, _L.c.owner == self.replica)
                .order_by(_L.c.name)
            ).all()
            wanted = set(configured)  # once: a set per row made a round quadratic in the checks
            keep = [(name, token) for name, token in mine if name in wanted]
            surplus = [name for name, _ in mine if name not in wanted] + [name for name, _ in keep[fair:]]
            keep = keep[:fair]
            if surplus:
                conn.execute(
                    sa.update(_L)
                    .where(_L.c.kind == CHECK, _L.c.owner == self.replica, _L.c.name.in_(surplus))
                    .values(owner=None, expires_at=0.0)
                )
            claimed = self._claim(conn, configured, fair - len(keep), now) if len(keep) < fair else []
        deadline = started + self.lease * (1.0 - LOCAL_MARGIN)
        held = {name: int(token) for name, token in keep}
        held.update({lease.name: lease.token + 1 for lease in claimed})
        with self._lock:
            before = set(self._held)
            self._held = {name: (token, deadline) for name, token in held.items()}
        return Round(
            acquired=tuple(sorted(set(held) - before)),
            taken_over=sum(1 for lease in claimed if lease.owner is not None and lease.owner != self.replica),
            lost=tuple(sorted(before - set(held))),
            owned=len(held),
            live=live,
        )

    def _claim(self, conn: sa.Connection, configured: list[str], wanted: int, now: float) -> list[Lease]:
        """Claim up to ``wanted`` free or expired leases; returns them as they were before the claim.

        A lease whose holder ran on this host and whose process is gone counts as expired at once: a daemon
        restarted after a crash (the common case on one host, and the only one on SQLite) must not wait a
        whole lease period for its own predecessor's checks."""
        holders = conn.execute(
            sa.select(_L.c.owner)
            .where(_L.c.kind == CHECK, _L.c.owner.is_not(None), _L.c.owner != self.replica, _L.c.expires_at > now)
            .distinct()
        ).scalars()
        dead = [owner for owner in holders if owner_is_dead(owner)]
        free = _rows(
            conn,
            sa.select(_L)
            .where(
                _L.c.kind == CHECK,
                _L.c.name.in_(configured),
                sa.or_(_L.c.owner.is_(None), _L.c.expires_at <= now, _L.c.owner.in_(dead)),
            )
            .order_by(_L.c.expires_at, _L.c.name)
            .limit(wanted)
            .with_for_update(skip_locked=True),
        )
        if free:
            conn.execute(
                sa.update(_L)
                .where(_L.c.kind == CHECK, _L.c.name.in_([lease.name for lease in free]))
                .values(
                    owner=self.replica,
                    token=_L.c.token + 1,
                    acquired_at=now,
                    renewed_at=now,
                    expires_at=now + self.lease,
                )
            )
        return free

    def _ensure_rows(self, configured: list[str]) -> None:
        """A free lease row for every configured check that has none yet (inserted in name order, so two
        replicas adding the same rows never deadlock). Rows are never deleted, so a check seen with its row
        is not looked up again: a round then reads no row for this unless a check was added."""
        if self._rows_made.issuperset(configured):
            return
        with self.store.tx() as conn:
            existing = set(conn.execute(sa.select(_L.c.name).where(_L.c.kind == CHECK)).scalars())
            for name in configured:
                if name not in existing:
                    self.store.insert_or_ignore(
                        conn, _L, {"kind": CHECK, "name": name, "owner": None, "token": 0, "expires_at": 0.0}
                    )
        self._rows_made.update(configured)  # once the transaction committed

    def _live(self, now: float) -> int:
        """Replicas whose heartbeat is younger than one lease (this one always counts)."""
        live = self.live(self.lease) if self.live is not None else set()
        return len(live | {self.replica})

    def release_all(self) -> None:
        """On a clean stop: free every lease at once, so the others take the checks at their next round."""
        with self._lock:
            self._held = {}
        with self.store.tx() as conn:
            conn.execute(
                sa.update(_L).where(_L.c.kind == CHECK, _L.c.owner == self.replica).values(owner=None, expires_at=0.0)
            )


def leases(store: Store, kind: str = CHECK) -> list[Lease]:
    """Every lease row of ``kind``, by name (for ``aiops cluster``, the API and the metrics)."""
    with store.tx() as conn:
        return _rows(conn, sa.select(_L).where(_L.c.kind == kind).order_by(_L.c.name))


def _rows(conn: sa.Connection, query: Any) -> list[Lease]:
    return [_lease(r._mapping) for r in conn.execute(query)]


def _lease(row: Any) -> Lease:
    return Lease(
        kind=str(row["kind"]),
        name=str(row["name"]),
        owner=None if row["owner"] is None else str(row["owner"]),
        token=int(row["token"]),
        acquired_at=None if row["acquired_at"] is None else float(row["acquired_at"]),
        renewed_at=None if row["renewed_at"] is None else float(row["renewed_at"]),
        expires_at=float(row["expires_at"]),
    )


def by_owner(rows: Iterable[Lease], now: float) -> dict[str, list[Lease]]:
    """The leases held now, grouped by their owner."""
    out: dict[str, list[Lease]] = {}
    for lease in rows:
        if lease.owner is not None and lease.held(now):
            out.setdefault(lease.owner, []).append(lease)
    return out


def holdings(held: Sequence[Lease], now: float) -> dict[str, Any]:
    """What one replica holds, as ``aiops cluster`` and the API show it: how many checks, and the age of its
    youngest and oldest lease (a young one was just claimed: a takeover or a rebalance)."""
    ages = [lease.age(now) for lease in held]
    return {
        "checks_owned": len(held),
        "lease_age_min": round(min(ages), 3) if ages else None,
        "lease_age_max": round(max(ages), 3) if ages else None,
    }
