"""Check runs dispatched by phase slot: one scheduler job per slot of an interval, not one per check.

Why: interval checks already tick at one of :data:`~aiops.engine.phases.SLOTS` phases of their interval
(:mod:`aiops.engine.phases`), so the checks of one slot are due at the same instants. With a scheduler job per
check, APScheduler's machinery ran once per check run (due-job lookup, next fire time, the job store's
re-sort, a future, submitted/executed events, misfire checks): 10-15 % of a replica's CPU per run of a check
that polls a 50 ms endpoint. One job per (interval, slot) fires the whole slot, and its checks go straight to
the check workers: N dispatches a interval become at most 20, whatever the number of checks.

What APScheduler did per check is kept here, with the same meaning:
- at most one run of a check queued or running (``max_instances=1``): a check still busy when its slot fires
  skips that run;
- a run that cannot start within its grace (half its interval, as before) is skipped, not run late
  (``misfire_grace_time``); a slot job the scheduler itself missed skips one run of each of its checks;
- every skipped run is reported (counted in ``aiops_check_ticks_skipped_total``, raised as ``check_overrun``
  by the daemon when the check's own runs are the cause), and every run's lateness observed.

Cron checks keep a scheduler job each (their times share no slot), which hands its runs to the same workers.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import structlog

from aiops.engine.phases import SLOTS, slot_of

log = structlog.get_logger("aiops.daemon")

SLOT_JOB_PREFIX = "slot:"  # scheduler job ids of slot jobs (check jobs are "check:<name>")


@dataclass(frozen=True)
class Slot:
    """The checks of interval ``every`` whose phase is slot ``index`` of it."""

    every: float
    index: int

    @property
    def phase(self) -> float:
        """Seconds after each multiple of ``every`` (since the epoch) at which the slot fires."""
        return self.index * self.every / SLOTS

    @property
    def job_id(self) -> str:
        return f"{SLOT_JOB_PREFIX}{self.every:g}s:{self.index}"


def grace_of(every: float | None) -> int:
    """Seconds a run may start after it was due before it is skipped: half the interval, at least 1 s (cron
    checks: 30 s). The value the daemon gave APScheduler as ``misfire_grace_time``."""
    return max(1, int((every or 60.0) / 2))


class CheckSlots:
    """The checks of each slot, and a bounded pool of workers that runs their ticks. Thread-safe.

    ``run(name)`` is one tick of a check; ``skipped(name, count)`` and ``lateness(name, seconds)`` report."""

    def __init__(
        self,
        run: Callable[[str], None],
        skipped: Callable[[str, int], None],
        lateness: Callable[[str, float], None],
        workers: int,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._run_tick = run
        self._skipped = skipped
        self._lateness = lateness
        self._clock = clock
        self.workers = workers
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="check-worker")
        self._lock = threading.Lock()
        self._members: dict[Slot, set[str]] = {}
        self._slot: dict[str, Slot] = {}
        self._by_job: dict[str, Slot] = {}
        self._busy: set[str] = set()  # checks with a run queued or running
        self._in_flight = 0  # runs submitted and not finished: running, or waiting for a worker

    def add(self, name: str, every: float) -> Slot | None:
        """Put an interval check in its slot; returns the slot when it was empty (the caller adds its job)."""
        slot = Slot(every, slot_of(name))
        with self._lock:
            self._discard(name)
            members = self._members.setdefault(slot, set())
            members.add(name)
            self._slot[name] = slot
            self._by_job[slot.job_id] = slot
            return slot if len(members) == 1 else None

    def remove(self, name: str) -> Slot | None:
        """Take a check out of its slot; returns the slot when it is now empty (the caller removes its job)."""
        with self._lock:
            return self._discard(name)

    def _discard(self, name: str) -> Slot | None:
        slot = self._slot.pop(name, None)
        if slot is None:
            return None
        members = self._members[slot]
        members.discard(name)
        if members:
            return None
        del self._members[slot], self._by_job[slot.job_id]
        return slot

    def clear(self) -> None:
        """Empty every slot (a reload schedules the checks again)."""
        with self._lock:
            self._members, self._slot, self._by_job = {}, {}, {}

    def checks_of(self, job_id: str) -> list[str]:
        """The checks of the slot whose job is ``job_id`` (none for another job)."""
        with self._lock:
            slot = self._by_job.get(job_id)
            return sorted(self._members.get(slot, ())) if slot is not None else []

    def fire(self, slot: Slot, due: float) -> None:
        """The slot's job: a run of each of its checks, due at ``due`` (epoch seconds)."""
        with self._lock:
            names = sorted(self._members.get(slot, ()))
        grace = grace_of(slot.every)
        for name in names:
            self.submit(name, due, grace)

    def submit(self, name: str, due: float, grace: float) -> None:
        """A run of ``name`` due at ``due``; skipped (and reported) while the check has a run queued or running."""
        with self._lock:
            busy = name in self._busy
            if not busy:
                self._busy.add(name)
                self._in_flight += 1
        if busy:
            self._skipped(name, 1)
            return
        try:
            self._pool.submit(self._run, name, due, grace)
        except RuntimeError:  # shut down: the daemon is stopping
            self._done(name)

    def _run(self, name: str, due: float, grace: float) -> None:
        try:
            late = self._clock() - due
            if late > grace:
                self._skipped(name, 1)
                return
            self._lateness(name, late)
            self._run_tick(name)
        except Exception as exc:  # the tick reports its own failures; this is a bug, and must not be silent
            log.error("check run failed", check=name, error=repr(exc), exc_info=exc)
        finally:
            self._done(name)

    def _done(self, name: str) -> None:
        with self._lock:
            self._busy.discard(name)
            self._in_flight -= 1

    def waiting(self) -> int:
        """How many runs wait for a worker now (every worker is busy); 0 while one is free. A run skipped while
        runs wait was skipped for want of a worker: the replica is past its capacity."""
        with self._lock:
            return max(0, self._in_flight - self.workers)

    def shutdown(self) -> None:
        """Stop starting runs (queued ones are dropped); running ones finish on their own."""
        self._pool.shutdown(wait=False, cancel_futures=True)
