"""One tick of one check: collect, detect under a timeout, then checkpoint detector state when due.

A stuck source must not stall the daemon: the collection runs in a worker thread; when it overruns the
check's timeout the tick is abandoned (its late result discarded, its state never saved, its plugins
replaced and put back where they would be without it), a ``check_timeout`` finding is returned, and the next
tick runs as scheduled.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

import structlog

from aiops.config.models import CheckConfig
from aiops.engine.checkpointing import Checkpointer
from aiops.engine.runtime import CheckRuntime
from aiops.engine.spare_threads import SpareThreads
from aiops.errors import AiopsError, SourceError
from aiops.plugins import Detector, Source
from aiops.store.checkpoints import Cursor
from aiops.store.store import Store
from aiops.types import Finding, Frame, Severity

log = structlog.get_logger("aiops.check")
COLLECTORS = SpareThreads()  # the threads collections run on, so that a hung source can be abandoned


@dataclass
class CheckResult:
    """What a tick saw. ``healthy_data`` is true when fresh data was evaluated, so silence means healthy."""

    check: str
    outcome: str  # ok | error | timeout
    findings: list[Finding] = field(default_factory=list)  # from detectors: may trigger remediation
    problems: list[Finding] = field(default_factory=list)  # source/scheduler trouble: notify only
    healthy_data: bool = False
    duration: float = 0.0
    error: str | None = None
    # the newest value of each series (by series key) and the number of new rows ("rows"): what a RESOLVED
    # message quotes as the value now
    current: Mapping[str, float] = field(default_factory=dict)


class Phase(Enum):
    """Where a run is: an abandoned run's phase says what it may have changed."""

    COLLECTING = "collecting"  # only the source can have moved
    DETECTING = "detecting"  # the detectors may be half-updated


class _Superseded(Exception):
    """Raised inside an abandoned run so that it stops before touching another detector."""


