"""A replica past its capacity: check runs skipped because no worker was free, raised as the daemon's own
``check_overrun`` finding once per replica, not once per check.

A check run is skipped for one of two reasons. Either the check's own runs take its whole interval (the next
one is due while it still runs): that check's next run raises its ``check_overrun`` (see the daemon's
``_overrun_problem``). Or its runs are short and the run could not start in time because every worker was busy
(:meth:`aiops.engine.slots.CheckSlots.waiting`): that is the replica's capacity, and it is reported here.

Why one incident per replica: raising ``check_overrun`` for every check that skipped was tried. A saturated
replica skips runs of every check at every interval, so it opened, sighted and resolved an incident per check,
spent its CPU on saying it was behind, and fell further behind. Here the skips are counted in memory as they
happen (a dict increment on the scheduler's thread) and become at most one sighting a minute of one incident,
``check_overrun`` with the ``replica`` label, resolved after a minute without a capacity skip.

Why skips with a worker free are not reported here: the scheduler's own thread was late (a starved host, a
paused process), which no replica or worker count fixes; they are counted in ``aiops_check_ticks_skipped_total``
and in the log's summary line like every skip. A replica with at least as many check workers as checks (up to
16 checks with the default 16 workers) never has a run waiting for a worker, so it never opens this incident.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Final

from aiops.config.models import CheckConfig, PolicyConfig
from aiops.types import Finding, Severity, fingerprint

#: The check name of incidents about a replica rather than a check: no check can be named so (a check's name
#: has no colon), so no check's ticks ever decide about them.
REPLICA_CHECK: Final = "aiops:replica"
KIND: Final = "check_overrun"
REPORT_EVERY: Final = 60.0  # seconds between two sightings of a replica's incident
QUIET_FOR: Final = 60.0  # seconds without a capacity skip before the incident resolves


@dataclass(frozen=True)
class Overloaded:
    """Runs skipped for want of a worker since the last report: ``skipped`` is (check, runs) per check."""

    skipped: tuple[tuple[str, int], ...]
    seconds: float  # how long they were counted

    @property
    def runs(self) -> int:
        return sum(n for _, n in self.skipped)

    @property
    def checks(self) -> int:
        return len(self.skipped)


@dataclass(frozen=True)
class Recovered:
    """No run skipped for want of a worker for ``quiet`` seconds."""

    quiet: float


class CapacitySkips:
    """Capacity skips of one replica, turned into at most one report a minute. Thread-safe: :meth:`add` runs on
    the scheduler's thread, :meth:`poll` on a housekeeping job."""

    def __init__(self, monotonic: Callable[[], float] = time.monotonic) -> None:
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._pending: dict[str, int] = {}
        self._counting_since = 0.0
        self._last_skip = float("-inf")
        self._reported_at: float | None = None
        self._raised = False  # an Overloaded was reported and no Recovered since
        self._gone_looked_at: float | None = None

    def add(self, check: str, missed: int) -> None:
        """``missed`` runs of ``check`` were skipped while runs waited for a worker."""
        with self._lock:
            now = self._monotonic()
            if not self._pending:
                self._counting_since = now
            self._pending[check] = self._pending.get(check, 0) + missed
            self._last_skip = now

    def poll(self) -> Overloaded | Recovered | None:
        """What to tell the store now: skips since the last report (at most one report per
        :data:`REPORT_EVERY`), the all-clear once :data:`QUIET_FOR` passed without one, or nothing."""
        with self._lock:
            now = self._monotonic()
            if self._pending and (self._reported_at is None or now - self._reported_at >= REPORT_EVERY):
                report = Overloaded(tuple(sorted(self._pending.items())), now - self._counting_since)
                self._pending = {}
                self._reported_at = now
                self._raised = True
                return report
            if self._raised and not self._pending and now - self._last_skip >= QUIET_FOR:
                self._raised = False
                return Recovered(now - self._last_skip)
            return None

    def look_for_gone_replicas(self) -> bool:
        """Whether to look for incidents of replicas that are gone now: at the first call, then once every
        :data:`REPORT_EVERY` (a query of the store each time)."""
        with self._lock:
            now = self._monotonic()
            if self._gone_looked_at is not None and now - self._gone_looked_at < REPORT_EVERY:
                return False
            self._gone_looked_at = now
            return True

    def retry(self, event: Overloaded | Recovered) -> None:
        """``event`` could not be written (the store is down): its skips go out with the next report, or the
        all-clear is given again at the next poll."""
        with self._lock:
            if isinstance(event, Recovered):
                self._raised = True
                return
            for check, runs in event.skipped:
                self._pending[check] = self._pending.get(check, 0) + runs


def overloaded_finding(event: Overloaded, replica: str, name: str, workers: int, now: float) -> Finding:
    """The sighting of replica ``replica`` (its member id; ``name`` is how people know it) being past its
    capacity: how many runs of how many checks it skipped, and what to do about it."""
    window = f" in the last {event.seconds:.0f}s" if event.seconds >= 1 else ""
    worst = max(event.skipped, key=lambda item: item[1])
    summary = (
        f"replica {name} skipped {event.runs} scheduled run(s) of {event.checks} check(s){window}: all {workers} "
        f"of its workers were busy, so the runs could not start in time (most: {worst[0]}, {worst[1]}). Add "
        "replicas, raise `workers` (for sources that wait on I/O), or lengthen the checks' intervals"
    )
    return Finding(
        kind=KIND,
        detector="scheduler",
        summary=summary,
        severity=Severity.WARNING,
        labels=replica_labels(replica),
        evidence={
            "skipped_runs": event.runs,
            "checks": event.checks,
            "workers": workers,
            "seconds": round(event.seconds, 1),
        },
        observed_at=now,
    )


def replica_config(receivers: Iterable[str]) -> CheckConfig:
    """What the incident machinery needs to know about the replica's incidents as if they were a check's: its
    name (:data:`REPLICA_CHECK`) and who is told (``receivers``, plus the routes matching their labels).

    Built without validation on purpose: a replica has no source or detectors, and only ``name``, ``labels``,
    ``severity`` and ``policy`` are read for an incident that is never remediated."""
    return CheckConfig.model_construct(
        name=REPLICA_CHECK,
        labels={},
        severity=None,
        policy=PolicyConfig.model_validate({"notify": sorted(set(receivers))}),
    )


def every_receiver(checks: Iterable[CheckConfig]) -> list[str]:
    """The receivers of every check: a replica past its capacity delays all the checks it runs."""
    return sorted({name for check in checks for name in check.policy.notify})


def replica_labels(replica: str) -> dict[str, str]:
    """The labels of replica ``replica``'s incident: with :data:`REPLICA_CHECK`, its fingerprint."""
    return {"problem": KIND, "replica": replica}


def replica_fingerprint(replica: str) -> str:
    return fingerprint(REPLICA_CHECK, replica_labels(replica))
