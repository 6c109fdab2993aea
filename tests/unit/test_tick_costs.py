"""What keeps a replica's ticks cheap: phases spread over the interval, one scheduler job per phase slot (its checks
skipped when busy or too late, as APScheduler did per check), skipped runs counted without a log line each (and
reported at most once a minute per check), and collection threads kept for the next tick."""

from __future__ import annotations

import datetime
import logging
import threading
from collections.abc import Callable

import pytest

from aiops.engine import skipped_runs
from aiops.engine.phases import SLOTS, PhasedInterval, phase_of, slot_of
from aiops.engine.skipped_runs import REPORT_EVERY, JobSkips, SkippedRuns, quiet_scheduler_lines
from aiops.engine.slots import CheckSlots
from aiops.engine.spare_threads import SpareThreads

UTC = datetime.UTC


def _at(seconds: float) -> datetime.datetime:
    return datetime.datetime.fromtimestamp(seconds, tz=UTC)


def test_phases_spread_checks_over_the_interval_and_are_the_same_everywhere() -> None:
    phases = {phase_of(f"c{i:04d}", 1.0) for i in range(300)}
    assert len(phases) == SLOTS  # every slot used: no burst at the top of the interval
    assert all(0.0 <= p < 1.0 for p in phases)
    assert phase_of("c0007", 30.0) == phase_of("c0007", 30.0)  # from the name only: every replica agrees


def test_a_phased_trigger_fires_on_its_slots_after_any_first_run() -> None:
    trigger = PhasedInterval(2.0, 0.5)
    first = trigger.get_next_fire_time(None, _at(1000.7))
    assert first == _at(1000.5 + 2.0)
    # a first run at once (off its phase) is followed by the next slot, then one interval each
    after_first = trigger.get_next_fire_time(_at(1001.3), _at(1001.3))
    assert after_first == _at(1002.5)
    assert trigger.get_next_fire_time(after_first, after_first) == _at(1004.5)
    # a run time read back from a datetime a hair before its slot does not fire that slot twice
    assert trigger.get_next_fire_time(_at(1004.4999999), _at(1004.5)) == _at(1006.5)


def test_skipped_runs_are_reported_at_most_once_a_minute_per_check() -> None:
    clock = [0.0]
    runs = SkippedRuns(monotonic=lambda: clock[0])
    assert runs.take("a") == 0
    runs.add("a", 2)
    assert runs.take("a") == 2
    runs.add("a", 1)
    clock[0] = REPORT_EVERY / 2
    runs.add("a", 3)
    assert runs.take("a") == 0  # too soon: kept for the next report
    clock[0] = REPORT_EVERY + 1
    assert runs.take("a") == 4
    runs.add("b", 1)
    assert runs.take("b") == 1  # per check