class CheckRunner:
    """Runs ticks of one check; keeps ``since`` and detector/source state in the store across restarts.

    A tick that overruns its timeout is abandoned for good: its generation is retired (the late thread
    stops before its next detector and can never persist), and before the next tick the check gets fresh
    plugin instances: hung while collecting, a source rewound to its state before that run (the detectors
    were not touched); hung while detecting, source and detectors restored from the last committed
    checkpoint, from which the source re-reads. Either way the next tick ends exactly where a run without
    the hung call would have.
    """

    def __init__(self, runtime: CheckRuntime, store: Store, *, checkpoint_every: float = 60.0) -> None:
        self.runtime = runtime
        self.store = store
        self._generation = 0
        self._lock = threading.Lock()  # guards the generation
        self._tick_lock = threading.Lock()  # one tick (or the final checkpoint) at a time
        self._since: float | None = None
        self._restored = False
        self._abandoned: Phase | None = None  # the phase an abandoned run was in
        self._source_before: Any = None  # the source's state before the abandoned run
        self._patience = 1.0  # timeout multiplier: doubled after a run abandoned while detecting
        self.checkpointer = Checkpointer(
            self.name,
            store,
            checkpoint_every,
            budget=_checkpoint_budget(checkpoint_every, runtime.config),
        )

    @property
    def name(self) -> str:
        return self.runtime.name

    def restore(self) -> None:
        """Load persisted state; a detector that cannot load its old state starts fresh (and says so)."""
        self._restored = True
        self._since = None
        row = self.store.load_check_state(self.name)
        if row is not None:
            self._since = row.since
            self._load_legacy(row.detector_state)
        started = time.monotonic()
        loaded = self.checkpointer.load(self.runtime.detectors)
        if loaded:
            log.info(
                "detector state restored", check=self.name, states=loaded, seconds=round(time.monotonic() - started, 2)
            )
        source_state = row.source_state if row is not None else None
        if source_state:
            try:
                self.runtime.source.load_state_dict(source_state)
            except Exception as exc:
                log.warning("source state discarded", check=self.name, error=str(exc))

    def _load_legacy(self, detector_state: Mapping[str, Any]) -> None:
        """State saved as JSON by earlier releases; the first checkpoint rewrites it in binary form."""
        for key, det in self.runtime.detectors.items():
            if key in detector_state:
                try:
                    det.load_state_dict(detector_state[key])
                except Exception as exc:
                    log.warning("detector state discarded", check=self.name, detector=key, error=str(exc))

    def reload(self) -> None:
        """Forget what this process knows of the check and start again from the store at the next tick: after
        this replica (re)gains the check's lease, another replica may have moved its cursor and detector state
        on, and an older copy kept in memory would re-evaluate points or miss them."""
        with self._tick_lock:
            rebuild = self.runtime.rebuild
            if rebuild is not None and self._restored:
                self.runtime.source, self.runtime.detectors = rebuild()
            self.checkpointer.abandon()
            self._abandoned, self._source_before, self._patience = None, None, 1.0
            self._restored = False

    def tick(self, now: float) -> CheckResult:
        """One run: collect, detect, checkpoint when due. ``duration`` covers all of it."""
        started = time.monotonic()
        with self._tick_lock:
            if self._abandoned is not None:
                self._recover()
            if not self._restored:
                self.restore()
            result = self._run(now, started)
        result.duration = time.monotonic() - started
        return result

    def _run(self, now: float, started: float) -> CheckResult:
        with self._lock:
            self._generation += 1
            generation = self._generation
        timeout = self.runtime.config.effective_timeout * self._patience
        source, detectors = self.runtime.source, self.runtime.detectors  # the abandoned run keeps these
        source_before = source.state_dict()
        box: dict[str, Any] = {"phase": Phase.COLLECTING}
        # held until the work ends: a bare lock is the cheapest signal between two threads (an Event is a
        # Condition, several Python-level locks and lists per wait and per set, on every tick)
        done = threading.Lock()
        done.acquire()

        def work() -> None:
            threading.current_thread().name = f"check-{self.name}"  # what a thread dump of a hung source shows
            try:
                box["result"] = self._collect_and_detect(now, source, detectors, generation, box)
            except BaseException as exc:
                box["error"] = exc
            finally:
                done.release()

        COLLECTORS.run(work)
        if not done.acquire(timeout=max(0.0, timeout - (time.monotonic() - started))):
            with self._lock:
                self._generation += 1  # the late run is retired: it stops at its next step
                phase = box["phase"]  # read under the lock the worker takes to start detecting
            self._abandon(phase, source_before)
            return CheckResult(
                check=self.name,
                outcome="timeout",
                error=f"check did not finish within {timeout:g}s",
                problems=[
                    scheduler_problem(
                        "check_timeout",
                        f"check {self.name} did not finish within {timeout:g}s; run abandoned",
                        {"timeout_seconds": timeout},
                        now,
                    )
                ],
            )
        if "error" in box:
            return self._error_result(box["error"], now, time.monotonic() - started)
        frame, findings, detector_errors = box["result"]
        return self._finish(frame, findings, detector_errors, now, detectors)

    def tick_inline(self, now: float) -> CheckResult:
        """One tick in the calling thread and without the timeout: for replays (backtests), whose source
        answers from memory and whose clock is simulated, so a wall-clock timeout means nothing."""
        started = time.monotonic()
        with self._tick_lock:
            if not self._restored:
                self.restore()
            with self._lock:
                self._generation += 1
                generation = self._generation
            source, detectors = self.runtime.source, self.runtime.detectors
            try:
                frame, findings, errors = self._collect_and_detect(
                    now, source, detectors, generation, {"phase": Phase.COLLECTING}
                )
            except Exception as exc:
                return self._error_result(exc, now, time.monotonic() - started)
            result = self._finish(frame, findings, errors, now, detectors)
        result.duration = time.monotonic() - started
        return result

    def _finish(
        self,
        frame: Frame,
        findings: list[Finding],
        detector_errors: list[Finding],
        now: float,
        detectors: Mapping[str, Detector],
    ) -> CheckResult:
        """A completed run: move the cursor, checkpoint when due, and say what the tick saw."""
        self._since = now
        self._patience = 1.0
        problems = [*frame.problems, *detector_errors]
        try:
            self.checkpointer.tick(now, self.cursor(), detectors)
        except AiopsError as exc:
            self.checkpointer.abandon()  # the next round starts over; nothing committed is lost
            problems.append(self._state_not_saved(exc, now))
        return CheckResult(
            check=self.name,
            outcome="ok",
            findings=findings,
            problems=problems,
            healthy_data=frame.fresh,
            current=current_values(frame),
        )

    def cursor(self) -> Cursor:
        """Where the source stands now: what a checkpoint commits with the detector states."""
        source = self.runtime.source
        return Cursor(since=self._since, source_state=source.state_dict())

    def flush(self, now: float, deadline: float) -> bool:
        """Save what changed, with the cursor, before shutdown or reload; gives up at ``deadline``
        (monotonic), and saves nothing for a check whose last run was abandoned (its last checkpoint
        stands). Returns True when the current cursor was committed."""
        if not self._tick_lock.acquire(timeout=max(0.0, deadline - time.monotonic())):
            return False
        try:
            if not self._restored:
                return True  # never ran: nothing changed
            if self._abandoned is not None:
                return False
            return self.checkpointer.flush(now, self.cursor(), self.runtime.detectors, deadline)
        finally:
            self._tick_lock.release()

    def _abandon(self, phase: Phase, source_before: Any) -> None:
        """Note what the abandoned run may have changed, for :meth:`_recover` before the next tick.

        Hung while collecting: only the source can have moved, and its state from before the run is at
        hand. Hung while detecting: the detectors may be half-updated, so they come back from the last
        checkpoint and the source re-reads from its cursor; such a run was slow rather than stuck on I/O
        (a first tick over thousands of new series), so the catch-up run gets twice the time, up to 8x,
        or it would time out the same way forever.
        """
        self._abandoned = phase
        if phase is Phase.COLLECTING:
            self._source_before = source_before
        else:
            self._source_before = None
            self._patience = min(8.0, self._patience * 2)

    def _recover(self) -> None:
        """After an abandoned run: fresh plugin instances (the late thread may still hold the old ones),
        put back where a run without the abandoned one would be."""
        rebuild = self.runtime.rebuild
        fresh = rebuild() if rebuild is not None else None
        before = CheckRuntime(self.runtime.config, self.runtime.source, dict(self.runtime.detectors))
        if self._abandoned is Phase.COLLECTING:
            if fresh is not None:
                self.runtime.source = fresh[0]
                before.detectors = fresh[1]  # the detectors carry on: the fresh ones are not needed
            if self._source_before is not None:
                self.runtime.source.load_state_dict(self._source_before)
            log.info("check source rewound after an abandoned run", check=self.name)
        else:
            if fresh is not None:
                self.runtime.source, self.runtime.detectors = fresh
            self.checkpointer.abandon()
            self.restore()
            log.info("check restored from its last checkpoint after an abandoned run", check=self.name)
        if fresh is not None:
            before.stop()  # what was replaced (the late thread must not touch it any more anyway)
        self._abandoned, self._source_before = None, None

    def _current(self, generation: int) -> bool:
        with self._lock:
            return generation == self._generation

    def _collect_and_detect(
        self, now: float, source: Source, detectors: Mapping[str, Detector], generation: int, box: dict[str, Any]
    ) -> tuple[Frame, list[Finding], list[Finding]]:
        frame: Frame = source.collect(self._since, now)
        with self._lock:
            if generation != self._generation:
                raise _Superseded(self.name)  # abandoned while collecting: the detectors stay untouched
            box["phase"] = Phase.DETECTING
        findings: list[Finding] = []
        errors: list[Finding] = []
        if frame.empty:
            return frame, findings, errors
        for key, det in detectors.items():
            if not self._current(generation):
                raise _Superseded(self.name)
            try:
                findings.extend(det.evaluate(frame))
            except AiopsError as exc:
                errors.append(self._detector_failed(key, exc, now))
        return frame, findings, errors

    def _state_not_saved(self, exc: Exception, now: float) -> Finding:
        summary = f"check {self.name}: detector state not saved: {exc}"
        return scheduler_problem("state_not_saved", summary, {"error": str(exc)}, now)

    def _detector_failed(self, key: str, exc: Exception, now: float) -> Finding:
        return Finding(
            kind="detector_error",
            detector=key,
            summary=f"detector {key} failed: {exc}",
            severity=Severity.WARNING,
            labels={"problem": "detector_error", "detector": key},
            evidence={"error": str(exc)},
            observed_at=now,
        )

    def _error_result(self, exc: BaseException, now: float, duration: float) -> CheckResult:
        recoverable = getattr(exc, "recoverable", False)
        kind = "source_unavailable" if isinstance(exc, SourceError) else "check_error"
        if not isinstance(exc, AiopsError):
            log.error("check crashed", check=self.name, error=repr(exc), exc_info=exc)
        return CheckResult(
            check=self.name,
            outcome="error",
            duration=duration,
            error=str(exc),
            problems=[
                Finding(
                    kind=kind,
                    detector="scheduler",
                    summary=f"check {self.name}: {exc}",
                    severity=Severity.WARNING,
                    labels={"problem": kind},
                    evidence={"error": str(exc), "recoverable": bool(recoverable)},
                    observed_at=now,
                )
            ],
        )


def current_values(frame: Frame, limit: int = 50) -> dict[str, float]:
    """The newest value of each series (bounded: a frame may hold thousands) and the count of new rows."""
    out = {s.key: float(s.values[-1]) for s in frame.series[:limit] if len(s)}
    if frame.rows:
        out["rows"] = float(len(frame.rows))
    return out


def _checkpoint_budget(checkpoint_every: float, config: CheckConfig) -> float | None:
    """Seconds of checkpoint writing per tick: a quarter of the interval (of the timeout for cron checks);
    none when every tick saves everything (``state.checkpoint: 0``)."""
    if checkpoint_every <= 0:
        return None
    return 0.25 * (config.every or config.effective_timeout)


def scheduler_problem(kind: str, summary: str, evidence: Mapping[str, Any], now: float) -> Finding:
    """A notify-only problem of the daemon itself (timeouts, overruns, unsaved state)."""
    return Finding(
        kind=kind,
        detector="scheduler",
        summary=summary,
        severity=Severity.WARNING,
        labels={"problem": kind},
        evidence=dict(evidence),
        observed_at=now,
    )
