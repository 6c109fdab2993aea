"""One tick of one check: collect, detect, persist state, all under a timeout.

A stuck source must not stall the daemon: the collection runs in a worker thread; when it overruns the
check's timeout the tick is abandoned (its late result discarded, its state never saved), a ``check_timeout``
finding is returned, and the next tick runs as scheduled.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import structlog

from aiops.engine.runtime import CheckRuntime
from aiops.errors import AiopsError, SourceError
from aiops.store.store import Store
from aiops.types import Finding, Frame, Severity

log = structlog.get_logger("aiops.check")


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


class CheckRunner:
    """Runs ticks of one check; keeps ``since`` and detector/source state in the store across restarts."""

    def __init__(self, runtime: CheckRuntime, store: Store) -> None:
        self.runtime = runtime
        self.store = store
        self._generation = 0
        self._lock = threading.Lock()
        self._since: float | None = None
        self._restored = False

    @property
    def name(self) -> str:
        return self.runtime.name

    def restore(self) -> None:
        """Load persisted state; a detector that cannot load its old state starts fresh (and says so)."""
        row = self.store.load_check_state(self.name)
        self._restored = True
        if row is None:
            return
        self._since = row["since"]
        detector_state: Mapping[str, Any] = row["detector_state"] or {}
        for key, det in self.runtime.detectors.items():
            if key in detector_state and hasattr(det, "load_state_dict"):
                try:
                    det.load_state_dict(detector_state[key])
                except Exception as exc:
                    log.warning("detector state discarded", check=self.name, detector=key, error=str(exc))
        source_state = row["source_state"] or {}
        if source_state and hasattr(self.runtime.source, "load_state_dict"):
            try:
                self.runtime.source.load_state_dict(source_state)
            except Exception as exc:
                log.warning("source state discarded", check=self.name, error=str(exc))

    def tick(self, now: float) -> CheckResult:
        if not self._restored:
            self.restore()
        with self._lock:
            self._generation += 1
            generation = self._generation
        timeout = self.runtime.config.effective_timeout
        box: dict[str, Any] = {}
        done = threading.Event()
        started = time.monotonic()

        def work() -> None:
            try:
                box["result"] = self._collect_and_detect(now)
            except BaseException as exc:
                box["error"] = exc
            finally:
                done.set()

        worker = threading.Thread(target=work, name=f"check-{self.name}", daemon=True)
        worker.start()
        if not done.wait(timeout):
            with self._lock:
                self._generation += 1  # the late result of the abandoned run is discarded
            return CheckResult(
                check=self.name,
                outcome="timeout",
                duration=time.monotonic() - started,
                error=f"check did not finish within {timeout:g}s",
                problems=[
                    Finding(
                        kind="check_timeout",
                        detector="scheduler",
                        summary=f"check {self.name} did not finish within {timeout:g}s; run abandoned",
                        severity=Severity.WARNING,
                        labels={"problem": "check_timeout"},
                        evidence={"timeout_seconds": timeout},
                        observed_at=now,
                    )
                ],
            )
        duration = time.monotonic() - started
        if "error" in box:
            return self._error_result(box["error"], now, duration)
        frame, findings, detector_errors = box["result"]
        with self._lock:
            if generation != self._generation:
                return CheckResult(check=self.name, outcome="timeout", duration=duration, error="superseded")
            self._persist(frame, now)
        return self._ok_result(frame, findings, detector_errors, duration)

    def tick_inline(self, now: float) -> CheckResult:
        """One tick in the calling thread and without the timeout: for replays (backtests), whose source
        answers from memory and whose clock is simulated, so a wall-clock timeout means nothing."""
        if not self._restored:
            self.restore()
        started = time.monotonic()
        try:
            frame, findings, detector_errors = self._collect_and_detect(now)
        except Exception as exc:
            return self._error_result(exc, now, time.monotonic() - started)
        self._persist(frame, now)
        return self._ok_result(frame, findings, detector_errors, time.monotonic() - started)

    def _ok_result(
        self, frame: Frame, findings: list[Finding], detector_errors: list[Finding], duration: float
    ) -> CheckResult:
        return CheckResult(
            check=self.name,
            outcome="ok",
            findings=findings,
            problems=[*frame.problems, *detector_errors],
            healthy_data=frame.fresh,
            duration=duration,
            current=current_values(frame),
        )

    def _collect_and_detect(self, now: float) -> tuple[Frame, list[Finding], list[Finding]]:
        frame: Frame = self.runtime.source.collect(self._since, now)
        findings: list[Finding] = []
        errors: list[Finding] = []
        if frame.empty:
            return frame, findings, errors
        for key, det in self.runtime.detectors.items():
            try:
                findings.extend(det.evaluate(frame))
            except AiopsError as exc:
                errors.append(self._detector_failed(key, exc, now))
        return frame, findings, errors

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

    def _persist(self, frame: Frame, now: float) -> None:
        self._since = now
        detector_state = {
            key: det.state_dict() for key, det in self.runtime.detectors.items() if hasattr(det, "state_dict")
        }
        source = self.runtime.source
        source_state = source.state_dict() if hasattr(source, "state_dict") else {}
        self.store.save_check_state(self.name, self._since, detector_state, source_state, now)

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
