"""Check leases on SQLite and a real PostgreSQL: fair shares, rebalancing on join and leave, takeover after a
missed renewal with a newer fencing token, and fenced writes refused once a newer token exists."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from aiops.cluster.leases import CHECK, Leases, leases
from aiops.errors import LeaseLost
from aiops.store import schema as t
from aiops.store.store import Store
from tests.servers import create_database

CHECKS = [f"c{i:02d}" for i in range(10)]
LEASE = 15.0


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture(params=["sqlite", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    yield from _open(request, tmp_path)


@pytest.fixture(params=["postgres"])
def row_locking_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    """Only PostgreSQL: SQLite has one writer and no row locks, so there is nothing to skip or wait for."""
    yield from _open(request, tmp_path)


def _open(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    url = (
        f"sqlite:///{tmp_path}/store.db"
        if request.param == "sqlite"
        else create_database(request.getfixturevalue("postgres_url"))
    )
    s = Store(url)
    s.migrate()
    yield s
    s.close()


class Cluster:
    """Replicas sharing one store and one (fake) clock; ``alive`` is what their membership would report."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.clock = Clock(1000.0)
        self.alive: set[str] = set()
        self.replicas: dict[str, Leases] = {}

    def join(self, name: str) -> Leases:
        self.alive.add(name)
        self.replicas[name] = Leases(
            self.store, name, LEASE, now=self.clock, monotonic=self.clock, live=lambda _within: set(self.alive)
        )
        return self.replicas[name]

    def rounds(self, count: int = 1) -> None:
        for _ in range(count):
            for name in sorted(self.alive):
                self.replicas[name].round(CHECKS)
            self.clock.now += LEASE / 3

    def shares(self) -> dict[str, int]:
        return {name: len(self.replicas[name].owned()) for name in sorted(self.alive)}


def owners(store: Store) -> dict[str, str | None]:
    return {lease.name: lease.owner for lease in leases(store)}


def test_one_replica_owns_every_check(store: Store) -> None:
    cluster = Cluster(store)
    alone = cluster.join("a")
    cluster.rounds()
    assert alone.owned() == CHECKS
    assert {lease.token for lease in leases(store)} == {1}
    cluster.rounds(3)  # renewals keep the token
    assert {lease.token for lease in leases(store)} == {1}


def test_joining_and_leaving_rebalance_to_fair_shares_without_gaps(store: Store) -> None:
    cluster = Cluster(store)
    cluster.join("a")
    cluster.rounds()
    cluster.join("b")
    cluster.rounds(2)
    assert cluster.shares() == {"a": 5, "b": 5}
    cluster.join("c")
    cluster.rounds(3)
    shares = cluster.shares()
    assert sum(shares.values()) == len(CHECKS) and max(shares.values()) <= 4  # ceil(10 / 3)
    assert min(shares.values()) >= 2  # the newcomer got the checks the others gave up
    held = owners(store)
    assert all(owner is not None for owner in held.values())
    cluster.replicas["c"].release_all()  # a clean stop
    cluster.alive.discard("c")
    cluster.rounds()
    assert cluster.shares() == {"a": 5, "b": 5}


def test_a_replica_that_stops_renewing_loses_its_checks_with_a_newer_token(store: Store) -> None:
    cluster = Cluster(store)
    a, b = cluster.join("a"), cluster.join("b")
    cluster.rounds(2)
    a_checks = a.owned()
    fence = a.fence(a_checks[0])
    assert fence is not None and fence.owner == "a"
    cluster.alive.discard("a")  # paused: no renewals, no heartbeat
    cluster.clock.now += LEASE  # one lease period later
    assert a.fence(a_checks[0]) is None  # the holder itself stops acting before anyone can claim
    b.round(CHECKS)
    assert b.owned() == CHECKS
    tokens = {lease.name: lease.token for lease in leases(store)}
    assert tokens[a_checks[0]] == fence.token + 1
    # the paused replica wakes up mid-tick: its writes are refused, whole
    with pytest.raises(LeaseLost, match="lease taken over"), store.fenced(fence), store.transaction():
        store.set_flag("zombie", "1")
    assert store.get_flag("zombie") == ""
    # the new owner's writes go through, and a round tells the old one what it lost
    with store.fenced(b.fence(a_checks[0])):
        store.set_flag("owner", "b")
    assert store.get_flag("owner") == "b"
    cluster.alive.add("a")
    lost = a.round(CHECKS)
    assert set(lost.lost) == set(a_checks)


def test_claims_skip_rows_locked_by_another_transaction(row_locking_store: Store) -> None:
    """A lease row share-locked by a fenced unit of work is skipped by a claim, not waited for (PostgreSQL)."""
    store = row_locking_store
    cluster = Cluster(store)
    a = cluster.join("a")
    a.round(CHECKS)
    fence = a.fence(CHECKS[0])
    assert fence is not None
    with store.engine.begin() as conn:
        conn.execute(sa.update(t.leases).where(t.leases.c.kind == CHECK).values(expires_at=0.0))
    cluster.alive.discard("a")
    b = cluster.join("b")
    with store.fenced(fence), store.transaction():
        other = Store(store.url)
        try:
            claimed = Leases(other, "b", LEASE, now=cluster.clock, monotonic=cluster.clock, live=lambda _w: {"b"})
            claimed.round(CHECKS)
            assert CHECKS[0] not in claimed.owned()
            assert len(claimed.owned()) == len(CHECKS) - 1
        finally:
            other.close()
    assert b.replica == "b"


def test_the_holders_renewals_do_not_wait_for_its_fenced_ticks(row_locking_store: Store) -> None:
    """The fence's row lock (FOR KEY SHARE) lets the holder renew while a tick's unit of work is open."""
    store = row_locking_store
    cluster = Cluster(store)
    a = cluster.join("a")
    a.round(CHECKS)
    fence = a.fence(CHECKS[0])
    assert fence is not None
    other = Store(store.url)
    renewer = Leases(other, "a", LEASE, now=cluster.clock, monotonic=cluster.clock, live=lambda _w: {"a"})
    done = threading.Event()
    try:
        with store.fenced(fence), store.transaction():
            worker = threading.Thread(target=lambda: (renewer.round(CHECKS), done.set()), daemon=True)
            worker.start()
            assert done.wait(10), "the renewal waited for the tick's transaction"
    finally:
        worker.join(10)
        other.close()
    assert renewer.owned() == CHECKS


def test_a_dead_local_holders_leases_are_claimed_at_once(store: Store) -> None:
    """A daemon restarted after a crash on the same host takes its predecessor's checks in its first round,
    not a lease period later: the holder's process is gone, which this host can tell for certain."""
    import socket
    import subprocess
    import sys

    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead_owner = f"{socket.gethostname()}:{int(gone.stdout)}:1.0"
    cluster = Cluster(store)
    predecessor = cluster.join(dead_owner)
    cluster.rounds()
    assert sorted(predecessor.owned()) == CHECKS
    cluster.alive.discard(dead_owner)  # its heartbeat stops with it; its leases are still unexpired
    successor = cluster.join("node-b:1:1.0")
    cluster.rounds()
    assert sorted(successor.owned()) == CHECKS
    holders = {lease.owner for lease in leases(store) if lease.kind == CHECK}
    assert holders == {"node-b:1:1.0"}
