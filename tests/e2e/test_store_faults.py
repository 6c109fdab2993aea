"""Store faults under a live daemon, while a remediation runs: the SQLite file turns read-only (immutable, so
even root cannot write it), the disk under it fills up then is freed (a small tmpfs: the tests run as root,
locally and in CI), or PostgreSQL is stopped for 10 s. ``/readyz`` must answer 503 at once and 200
again after recovery; the action's outcome, which could not be written during the fault, is written by
the same live daemon afterwards (never "left running by a dead process", never "interrupted"), writes
resume without a restart, and the incident ends resolved with one execution and one message each.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import requests

from tests.e2e.crash import TOKEN, Life
from tests.servers import postgres_cluster

pytestmark = pytest.mark.slow

HEAL_SECONDS = 2.0


def _readyz(life: Life) -> int:
    try:
        return requests.get(f"{life.daemon.url}/readyz", timeout=2).status_code
    except requests.RequestException:
        return 0


def _wait(predicate: Callable[[], bool], timeout: float, what: str, life: Life) -> float:
    started = time.monotonic()
    while not predicate():
        assert time.monotonic() - started < timeout, f"{what} not within {timeout}s:\n{life.daemon.logs()}"
        time.sleep(0.05)
    return time.monotonic() - started


def _action_running(life: Life) -> bool:
    """An action past "handle before go": running with its handle saved. Before that the side effect
    rightly waits for a writable store, so a fault then would only show that the daemon waits."""
    try:
        resp = requests.get(
            f"{life.daemon.url}/api/v1/actions",
            params={"state": "running"},
            headers={"Authorization": f"Bearer {TOKEN}"},
            timeout=2,
        )
    except requests.RequestException:
        return False
    return resp.status_code == 200 and any(a.get("handle") for a in resp.json()["actions"])


def _outage(life: Life, fault_on: Callable[[], None], fault_off: Callable[[], None], hold: float) -> None:
    life.daemon.start(wait_ready=True)
    _wait(lambda: _action_running(life), 30, "an action running", life)
    fault_on()
    try:
        took = _wait(lambda: _readyz(life) == 503, 5, "/readyz 503", life)
        assert took < 1.0  # readiness proves a write, so it fails on the first probe during the fault
        executed = life.work / "executions.log"
        _wait(executed.exists, 30, "the remediation finishing", life)
        time.sleep(hold)  # the outcome's write fails meanwhile and is retried
    finally:
        fault_off()
    _wait(lambda: _readyz(life) == 200, 15, "/readyz 200 after recovery", life)
    _wait(life.done, 30, "the incident resolved and its messages sent", life)
    assert life.daemon.terminate() == 0
    end = life.collect()
    logs = life.daemon.log_path.read_text()
    assert end.final_state == "resolved", logs[-4000:]
    assert end.action_states == ("succeeded",)
    assert end.executions == 1
    assert not end.interrupted
    assert end.messages == {"firing": 1, "resolved": 1}
    assert "cannot record the action's outcome yet" in logs  # the fault did hit the final write
    assert "adopting action" not in logs


def _chattr(flag: str, paths: list[Path]) -> None:
    for path in paths:
        if path.exists():
            subprocess.run(["chattr", flag, str(path)], check=True, capture_output=True)


def test_sqlite_read_only_then_writable(tmp_path: Path) -> None:
    life = Life(tmp_path, f"sqlite:///{tmp_path}/aiops.db", "auto", heal_seconds=HEAL_SECONDS)
    files = [tmp_path / "aiops.db", tmp_path / "aiops.db-wal"]  # not -shm: it is memory-mapped
    try:
        _outage(life, lambda: _chattr("+i", files), lambda: _chattr("-i", files), hold=1.5)
    finally:
        _chattr("-i", files)
        life.close()


def test_sqlite_disk_full_then_freed(tmp_path: Path) -> None:
    disk = tmp_path / "disk"
    disk.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(disk)], check=True, capture_output=True)
    life = Life(tmp_path, f"sqlite:///{disk}/aiops.db", "auto", heal_seconds=HEAL_SECONDS)
    filler = disk / "filler"
    try:
        _outage(life, lambda: _fill(disk / "aiops.db", filler), filler.unlink, hold=1.5)
    finally:
        life.close()
        subprocess.run(["umount", "-l", str(disk)], check=False, capture_output=True)


def _fill(db: Path, filler: Path) -> None:
    """Empty the WAL into the database (a TRUNCATE checkpoint), then fill the disk to the last byte.

    Why the checkpoint first: SQLite reuses a WAL's space once it is checkpointed, so with a WAL already
    grown a full disk would not stop small writes, and the test would prove nothing. With the WAL emptied,
    the daemon's next commit must grow it, as after any checkpoint on a real full disk."""
    with sqlite3.connect(db, timeout=30) as conn:
        while conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0]:  # 1: a reader was in the way
            time.sleep(0.01)
    conn.close()
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT)
    try:
        for size in (1 << 20, 4096, 1):  # down to single bytes: a block left free would take a few commits
            try:
                while True:
                    os.write(fd, b"\0" * size)
            except OSError:
                pass
    finally:
        os.close(fd)


def test_postgres_stopped_then_restarted(tmp_path: Path) -> None:
    with postgres_cluster() as cluster:
        life = Life(tmp_path, cluster.url, "auto", heal_seconds=HEAL_SECONDS)
        try:
            started: list[float] = []

            def stop() -> None:
                started.append(time.monotonic())
                cluster.halt()

            def restart() -> None:
                time.sleep(max(0.0, 10.0 - (time.monotonic() - started[0])))  # down for 10 s in all
                cluster.restart()

            _outage(life, stop, restart, hold=1.5)
        finally:
            life.close()
