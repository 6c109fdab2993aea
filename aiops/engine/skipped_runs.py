"""Scheduled check runs that did not happen: counted per check, handed to the check's next run (at most once a
minute per check; the daemon raises ``check_overrun`` when the check's own runs are the cause), and logged as
one summary line a minute instead of one line each. Runs skipped because no worker was free are the replica's
capacity, reported once per replica (:mod:`aiops.engine.capacity`).

Why not APScheduler's own lines: it logs a warning for every skipped run ("Run time of job ... was missed",
"maximum number of running instances reached"). A replica that cannot keep up skips hundreds of runs a
second, and writing (and redacting) a line for each cost more CPU than the runs it skipped, so the replica
fell further behind the more it fell behind. Every skipped run is still counted
(``aiops_check_ticks_skipped_total``); the log says it once a minute with the totals.

The daemon's own jobs (the lease round every 250 ms, the executor, the outbox, the sweeper, ...) skip a run
when the previous one is still going, which on a starved machine is every run: APScheduler's line for each
(four a second for the lease round) is replaced by ``aiops_housekeeping_runs_skipped_total`` and a line the
first time and then at most once a minute (:class:`JobSkips`).

Why a check reports at most once a minute: each report is a sighting of its ``check_overrun`` incident, a
fenced unit of work that writes the incident. A replica far past its capacity skips runs of every check at
every interval, and writing a sighting on each run spent its CPU on saying it was overloaded: it ran fewer
checks the more it was behind. The runs skipped in between are added to the next report.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Final

import structlog

from aiops.engine.slots import SLOT_JOB_PREFIX

log = structlog.get_logger("aiops.daemon")

SUMMARY_EVERY: Final = 60.0  # seconds between two summary lines
REPORT_EVERY: Final = 60.0  # seconds between two check_overrun reports of one check
CHECK_JOB_PREFIXES: Final = ("check:", SLOT_JOB_PREFIX)  # a cron check's job, a phase slot's job
HOUSEKEEPING_PREFIX: Final = "aiops:"  # the daemon's own jobs (aiops:leases, aiops:outbox, ...)
# APScheduler's per-run lines (apscheduler 3.x: executors/base.py and schedulers/base.py)
_PER_RUN_LINES: Final = (
    'Run time of job "%s" was missed by %s',
    'Execution of job "%s" skipped: maximum number of running instances reached (%d)',
)
_SCHEDULER_LOGGERS: Final = ("apscheduler.scheduler", "apscheduler.executors.default")


class SkippedRuns:
    """Skipped runs per check, waiting for that check's next run to report them. Thread-safe."""

    def __init__(self, monotonic: Callable[[], float] = time.monotonic) -> None:
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._pending: dict[str, int] = {}
        self._reported: dict[str, float] = {}  # check -> when its last report was taken (monotonic)
        self._since_summary: dict[str, int] = {}
        self._summary_at = monotonic()

    def add(self, check: str, missed: int) -> None:
        """``missed`` scheduled runs of ``check`` were skipped; logs the summary when one is due."""
        with self._lock:
            self._pending[check] = self._pending.get(check, 0) + missed
            self._since_summary[check] = self._since_summary.get(check, 0) + missed
            now = self._monotonic()
            if now - self._summary_at < SUMMARY_EVERY:
                return
            seconds, counts = now - self._summary_at, self._since_summary
            self._summary_at, self._since_summary = now, {}
        log.warning(
            "scheduled check runs skipped: this replica cannot keep up with its checks",
            skipped=sum(counts.values()),
            checks=len(counts),
            seconds=round(seconds, 1),
            worst=max(counts, key=lambda name: counts[name]),
        )

    def take(self, check: str) -> int:
        """The skipped runs of ``check`` not reported yet (then forgotten), or 0 when none were skipped or its
        last report was less than :data:`REPORT_EVERY` ago (they wait for the next one)."""
        with self._lock:
            missed = self._pending.get(check, 0)
            now = self._monotonic()
            last = self._reported.get(check)
            if not missed or (last is not None and now - last < REPORT_EVERY):
                return 0
            del self._pending[check]
            self._reported[check] = now
            return missed


class JobSkips:
    """Skipped runs of the daemon's own jobs: said the first time, then in one line at most once a minute."""

    def __init__(self, monotonic: Callable[[], float] = time.monotonic) -> None:
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._counts: dict[str, int] = {}
        self._said_at: float | None = None

    def add(self, job: str, missed: int) -> None:
        with self._lock:
            self._counts[job] = self._counts.get(job, 0) + missed
            now = self._monotonic()
            if self._said_at is not None and now - self._said_at < SUMMARY_EVERY:
                return
            counts, self._counts, self._said_at = self._counts, {}, now
        log.warning(
            "runs of the daemon's own jobs skipped: the previous run was still going (a busy machine)",
            skipped=sum(counts.values()),
            jobs=",".join(sorted(counts)),
        )


class _PerRunLines(logging.Filter):
    """Drops APScheduler's line for each skipped run of a check, slot or housekeeping job (each counted and
    summarised instead); other lines pass."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.msg not in _PER_RUN_LINES or not isinstance(record.args, tuple) or not record.args:
            return True
        return not str(getattr(record.args[0], "id", "")).startswith((*CHECK_JOB_PREFIXES, HOUSEKEEPING_PREFIX))


_FILTER: Final = _PerRunLines()


def quiet_scheduler_lines() -> None:
    """Install the filter on APScheduler's loggers (idempotent)."""
    for name in _SCHEDULER_LOGGERS:
        logger = logging.getLogger(name)
        if _FILTER not in logger.filters:
            logger.addFilter(_FILTER)
