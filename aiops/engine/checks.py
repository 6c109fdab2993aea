"""One tick of one check: collect, detect under a timeout, then checkpoint detector state when due.

A stuck source must not stall the daemon: the collection runs in a worker thread; when it overruns the
check's timeout the tick is abandoned (its late result discarded, its state never saved, its plugins
replaced and put back where they would be without it), a ``check_timeout`` finding is returned, and the next
tick runs as scheduled.

A per-series detector is handed a big frame :data:`PART` series at a time, and an abandoned run stops
between two parts: what it finished is kept (the source is rewound and the detectors skip the points they
have seen), so a first tick over 10 000 new series that overruns its timeout loses one part of work, not
all of it, and the next tick does not start the whole warm-up again.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Iterator, Mapping
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
# Series a per-series detector is handed at once. Small enough that an abandoned run stops soon (500
# ``default`` series take ~10-30 ms of CPU) and loses little; big enough that the per-call cost is noise.
PART = 500


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
    """Raised inside an abandoned run so that it stops before touching another detector or part."""


@dataclass
class _Progress:
    """How far a run's detection got: what the next tick needs when the run is abandoned.

    ``touched`` are the detectors handed (part of) the frame, ``findings`` and ``errors`` those of the
    parts finished; ``between_parts`` is False while a part is being evaluated (and stays False if the run
    died inside one), so only a run that stopped between two parts can keep what it did.
    """

    touched: list[str] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    errors: list[Finding] = field(default_factory=list)
    between_parts: bool = True


@dataclass
class _LateRun:
    """An abandoned run, as the next tick finds it: done yet, and how far it got."""

    done: threading.Lock  # released when the run has ended
    box: dict[str, Any]
    progress: _Progress

    def wait(self, timeout: float) -> bool:
        """Whether the run has ended, waiting up to ``timeout`` seconds for it."""
        if not self.done.acquire(timeout=timeout):
            return False
        self.done.release()  # left released: a later look finds the run ended too
        return True


class CheckRunner:
    """Runs ticks of one check; keeps ``since`` and detector/source state in the store across restarts.

    A tick that overruns its timeout is abandoned for good: its generation is retired (the late thread
    stops before its next detector or part and can never persist), and before the next tick the check gets
    a fresh source: hung while collecting, rewound to its state before that run (the detectors were not
    touched); stopped between two parts of per-series detectors, rewound too, the detectors keeping the
    series they finished; stuck inside a detector, source and detectors restored from the last committed
    checkpoint, from which the source re-reads (see :meth:`_recover`). Either way the next tick ends
    exactly where a run without the hung call would have.
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
        self._late: _LateRun | None = None  # the abandoned run itself
        self._source_before: Any = None  # the source's state before the abandoned run
        self._patience = 1.0  # timeout multiplier: doubled after an abandoned run that was slow, not stuck
        # findings and detector errors of the parts an abandoned run finished, reported by the next good tick
        self._carried: list[Finding] = []
        self._carried_errors: list[Finding] = []
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
            self._abandoned, self._late, self._source_before, self._patience = None, None, None, 1.0
            self._carried, self._carried_errors = [], []
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
        progress = _Progress()
        box: dict[str, Any] = {"phase": Phase.COLLECTING, "progress": progress}
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
            self._abandon(phase, source_before, _LateRun(done, box, progress))
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
                    now, source, detectors, generation, {"phase": Phase.COLLECTING, "progress": _Progress()}
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
        findings = [*self._carried, *findings]
        problems = [*frame.problems, *self._carried_errors, *detector_errors]
        self._carried, self._carried_errors = [], []
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

    def _abandon(self, phase: Phase, source_before: Any, late: _LateRun) -> None:
        """Note what the abandoned run may have changed, for :meth:`_recover` before the next tick."""
        self._abandoned, self._source_before, self._late = phase, source_before, late

    def _recover(self) -> None:
        """After an abandoned run: fresh plugin instances (the late thread may still hold the old ones),
        put back where a run without the abandoned one would be.

        Hung while collecting: only the source can have moved, and its state from before the run is at
        hand. Abandoned while detecting but stopped between two parts of per-series detectors (slow, not
        stuck: a first tick over thousands of new series): the detectors keep every series they finished,
        the source is rewound, and the next run re-reads the same points, which those series skip; the
        findings of the finished parts are reported by the next good tick. Otherwise (stuck inside a
        detector, or a detector judged whole was touched) the detectors may be half-updated, so they come
        back from the last checkpoint (a series never checkpointed starts fresh, as it would have) and the
        source re-reads from its cursor.

        Unless the run was stuck collecting (its collection has not ended), the next run re-reads what this
        one read and more, so it gets twice the time, up to 8x, or it would time out the same way forever.
        """
        late, self._late = self._late, None
        phase = self._abandoned
        keep = phase is Phase.DETECTING and late is not None and self._stopped_between_parts(late)
        if phase is Phase.DETECTING or (late is not None and self._ended(late)):
            self._patience = min(8.0, self._patience * 2)
        rebuild = self.runtime.rebuild
        fresh = rebuild() if rebuild is not None else None
        before = CheckRuntime(self.runtime.config, self.runtime.source, dict(self.runtime.detectors))
        if phase is Phase.COLLECTING or keep:
            if fresh is not None:
                self.runtime.source = fresh[0]
                before.detectors = fresh[1]  # the detectors carry on: the fresh ones are not needed
            self.runtime.source.load_state_dict(self._source_before)
            if keep and late is not None:
                self._carried.extend(late.progress.findings)
                self._carried_errors.extend(late.progress.errors)
                log.info(
                    "check source rewound after an abandoned run; its detectors keep what it finished",
                    check=self.name,
                    detectors=late.progress.touched,
                )
            else:
                log.info("check source rewound after an abandoned run", check=self.name)
        else:
            if fresh is not None:
                self.runtime.source, self.runtime.detectors = fresh
            self.checkpointer.abandon()
            self._carried, self._carried_errors = [], []  # the restored detectors score those points again
            self.restore()
            log.info("check restored from its last checkpoint after an abandoned run", check=self.name)
        if fresh is not None:
            before.stop()  # what was replaced (the late thread must not touch it any more anyway)
        self._abandoned, self._source_before = None, None

    def _ended(self, late: _LateRun) -> bool:
        """Whether the abandoned run has ended, waiting for it up to a quarter of the timeout."""
        return late.wait(0.25 * self.runtime.config.effective_timeout)

    def _stopped_between_parts(self, late: _LateRun) -> bool:
        """Whether the abandoned run has ended between two parts of per-series detectors only (waiting for
        it up to a quarter of the timeout: it stops at the end of the part it is in)."""
        if not self._ended(late):
            return False
        error = late.box.get("error")
        if error is not None and not isinstance(error, _Superseded):
            return False
        progress = late.progress
        detectors = self.runtime.detectors
        return progress.between_parts and all(
            key in detectors and detectors[key].per_series for key in progress.touched
        )

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
        progress: _Progress = box["progress"]
        if frame.empty:
            return frame, progress.findings, progress.errors
        for key, det in detectors.items():
            for part in _parts(frame, det):
                if not self._current(generation):
                    raise _Superseded(self.name)
                if key not in progress.touched:
                    progress.touched.append(key)
                progress.between_parts = False
                try:
                    progress.findings.extend(det.evaluate(part))
                except AiopsError as exc:
                    progress.errors.append(self._detector_failed(key, exc, now))
                    progress.between_parts = True
                    break  # one error per detector and tick, as when it was handed the whole frame
                progress.between_parts = True
        return frame, progress.findings, progress.errors

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


def _parts(frame: Frame, detector: Detector) -> Iterator[Frame]:
    """The frame as a per-series detector is handed it: :data:`PART` series at a time (the table rows
    with the first part only, so none is seen twice); any other detector gets it whole."""
    if not detector.per_series or len(frame.series) <= PART:
        yield frame
        return
    for start in range(0, len(frame.series), PART):
        rows = frame.rows if start == 0 else ()
        yield dataclasses.replace(frame, series=frame.series[start : start + PART], rows=rows)


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