def test_a_summary_line_a_minute_replaces_the_line_per_skipped_run(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = [0.0]
    said: list[dict[str, object]] = []
    monkeypatch.setattr(skipped_runs.log, "warning", lambda event, **kw: said.append({"event": event, **kw}))
    runs = SkippedRuns(monotonic=lambda: clock[0])
    for i in range(100):
        runs.add(f"c{i % 7}", 1)
    assert said == []
    clock[0] = 61.0
    runs.add("c0", 1)
    assert len(said) == 1 and said[0]["skipped"] == 101 and said[0]["checks"] == 7


class _Job:
    def __init__(self, job_id: str) -> None:
        self.id = job_id


def test_the_scheduler_line_per_skipped_check_run_is_dropped_and_others_pass() -> None:
    quiet_scheduler_lines()
    logger = logging.getLogger("apscheduler.executors.default")
    template = 'Run time of job "%s" was missed by %s'
    check = logger.makeRecord(logger.name, logging.WARNING, __file__, 1, template, (_Job("check:c1"), "0:00:01"), None)
    other = logger.makeRecord(
        logger.name, logging.WARNING, __file__, 1, template, (_Job("someone:else"), "0:00:01"), None
    )
    failure = logger.makeRecord(logger.name, logging.ERROR, __file__, 1, 'Job "%s" raised', (_Job("check:c1"),), None)
    assert not logger.filter(check)
    assert logger.filter(other) and logger.filter(failure)


def test_collection_threads_are_kept_for_the_next_call_and_a_hung_one_keeps_only_its_own() -> None:
    threads = SpareThreads(keep=4)
    seen: list[int] = []
    done = threading.Event()

    def note() -> None:
        seen.append(threading.get_ident())
        done.set()

    for _ in range(20):
        done.clear()
        threads.run(note)
        assert done.wait(5)
        for _ in range(200):  # the thread goes back to the spare list just after the call
            if threads.spare:
                break
            threading.Event().wait(0.005)
    assert len(set(seen)) == 1  # one thread served every call in turn
    release, hung = threading.Event(), threading.Event()

    def hang() -> None:
        hung.set()
        release.wait(10)

    threads.run(hang)
    assert hung.wait(5)
    done.clear()
    threads.run(note)  # served by another thread while the first one hangs
    assert done.wait(5)
    assert len(set(seen)) == 2
    release.set()


class _Reports:
    def __init__(self) -> None:
        self.skipped: list[tuple[str, int]] = []
        self.late: list[tuple[str, float]] = []


def test_a_slot_holds_the_checks_of_one_phase_and_says_when_its_job_is_needed() -> None:
    slots = CheckSlots(lambda name: None, lambda name, n: None, lambda name, s: None, workers=1)
    same = [f"c{i:04d}" for i in range(300) if slot_of(f"c{i:04d}") == slot_of("c0000")][:2]
    first = slots.add(same[0], 2.0)
    assert first is not None and first.phase == phase_of(same[0], 2.0)  # the slot's job fires on the check's phase
    assert slots.add(same[1], 2.0) is None  # its slot has a job already
    assert slots.checks_of(first.job_id) == same
    assert slots.remove(same[0]) is None and slots.remove(same[1]) == first  # emptied: its job goes
    assert slots.checks_of(first.job_id) == []
    slots.shutdown()


def test_check_slots_skip_a_run_while_the_check_is_busy_or_too_late_and_report_lateness() -> None:
    reports, release, ran = _Reports(), threading.Event(), threading.Event()
    clock = [1000.0]
    started: list[str] = []

    def run(name: str) -> None:
        started.append(name)
        ran.set()
        assert release.wait(10)

    slots = CheckSlots(
        run,
        lambda name, n: reports.skipped.append((name, n)),
        lambda name, s: reports.late.append((name, s)),
        workers=1,
        clock=lambda: clock[0],
    )
    slots.submit("a", 999.5, 1)
    assert ran.wait(10)
    assert slots.waiting() == 0  # its one worker is busy, nothing waits for it
    slots.submit("a", 1000.0, 1)  # still running: skipped (max_instances=1 as before)
    assert reports.skipped == [("a", 1)] and reports.late == [("a", 0.5)]
    slots.submit("b", 990.0, 1)  # waits for the worker, then 10 s late with a grace of 1 s: skipped, not run
    assert slots.waiting() == 1  # a run waits for a worker: the replica is past its capacity
    release.set()
    assert _waited(lambda: len(reports.skipped) == 2)
    slots.shutdown()
    assert reports.skipped == [("a", 1), ("b", 1)] and started == ["a"]


def _waited(condition: Callable[[], bool]) -> bool:
    for _ in range(1000):
        if condition():
            return True
        threading.Event().wait(0.01)
    return condition()


def test_skipped_runs_of_the_daemon_s_own_jobs_are_said_once_a_minute(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = [0.0]
    said: list[dict[str, object]] = []
    monkeypatch.setattr(skipped_runs.log, "warning", lambda event, **kw: said.append({"event": event, **kw}))
    skips = JobSkips(monotonic=lambda: clock[0])
    skips.add("leases", 1)  # the first is said at once
    for _ in range(200):  # four a second for most of a minute: no line each
        skips.add("leases", 1)
    skips.add("outbox", 2)
    assert len(said) == 1 and said[0]["skipped"] == 1
    clock[0] = 61.0
    skips.add("leases", 1)
    assert len(said) == 2 and said[1]["skipped"] == 203 and said[1]["jobs"] == "leases,outbox"


def test_the_scheduler_line_per_skipped_housekeeping_run_is_dropped() -> None:
    quiet_scheduler_lines()
    logger = logging.getLogger("apscheduler.scheduler")
    template = 'Execution of job "%s" skipped: maximum number of running instances reached (%d)'
    lease = logger.makeRecord(logger.name, logging.WARNING, __file__, 1, template, (_Job("aiops:leases"), 1), None)
    other = logger.makeRecord(logger.name, logging.WARNING, __file__, 1, template, (_Job("someone:else"), 1), None)
    assert not logger.filter(lease)
    assert logger.filter(other)
