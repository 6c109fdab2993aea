"""A replica past its capacity (check runs skipped because no worker was free) raises one ``check_overrun``
incident for the replica, not one per check, sighted at most once a minute and resolved after a minute without
such skips. Simulated minutes on an injected clock, a real daemon object on a real SQLite store."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from aiops.config.loader import load_config
from aiops.daemon import Daemon
from aiops.engine.capacity import (
    QUIET_FOR,
    REPLICA_CHECK,
    REPORT_EVERY,
    CapacitySkips,
    Overloaded,
    Recovered,
    overloaded_finding,
)
from aiops.engine.slots import CheckSlots
from aiops.testing import CapturingNotifier, FakeClock

CHECKS = 12
CONFIG = """
store: {{url: "sqlite:///{work}/aiops.db"}}
state_dir: {work}/state
server: {{listen: "127.0.0.1:0"}}
notifiers:
  capture: {{type: capture}}
checks:
{checks}
"""
CHECK = """  - name: c{i:02d}
    every: 1s
    source: {{type: scripted, channel: c{i:02d}}}
    detectors: [{{type: threshold, above: 100}}]
    policy: {{notify: [capture]}}
"""


pytestmark = pytest.mark.usefixtures("test_plugins")


class Minutes:
    """An injected monotonic clock and wall clock that move together, a second at a time."""

    def __init__(self) -> None:
        self.wall = FakeClock()
        self.mono = 0.0

    def __call__(self) -> float:
        return self.mono

    def advance(self, seconds: float = 1.0) -> None:
        self.mono += seconds
        self.wall.advance(seconds)


@pytest.fixture
def daemon(tmp_path: Path) -> Iterator[tuple[Daemon, Minutes]]:
    path = tmp_path / "aiops.yaml"
    checks = "".join(CHECK.format(i=i) for i in range(CHECKS))
    path.write_text(CONFIG.format(work=tmp_path, checks=checks))
    clock = Minutes()
    d = Daemon(load_config(path), clock=clock.wall)
    d.capacity = CapacitySkips(monotonic=clock)
    yield d, clock
    d.shutdown()


def test_reports_come_at_most_once_a_minute_and_the_all_clear_after_a_quiet_one() -> None:
    clock = [0.0]
    skips = CapacitySkips(monotonic=lambda: clock[0])
    assert skips.poll() is None
    skips.add("a", 2)
    skips.add("b", 1)
    first = skips.poll()
    assert isinstance(first, Overloaded) and (first.runs, first.checks) == (3, 2)  # the first at once
    clock[0] = 30.0
    skips.add("a", 5)
    assert skips.poll() is None  # within the minute: kept for the next report
    clock[0] = REPORT_EVERY
    second = skips.poll()
    assert isinstance(second, Overloaded) and second.skipped == (("a", 5),) and second.seconds == 30.0
    clock[0] = 30.0 + QUIET_FOR - 1
    assert skips.poll() is None  # the last skip was at 30 s: not quiet for a minute yet
    clock[0] = 30.0 + QUIET_FOR
    assert skips.poll() == Recovered(QUIET_FOR)
    assert skips.poll() is None  # said once
    skips.retry(Recovered(QUIET_FOR))  # its write failed: said again
    assert skips.poll() == Recovered(QUIET_FOR)


def test_capacity_skips_raise_one_replica_incident_that_resolves_after_a_quiet_minute(
    daemon: tuple[Daemon, Minutes],
) -> None:
    d, clock = daemon
    # 90 s of a saturated replica: every check skips a run every second, the capacity job runs every second
    for _ in range(90):
        for i in range(CHECKS):
            d.capacity.add(f"c{i:02d}", 1)
        d._capacity_tick()
        clock.advance()
    incidents = d.store.list_incidents(limit=100)
    assert len(incidents) == 1
    incident = incidents[0]
    assert (incident.check_name, incident.kind, incident.state.value) == (REPLICA_CHECK, "check_overrun", "firing")
    assert incident.labels == {"problem": "check_overrun", "replica": d.owner}
    assert "of 12 check(s)" in incident.summary and "workers were busy" in incident.summary
    assert "Add replicas" in incident.summary
    # sighted twice in 90 s: at the first skip and a minute later, with the 60 s of skips in between
    assert incident.last_seen_at == incident.opened_at + REPORT_EVERY
    findings = incident.evidence["findings"]
    assert isinstance(findings, list) and findings[0]["evidence"]["skipped_runs"] == 60 * CHECKS
    # quiet from now: resolved once the last skip is a minute old
    for _ in range(int(QUIET_FOR) - 1):
        d._capacity_tick()
        clock.advance()
    assert d.store.list_incidents(limit=100)[0].state.value == "firing"
    d._capacity_tick()
    resolved = d.store.list_incidents(limit=100)
    assert len(resolved) == 1 and resolved[0].state.value == "resolved"
    assert [t.to_state.value for t in d.store.transitions(resolved[0].id)] == ["firing", "resolved"]
    d.outbox.tick()
    capture = d.runtime().notifiers["capture"]
    assert isinstance(capture, CapturingNotifier)
    assert [m.event for m in capture.messages] == ["firing", "resolved"]


def test_a_gone_replicas_incident_is_resolved_by_a_live_one(daemon: tuple[Daemon, Minutes]) -> None:
    """A restarted daemon is a new replica: the incident its previous process raised is resolved by whichever
    live replica looks next (at most once a minute), since nobody would ever see that id again."""
    d, clock = daemon
    gone = "gone-host:4242:1000.000"
    d.capacity.add("c00", 3)
    d._capacity_tick()
    report = Overloaded((("c00", 3),), 0.0)
    d.incidents.replica_problem(d._replica_config(), overloaded_finding(report, gone, "gone-host:4242", 16, 0.0))
    clock.advance()
    d._capacity_tick()
    assert {i.labels["replica"]: i.state.value for i in d.store.list_incidents(limit=10)} == {
        d.owner: "firing",
        gone: "firing",
    }  # looked a second ago: not yet
    clock.advance(REPORT_EVERY)
    d.capacity.add("c00", 1)  # this replica is still full
    d._capacity_tick()
    states = {i.labels["replica"]: i.state.value for i in d.store.list_incidents(limit=10)}
    assert states == {d.owner: "firing", gone: "resolved"}


def test_a_skip_counts_against_capacity_only_while_runs_wait_for_a_worker(daemon: tuple[Daemon, Minutes]) -> None:
    d, _clock = daemon
    release = threading.Event()
    slots = CheckSlots(lambda name: release.wait(10), lambda name, n: None, lambda name, s: None, workers=1)
    try:
        d._slots = slots
        d._count_skipped("c00", 1)  # no run waits for a worker: the check was late, not the replica full
        assert d.capacity.poll() is None
        now = time.time()
        slots.submit("busy", now, 60)  # holds the one worker
        slots.submit("queued", now, 60)  # waits for it
        assert slots.waiting() == 1
        d._count_skipped("c00", 1)
        report = d.capacity.poll()
        assert isinstance(report, Overloaded) and report.skipped == (("c00", 1),)
    finally:
        release.set()
        slots.shutdown()
        d._slots = None
