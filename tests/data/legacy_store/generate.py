"""Write the legacy-store fixtures: a store made by aiops before Alembic (``aiops_meta.schema_version = 4``,
hand-written migrations), with data in every table, dumped as text SQL for SQLite and for PostgreSQL.

The upgrade tests load these dumps and open them with today's code, so the fixture must come from the OLD
code, not from this checkout. Regenerate (only if the old release's schema itself is in question) with the
pre-Alembic sources on the path::

    git archive 68e78aa aiops | tar -x -C /tmp/legacy-src
    PYTHONPATH=/tmp/legacy-src .venv/bin/python tests/data/legacy_store/generate.py \\
        --postgres postgresql+psycopg://postgres@127.0.0.1:PORT/postgres

It writes ``sqlite.sql`` and ``postgresql.sql`` beside itself. Only the old public ``Store`` API is used, so
the rows are exactly what the old daemon would have written.
"""

from __future__ import annotations

import argparse
import sqlite3
import subprocess
import tempfile
import uuid
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
T0 = 1_700_000_000.0


def _incident(fingerprint: str, check: str, state: str, at: float) -> dict[str, Any]:
    return {
        "fingerprint": fingerprint,
        "check_name": check,
        "labels": {"series": f"{check}:p99", "model": "ranker"},
        "state": state,
        "severity": "critical",
        "kind": "detector:anomaly",
        "summary": f"{check} p99 is high",
        "evidence": {"value": 2.5, "score": 0.97, "baseline": [0.2, 0.21, 0.19]},
        "opened_at": at,
        "updated_at": at,
        "last_seen_at": at,
        "rung": 0,
        "attempts": 0,
        "healthy_ticks": 0,
        "notified_firing": False,
    }


def _action(key: str, incident_id: int, check: str, state: str, at: float) -> dict[str, Any]:
    return {
        "idempotency_key": key,
        "incident_id": incident_id,
        "check_name": check,
        "rung": 0,
        "action_type": "rollback",
        "action_label": "rollback",
        "mode": "auto",
        "target": "model:ranker",
        "plan": {"action": "rollback", "description": "roll ranker back to v6", "target": "model:ranker"},
        "state": state,
        "runs": 0,
        "created_at": at,
        "updated_at": at,
    }


def _message(notifier: str, key: str, incident_id: int, event: str, at: float) -> dict[str, Any]:
    return {
        "notifier": notifier,
        "dedup_key": key,
        "incident_id": incident_id,
        "event": event,
        "payload": {"title": f"[{event.upper()}] latency", "text": "p99 is high", "severity": "critical"},
        "state": "pending",
        "attempts": 0,
        "next_attempt_at": at,
        "created_at": at,
    }


def populate(store: Any) -> None:
    """One incident healed by a rollback (resolved), one waiting for approval, one still pending."""
    assert store.migrate() == 4, "run with the pre-Alembic sources on PYTHONPATH (see the docstring)"
    healed = store.create_incident(_incident("fp-latency", "latency", "firing", T0), "detector:default", "p99 high")
    hid = int(healed["id"])
    store.enqueue_notification(_message("oncall", f"{hid}:firing", hid, "firing", T0))
    store.update_notification(1, {"state": "sent", "sent_at": T0 + 1, "attempts": 1})
    act = store.create_action(_action(f"{hid}:0:rollback", hid, "latency", "pending", T0 + 2))
    store.update_incident(
        hid, {"attempts": 1}, transition=("remediating", "policy", "rung 0: rollback", {}), now=T0 + 2
    )
    store.claim_action(int(act["id"]), "host:123:1.0", T0 + 60, T0 + 3, from_states=["pending"])
    store.update_action(
        int(act["id"]),
        {
            "state": "succeeded",
            "finished_at": T0 + 5,
            "handle": {"run_id": "r-1"},
            "outcome": {"ok": True, "detail": "ranker v6 serving"},
        },
        T0 + 5,
    )
    store.update_incident(
        hid,
        {"verify_started_at": T0 + 5, "verify_deadline": T0 + 65},
        transition=("verifying", "executor", "ran", {}),
        now=T0 + 5,
    )
    store.update_incident(
        hid,
        {"resolved_at": T0 + 30, "healthy_ticks": 3},
        transition=("resolved", "verifier", "healed", {"p99": 0.2}),
        now=T0 + 30,
    )
    store.enqueue_notification(_message("oncall", f"{hid}:resolved", hid, "resolved", T0 + 30))

    waiting = store.create_incident(_incident("fp-drift", "drift", "firing", T0 + 40), "detector:ks", "drift")
    wid = int(waiting["id"])
    approval = _action(f"{wid}:0:rollback", wid, "drift", "awaiting_approval", T0 + 41)
    approval.update(mode="approve", approval_deadline=T0 + 941)
    store.create_action(approval)
    queued = _message("oncall", f"{wid}:firing", wid, "firing", T0 + 40)
    queued.update(group_key="oncall|check=drift", route={"group_wait": 30.0, "repeat_interval": 3600.0})
    store.enqueue_notification(queued)
    store.create_incident(_incident("fp-volume", "volume", "pending", T0 + 50), "detector:volume", "few rows")

    store.save_check_state("latency", T0 + 30, {"p99": {"mean": 0.2, "var": 0.01, "n": 1200}}, {"cursor": 42}, T0 + 30)
    store.save_check_state("drift", None, {}, {"cursor": 7}, T0 + 40)
    store.append_events(
        [{"stream": "pushed", "kind": "point", "name": "p99", "ts": T0 + i, "value": 0.2 + i / 100} for i in range(3)],
        T0 + 3,
    )
    store.put_breaker("rollback", {"state": "closed", "failures": 0, "last_reason": "healed"}, T0 + 30)
    store.add_silence(
        {
            "matchers": ["check=volume"],
            "starts_at": T0,
            "ends_at": T0 + 7200,
            "created_by": "alice",
            "comment": "backfill",
            "created_at": T0,
        }
    )
    store.set_flag("paused", "0")


def write_sqlite(out: Path) -> None:
    from aiops.store.store import Store

    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "legacy.db"
        store = Store(f"sqlite:///{db}")
        populate(store)
        store.close()
        conn = sqlite3.connect(db)
        try:
            lines = [line for line in conn.iterdump() if line not in ("BEGIN TRANSACTION;", "COMMIT;")]
        finally:
            conn.close()
    out.write_text("\n".join(lines) + "\n")


def write_postgres(base_url: str, out: Path) -> None:
    import sqlalchemy as sa

    from aiops.store.store import Store

    name = "legacy_" + uuid.uuid4().hex[:8]
    admin = sa.create_engine(base_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    url = sa.make_url(base_url).set(database=name)
    try:
        store = Store(url.render_as_string(hide_password=False))
        populate(store)
        store.close()
        dump = subprocess.run(
            [
                "pg_dump",
                "--inserts",
                "--no-owner",
                "--no-privileges",
                "--no-comments",
                f"--host={url.host}",
                f"--port={url.port}",
                f"--username={url.username}",
                name,
            ],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}"'))
        admin.dispose()
    # Keep what a plain SQL client can run: no psql meta-commands, no comment lines or blank runs.
    kept = [line for line in dump.splitlines() if line and not line.startswith(("--", "\\"))]
    out.write_text("\n".join(kept) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--postgres", required=True, help="URL of a PostgreSQL server to build the dump on")
    args = parser.parse_args()
    write_sqlite(HERE / "sqlite.sql")
    write_postgres(args.postgres, HERE / "postgresql.sql")


if __name__ == "__main__":
    main()
