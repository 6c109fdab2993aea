"""Replicas started together migrate one at a time: three real processes call ``Store.migrate()`` at the same
instant on an empty PostgreSQL database (ten rounds), on a store left by the last release before Alembic (a
rolling upgrade, three rounds) and on an empty SQLite store (three rounds). Every process must come up;
without the migration lock the losers died with ``DuplicateTable`` / ``UniqueViolation``."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from aiops.store import migrations
from tests.data.legacy_store.load import INCIDENTS, load_legacy_store
from tests.servers import create_database

REPLICAS = 3
SPACING = 0.75  # seconds between rounds: long enough for one round's three migrations on a loaded machine

# Each replica imports everything first, says so, then waits for the common start time on stdin, so that the
# three migrations of a round begin within milliseconds of each other.
WORKER = r"""
import json, sys, time
from aiops.store.store import Store
print("ready", flush=True)
start = float(sys.stdin.readline())
for i, url in enumerate(json.loads(sys.argv[1])):
    time.sleep(max(0.0, start + i * float(sys.argv[2]) - time.time()))
    began = time.perf_counter()
    store = Store(url)
    try:
        out = {"round": i, "ok": True, "revision": str(store.migrate())}
    except Exception as exc:
        out = {"round": i, "ok": False, "error": f"{type(exc).__name__}: {exc}"[:400]}
    finally:
        store.close()
    out["seconds"] = round(time.perf_counter() - began, 3)
    print(json.dumps(out), flush=True)
"""


def run_replicas(urls: list[str], cwd: Path) -> list[list[dict[str, Any]]]:
    """Start the replicas, release them together, and return each one's per-round results."""
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, json.dumps(urls), str(SPACING)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=cwd,
        )
        for _ in range(REPLICAS)
    ]
    try:
        for proc in procs:
            assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        start = time.time() + 0.2
        for proc in procs:
            assert proc.stdin is not None
            proc.stdin.write(f"{start}\n")
            proc.stdin.flush()
        results = []
        for proc in procs:
            out, err = proc.communicate(timeout=60 + len(urls) * SPACING * 4)
            assert proc.returncode == 0, err[-2000:]
            results.append([json.loads(line) for line in out.splitlines()])
        return results
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()


def assert_all_came_up(results: list[list[dict[str, Any]]], rounds: int) -> None:
    head = ",".join(migrations.head_revisions())
    failed = [r for replica in results for r in replica if not r["ok"]]
    assert failed == [], failed
    for replica in results:
        assert [r["round"] for r in replica] == list(range(rounds))
        assert {r["revision"] for r in replica} == {head}


def version_rows(url: str) -> list[str]:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return [str(v) for v in conn.execute(sa.text("SELECT version_num FROM aiops_alembic_version")).scalars()]
    finally:
        engine.dispose()


@pytest.mark.slow
@pytest.mark.postgres
def test_three_replicas_migrate_together_cold_and_rolling_on_postgres_and_sqlite(
    postgres_url: str, tmp_path: Path
) -> None:
    cold = [create_database(postgres_url) for _ in range(10)]
    rolling = [create_database(postgres_url) for _ in range(3)]
    for url in rolling:
        load_legacy_store(url)
    sqlite = [f"sqlite:///{tmp_path}/store-{i}.db" for i in range(3)]

    # The same three processes go through every round, one store per round, all three at the same instant.
    results = run_replicas(cold + rolling + sqlite, tmp_path)

    assert_all_came_up(results, len(cold + rolling + sqlite))
    head = list(migrations.head_revisions())
    for url in cold + rolling + sqlite:
        assert version_rows(url) == head
    for url in rolling:
        engine = sa.create_engine(url)
        with engine.connect() as conn:
            kept = conn.execute(sa.text("SELECT id, fingerprint, state FROM aiops_incidents ORDER BY id")).all()
        engine.dispose()
        assert {row.id: (row.fingerprint, row.state) for row in kept} == INCIDENTS
