"""Outbox rows are claimed before they are sent (real SQLite store): one claimer wins; the claim of a sender
that is alive is never taken, not even expired; a dead sender's claim is taken and its message sent again
under the same idempotency key; a delivered message whose record failed is recorded, never sent again."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from aiops.engine.outbox import OutboxDispatcher
from aiops.errors import StoreError
from aiops.store.store import Store, owner_is_dead
from aiops.testing import CapturingNotifier, register_test_plugins, unregister_test_plugins
from tests.unit.test_outbox_pipeline import Pipeline

LIVE_ELSEWHERE = "node-b:4242:1000.000"  # another host: only its heartbeat and its claim's expiry tell
DEAD_HERE = f"{socket.gethostname()}:999999999:1.000"  # this host, no such process


@pytest.fixture(autouse=True)
def _plugins() -> Iterator[None]:
    register_test_plugins()
    yield
    unregister_test_plugins()


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


def test_one_claimer_wins_and_a_claim_is_taken_only_from_the_holder_named(store: Store) -> None:
    assert store.claim_notification(1, LIVE_ELSEWHERE, 220.0)
    assert not store.claim_notification(1, "node-c:1:1.0", 320.0)  # held, expired or not: the caller decides
    assert store.claim_notification(1, LIVE_ELSEWHERE, 330.0)  # the holder may renew
    assert not store.claim_notification(1, "node-c:1:1.0", 450.0, taken_from="node-d:1:1.0")  # not the holder
    assert store.claim_notification(1, "node-c:1:1.0", 450.0, taken_from=LIVE_ELSEWHERE)
    store.update_notification(1, {"state": "sent"})
    assert not store.claim_notification(1, "node-e:1:1.0", 500.0, taken_from="node-c:1:1.0")  # sent: never


def _pending(p: Pipeline, holder: str, claim_until: float) -> int:
    """One pending firing message for ``chat``, claimed by ``holder`` until ``claim_until``."""
    p.notify(p.incident(), "firing")
    row = p.store.pending_notifications()[0]
    p.store.update_notification(row.id, {"claimed_by": holder, "claim_until": claim_until})
    return row.id


def test_an_expired_claim_of_a_live_sender_is_never_taken(tmp_path: Path) -> None:
    p = Pipeline(tmp_path)
    alive = {LIVE_ELSEWHERE}
    p.outbox = OutboxDispatcher(p.store, lambda: p.runtime, p.clock.now, alive=lambda r: r in alive)
    row_id = _pending(p, LIVE_ELSEWHERE, p.clock.now() - 1)  # expired: a send slower than the claim period
    p.run(5)
    assert p.got() == []  # its sender's heartbeat is fresh: it may be sending it right now
    alive.clear()  # the heartbeat went stale: the sender is presumed dead
    p.run(2)
    assert len(p.got()) == 1
    sent = p.store.get_notification(row_id)
    assert sent is not None and sent.state == "sent" and sent.claimed_by == p.outbox.owner


def test_a_dead_senders_message_is_sent_again_at_once_under_the_same_idempotency_key(tmp_path: Path) -> None:
    p = Pipeline(tmp_path)
    assert owner_is_dead(DEAD_HERE)
    row_id = _pending(p, DEAD_HERE, p.clock.now() + 3600)  # its claim would hold for an hour
    with capture_logs() as logs:
        p.run(1)
    capture: CapturingNotifier = p.runtime.notifiers["chat"]
    assert [m.idempotency_key for m in capture.messages] == [f"{capture.messages[0].dedup_key}/{row_id}"]
    resent = [e for e in logs if e["event"].startswith("sending again a message whose sender died")]
    assert [(e["dead_sender"], e["idempotency_key"]) for e in resent] == [
        (DEAD_HERE, capture.messages[0].idempotency_key)
    ]


def test_a_delivery_whose_record_failed_is_recorded_at_the_next_tick_and_not_sent_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    p = Pipeline(tmp_path)
    p.notify(p.incident(), "firing")
    real_update = p.store.update_notification
    refusals = []

    def refuse_the_sent_record_once(notification_id: int, values: dict[str, object]) -> None:
        if values.get("state") == "sent" and not refusals:
            refusals.append(notification_id)
            raise StoreError("store unreachable (test)")
        real_update(notification_id, values)

    monkeypatch.setattr(p.store, "update_notification", refuse_the_sent_record_once)
    with pytest.raises(StoreError):
        p.outbox.tick()  # delivered; the record of it refused
    assert len(p.got()) == 1 and [r.state for r in p.store.pending_notifications()] == ["pending"]
    p.run(3)
    assert len(p.got()) == 1  # recorded at the next tick, not sent again
    assert p.store.pending_notifications() == []
    row = p.store.get_notification(refusals[0])
    assert row is not None and row.state == "sent" and row.attempts == 1
