"""Membership rows on a real SQLite store: a second live daemon is refused and named, two daemons joining at
the same instant leave exactly one, a stale row blocks nobody, and a beat re-registers a removed row."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from aiops.cluster.membership import PRUNE_AFTER, STALE_AFTER, Membership, StoreInUse, members
from aiops.store.store import Store

# Replica ids on another host: only their heartbeat can tell whether they live (as for real remote replicas).
FIRST, SECOND = "node-a:101:1000.000", "node-b:202:1001.000"


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = Store(f"sqlite:///{tmp_path}/aiops.db")
    s.migrate()
    yield s
    s.close()


def test_a_second_live_daemon_on_sqlite_is_refused_and_named(store: Store) -> None:
    clock = Clock(1000.0)
    Membership.join(store, FIRST, "127.0.0.1:9464", clock)
    clock.now = 1001.0
    with pytest.raises(StoreInUse, match=r"pid 101 on node-a, running since 1970-01-01T00:16:40\+00:00"):
        Membership.join(store, SECOND, "127.0.0.1:9465", clock)
    assert [m.replica for m in members(store)] == [FIRST]  # the refused one left no row behind


def test_two_daemons_joining_at_once_leave_exactly_one(store: Store) -> None:
    clock = Clock(1000.0)
    first, second = Membership(store, FIRST, "a", clock), Membership(store, SECOND, "b", clock)
    second.started_at = first.started_at  # the same instant: the replica id breaks the tie
    first.beat()
    second.beat()  # both registered before either looked
    first._refuse_a_second_daemon()
    with pytest.raises(StoreInUse):
        second._refuse_a_second_daemon()
    assert [m.replica for m in members(store)] == [FIRST]


def test_a_stale_row_blocks_nobody_and_is_pruned(store: Store) -> None:
    clock = Clock(1000.0)
    Membership.join(store, FIRST, "a", clock)  # then it died without leaving
    clock.now = 1000.0 + STALE_AFTER + 1
    joined = Membership.join(store, SECOND, "b", clock)
    assert [m.replica for m in members(store)] == [SECOND]
    view = joined.view()
    assert view[0]["alive"] is True and view[0]["heartbeat_age"] == 0.0 and view[0]["pid"] == 202


def test_beats_keep_the_heartbeat_fresh_and_re_register(store: Store) -> None:
    clock = Clock(1000.0)
    member = Membership.join(store, FIRST, "a", clock)
    clock.now = 1002.0
    member.tick()  # within the interval: no write
    assert members(store)[0].heartbeat_at == 1000.0
    clock.now = 1006.0
    member.tick()
    assert members(store)[0].heartbeat_at == 1006.0
    member.leave()
    assert members(store) == []
    clock.now = 1012.0
    member.tick()  # removed by hand (or pruned while it was paused): it registers again
    assert [m.heartbeat_at for m in members(store)] == [1012.0]


def test_replicas_dead_for_long_are_pruned_by_a_survivor(store: Store) -> None:
    clock = Clock(1000.0)
    Membership(store, FIRST, "a", clock).beat()  # then it died without leaving
    clock.now = 1000.0 + PRUNE_AFTER - 1
    survivor = Membership(store, SECOND, "b", clock)
    survivor.beat()
    assert [m.replica for m in members(store)] == [FIRST, SECOND]  # lost, still listed (and alerted on)
    clock.now = 1000.0 + PRUNE_AFTER + 1
    survivor.beat()
    assert [m.replica for m in members(store)] == [SECOND]
