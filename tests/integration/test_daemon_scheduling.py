"""The daemon's scheduling tells the truth: a check that runs longer than its interval has its skipped runs
counted and raised as ``check_overrun``, and its duration covers the whole run; a replica whose workers are all
busy raises one ``check_overrun`` of its own, not one per check."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest
from prometheus_client import generate_latest

from aiops.config.loader import load_config
from aiops.daemon import Daemon
from aiops.engine.capacity import REPLICA_CHECK
from aiops.store.records import Incident
from tests.e2e.daemon import wait_for

CONFIG = """
store: {{url: "sqlite:///{work}/aiops.db"}}
state_dir: {work}/state
server: {{listen: "127.0.0.1:0"}}
checks:
  - name: slow
    every: 0.5s
    timeout: 5s
    source: {{type: scripted, channel: slow, hang_seconds: 1.6}}
    detectors: [{{type: threshold, above: 100}}]
    policy: {{}}
"""

FULL = """
store: {{url: "sqlite:///{work}/aiops.db"}}
state_dir: {work}/state
server: {{listen: "127.0.0.1:0"}}
workers: 1
checks:
{checks}
"""
SHORT_CHECK = """  - name: short{i}
    every: 0.5s
    source: {{type: scripted, channel: short{i}, hang_seconds: 0.2}}
    detectors: [{{type: threshold, above: 100}}]
"""


pytestmark = pytest.mark.usefixtures("test_plugins")


def _incidents(daemon: Daemon, kind: str) -> list[Incident]:
    return [i for i in daemon.store.list_incidents() if i.kind == kind]


def _metric(daemon: Daemon, pattern: str) -> float:
    text = generate_latest(daemon.registry).decode()
    found = re.search(pattern, text, re.M)
    return float(found.group(1)) if found else 0.0


def test_a_check_longer_than_its_interval_is_counted_and_raised(tmp_path: Path) -> None:
    path = tmp_path / "aiops.yaml"
    path.write_text(CONFIG.format(work=tmp_path))
    daemon = Daemon(load_config(path))
    daemon.start()
    try:
        skipped = r'^aiops_check_ticks_skipped_total\{check="slow"\} (\S+)$'
        wait_for(lambda: _metric(daemon, skipped) >= 2, 30, "skipped runs to be counted")
        wait_for(lambda: _incidents(daemon, "check_overrun"), 30, "a check_overrun incident")
        runs = _metric(daemon, r'^aiops_check_duration_seconds_count\{check="slow"\} (\S+)$')
        total = _metric(daemon, r'^aiops_check_duration_seconds_sum\{check="slow"\} (\S+)$')
        assert runs >= 1 and total / runs >= 1.5  # the whole run, not the 2 ms after the source returned
    finally:
        daemon.shutdown()


def test_a_replica_whose_workers_are_all_busy_raises_one_incident_of_its_own(tmp_path: Path) -> None:
    """Four checks each needing 0.2 s of a worker every 0.5 s, one worker: runs wait for it and are skipped."""
    path = tmp_path / "aiops.yaml"
    path.write_text(FULL.format(work=tmp_path, checks="".join(SHORT_CHECK.format(i=i) for i in range(4))))
    daemon = Daemon(load_config(path))
    daemon.start()
    try:

        def mine() -> list[Incident]:
            return [i for i in daemon.store.list_incidents() if i.check_name == REPLICA_CHECK]

        wait_for(mine, 30, "the replica's check_overrun incident")
        time.sleep(2.0)  # more skips of every check: still the one incident, sighted at most once a minute
        incidents = mine()
        assert [(i.kind, i.labels["replica"], i.state.value) for i in incidents] == [
            ("check_overrun", daemon.owner, "firing")
        ]
        assert "all 1 of its workers were busy" in incidents[0].summary
    finally:
        daemon.shutdown()
