"""Outbox rows are claimed before they are sent (real SQLite store): one claimer wins, a live claim keeps the
others out until it lapses, a dead local claimer's row is taken over at once, and a sent row is never claimed."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from aiops.store.store import Store, owner_is_dead

LIVE_ELSEWHERE = "node-b:4242:1000.000"  # another host: only its claim's expiry can free the row
DEAD_HERE = f"{socket.gethostname()}:999999999:1.000"  # this host, no such process


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = Store(f"sqlite:///{tmp_path}/aiops.db")
    s.migrate()
    s.enqueue_notification(
        {
            "notifier": "hook",
            "dedup_key": "k1",
            "incident_id": None,
            "event": "firing",
            "payload": {},
            "state": "pending",
            "attempts": 0,
            "next_attempt_at": 0.0,
            "created_at": 0.0,
        }
    )
    yield s
    s.close()


def test_one_claimer_wins_until_the_claim_lapses(store: Store) -> None:
    assert store.claim_notification(1, LIVE_ELSEWHERE, 220.0, 100.0)
    assert not store.claim_notification(1, "node-c:1:1.0", 320.0, 200.0)  # claim still live
    assert store.claim_notification(1, LIVE_ELSEWHERE, 330.0, 210.0)  # the holder may renew
    assert store.claim_notification(1, "node-c:1:1.0", 450.0, 331.0)  # lapsed: taken over


def test_a_dead_local_claimer_is_taken_over_at_once_and_a_sent_row_never(store: Store) -> None:
    assert owner_is_dead(DEAD_HERE)
    assert store.claim_notification(1, DEAD_HERE, 220.0, 100.0)
    assert not store.claim_notification(1, LIVE_ELSEWHERE, 320.0, 101.0)
    assert store.claim_notification(1, LIVE_ELSEWHERE, 320.0, 101.0, dead_owner=DEAD_HERE)
    store.update_notification(1, {"state": "sent"})
    assert not store.claim_notification(1, LIVE_ELSEWHERE, 500.0, 400.0)
