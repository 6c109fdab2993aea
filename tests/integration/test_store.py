"""The durable store on SQLite *and* a real PostgreSQL: migrations, audit trail, ledger claims, outbox."""

from __future__ import annotations

import json
import subprocess
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from aiops.store import schema
from aiops.store.migrations import head_revisions
from aiops.store.records import Action, Incident
from aiops.store.store import Store, default_owner, owner_is_dead
from aiops.types import json_safe


@pytest.fixture(params=["sqlite", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    if request.param == "sqlite":
        s = Store(f"sqlite:///{tmp_path}/store.db")
    else:
        base: str = request.getfixturevalue("postgres_url")
        name = "t_" + uuid.uuid4().hex[:12]
        admin = sa.create_engine(base, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
        admin.dispose()
        s = Store(base.rsplit("/", 1)[0] + "/" + name)
    s.migrate()
    yield s
    s.close()


def _incident(store: Store, fp: str = "fp1", now: float = 100.0) -> Incident:
    return store.create_incident(
        {
            "fingerprint": fp,
            "check_name": "c",
            "labels": {"series": "x"},
            "state": "firing",
            "severity": "warning",
            "kind": "detector:anomaly",
            "summary": "x is high",
            "evidence": {"value": float("nan"), "score": 0.9},
            "opened_at": now,
            "updated_at": now,
            "last_seen_at": now,
            "rung": 0,
            "attempts": 0,
            "healthy_ticks": 0,
            "notified_firing": False,
        },
        actor="detector:test",
        reason="x is high",
    )


def _action(store: Store, incident_id: int, key: str = "k1") -> Action:
    return store.create_action(
        {
            "idempotency_key": key,
            "incident_id": incident_id,
            "check_name": "c",
            "rung": 0,
            "action_type": "command",
            "action_label": "command",
            "mode": "auto",
            "target": "svc",
            "plan": {"action": "command", "description": "restart", "target": "svc", "details": {}},
            "state": "pending",
            "runs": 0,
            "created_at": 1.0,
            "updated_at": 1.0,
        }
    )


def test_migrate_is_idempotent(store: Store) -> None:
    head = ",".join(head_revisions())
    assert store.migrate() == head
    assert store.schema_revision() == head
    assert store.ping()


def test_incident_and_audit_trail_are_written_together(store: Store) -> None:
    inc = _incident(store)
    assert inc.evidence["value"] is None  # NaN is stored as null, never breaks JSON
    store.update_incident(
        inc.id, {"attempts": 1}, transition=("remediating", "policy", "run", {"a": 1}), now=101
    )
    trail = store.transitions(inc.id)
    assert [(t.from_state, t.to_state) for t in trail] == [(None, "firing"), ("firing", "remediating")]
    assert store.open_incident("fp1").state == "remediating"
    assert store.incident_counts()["remediating"] == 1
    store.update_incident(inc.id, {}, transition=("resolved", "verifier", "ok", {}), now=102)
    assert store.open_incident("fp1") is None


def test_idempotency_key_is_unique(store: Store) -> None:
    inc = _incident(store)
    first = _action(store, inc.id)
    again = _action(store, inc.id)
    assert first.id == again.id
    assert len(store.list_actions()) == 1


def test_exactly_one_claimer_wins(store: Store) -> None:
    inc = _incident(store)
    action = _action(store, inc.id)
    wins: list[str] = []

    def claim(owner: str) -> None:
        if store.claim_action(action.id, owner, 999.0, 2.0, from_states=["pending"]):
            wins.append(owner)

    threads = [threading.Thread(target=claim, args=(f"o{i}",)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(wins) == 1
    row = store.get_action(action.id)
    assert row is not None and row.state == "running" and row.lease_owner == wins[0] and row.runs == 1


def test_steal_is_compare_and_set(store: Store) -> None:
    inc = _incident(store)
    action = _action(store, inc.id)
    assert store.claim_action(action.id, "dead", 5.0, 2.0, from_states=["pending"])
    assert store.steal_action(action.id, "dead", "me", 50.0, 6.0)
    assert not store.steal_action(action.id, "dead", "you", 50.0, 6.0)


def test_records_serialise_exactly_as_the_raw_rows_did(store: Store) -> None:
    """The API, the CLI and the console show ``to_json()`` of a record; it must be the JSON of the row as
    the store held it (same keys, same order, same values), so clients see no change."""
    inc = _incident(store)
    action = _action(store, inc.id)
    store.enqueue_notification(
        {
            "notifier": "n",
            "dedup_key": "d1",
            "incident_id": inc.id,
            "event": "firing",
            "payload": {"title": "x", "incident": {"id": inc.id}},
            "state": "pending",
            "attempts": 0,
            "next_attempt_at": 0.0,
            "created_at": 0.0,
        }
    )
    [message] = store.list_notifications()
    for record, table in ((inc, schema.incidents), (action, schema.actions), (message, schema.outbox)):
        with store.engine.connect() as conn:
            row = conn.execute(sa.select(table).where(table.c.id == record.id)).one()
        raw = json.dumps(json_safe(dict(row._mapping)))
        assert json.dumps(record.to_json()) == raw, table.name


def test_outbox_dedups_by_notifier_and_key(store: Store) -> None:
    inc = _incident(store)
    row = {
        "notifier": "n",
        "dedup_key": "d1",
        "incident_id": inc.id,
        "event": "firing",
        "payload": {"x": 1},
        "state": "pending",
        "attempts": 0,
        "next_attempt_at": 0.0,
        "created_at": 0.0,
    }
    assert store.enqueue_notification(row)
    assert not store.enqueue_notification(row)
    assert store.enqueue_notification({**row, "notifier": "other"})
    assert len(store.pending_notifications()) == 2
    assert store.outbox_pending() == 2


def test_a_group_of_one_is_flushed_as_it_is(store: Store) -> None:
    """A group whose wait ended with one message releases that message unchanged (nothing to combine). An
    empty update of the carrier was invalid SQL on both stores, which stopped every group flush for good."""
    inc = _incident(store)
    message = {
        "notifier": "n",
        "dedup_key": "d1",
        "incident_id": inc.id,
        "event": "firing",
        "payload": {"title": "x"},
        "state": "pending",
        "attempts": 0,
        "next_attempt_at": 0.0,
        "created_at": 0.0,
        "group_key": "g",
    }
    assert store.enqueue_notification(message)
    [pending] = store.pending_notifications()
    assert store.flush_group(pending.id, [], {}, "n", "g", 5.0)
    [flushed] = store.pending_notifications()
    assert flushed.group_key is None and store.group_flushed_at("n", "g") == 5.0


def test_check_state_round_trip(store: Store) -> None:
    store.save_check_state("c", 5.0, {"d": {"n": 1}}, {"offset": 10}, 6.0)
    store.save_check_state("c", 7.0, {"d": {"n": 2}}, {"offset": 20}, 8.0)
    row = store.load_check_state("c")
    assert row is not None and row.since == 7.0 and row.updated_at == 8.0
    assert row.detector_state == {"d": {"n": 2}} and row.source_state == {"offset": 20}


def test_flags(store: Store) -> None:
    assert store.get_flag("paused", "0") == "0"
    store.set_flag("paused", "1")
    assert store.get_flag("paused") == "1"


def test_owner_is_dead_for_gone_process() -> None:
    import socket

    assert owner_is_dead(f"{socket.gethostname()}:999999999:1.0")
    assert not owner_is_dead("elsewhere:1:1.0")


def test_an_owner_id_of_an_earlier_release_is_judged_by_its_start_time() -> None:
    """An id without a boot identity (written by an earlier release): the start time read back moves by whole
    seconds when the wall clock is stepped, still this process; one minutes apart is another (a reused pid)."""
    host, pid, started = default_owner().rsplit(":", 2)
    started = started.partition("@")[0]
    for step in (-1.0, 1.0, 2.0):
        assert not owner_is_dead(f"{host}:{pid}:{float(started) + step:.3f}")
    assert owner_is_dead(f"{host}:{pid}:{float(started) - 300:.3f}")


def test_sqlite_connection_opened_read_only_is_discarded(tmp_path: Path) -> None:
    """A connection opened while the file was read-only stays read-only for good; the store must drop it
    on the first failed write, so writes resume by themselves once the file is writable again."""
    store = Store(f"sqlite:///{tmp_path}/store.db")
    store.migrate()
    store.engine.dispose()  # the next connection is opened during the fault
    files = [p for p in (tmp_path / "store.db", tmp_path / "store.db-wal") if p.exists()]
    for p in files:
        subprocess.run(["chattr", "+i", str(p)], check=True)
    try:
        assert store.probe_write(1.0) is not None
    finally:
        for p in files:
            subprocess.run(["chattr", "-i", str(p)], check=True)
    assert store.probe_write(2.0) is None
    assert store.get_flag("ready_probe") == "2.0"
    store.close()
