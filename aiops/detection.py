"""Shared shapes for detectors: streaming metric scorers, the adapter that turns a scorer into a check
detector, and the result type of drift tests.

A metric scorer sees one series, one point at a time (``update``), and returns an anomaly score in [0, 1]
using only the past: it is what ``aiops detect`` runs over NAB. The :class:`SeriesDetector` adapter keeps one
scorer per series of a frame, feeds it only the new points, and turns scores over a threshold into findings
with the evidence a person needs to judge them.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol, TypeVar

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from aiops.plugins import Detector
from aiops.types import Finding, Frame, Series, Severity, json_safe, series_key


class Scorer(ABC):
    """Causal, O(1) amortised anomaly scorer of one series; its state is plain JSON-safe data.

    A scorer must implement :meth:`update`, :meth:`state_dict` and :meth:`load_state_dict`. The other hooks
    are optional capabilities, declared here with the behaviour a scorer without them gets, so callers call
    them plainly instead of probing for them:

    - :meth:`score`: the whole series at once; override with a faster path that returns exactly the same
      scores (default: :meth:`update` point by point).
    - :meth:`expected`: the expected band behind the latest score, for a finding's evidence (default: none).
    - :meth:`state_arrays`: the state with its numeric arrays left as numpy arrays, so a per-series
      checkpoint stores raw bytes rather than JSON lists (default: :meth:`state_dict`).

    >>> class Last(Scorer):
    ...     def __init__(self) -> None:
    ...         self.last = 0.0
    ...     def update(self, timestamp: float, value: float) -> float:
    ...         score, self.last = float(value > self.last), value
    ...         return score
    ...     def state_dict(self) -> dict[str, Any]:
    ...         return {"last": self.last}
    ...     def load_state_dict(self, state: Mapping[str, Any]) -> None:
    ...         self.last = float(state["last"])
    >>> s = Last()
    >>> s.score([0.0, 1.0, 2.0], [1.0, 0.5, 2.0]).tolist(), s.expected(), s.state_arrays()
    ([1.0, 0.0, 1.0], {}, {'last': 2.0})
    """

    @abstractmethod
    def update(self, timestamp: float, value: float) -> float:
        """Feed one point; return its anomaly score in [0, 1], judged on the past only."""

    @abstractmethod
    def state_dict(self) -> dict[str, Any]:
        """The scorer's state as JSON-safe data, enough for :meth:`load_state_dict` to resume exactly."""

    @abstractmethod
    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Resume from a state saved by :meth:`state_dict` (or :meth:`state_arrays`)."""

    def score(self, timestamps: Sequence[float], values: Sequence[float]) -> np.ndarray:
        """Score a whole series; equal, bit for bit, to feeding :meth:`update` point by point."""
        out = np.empty(len(values), dtype=float)
        for i, (t, v) in enumerate(zip(timestamps, values, strict=True)):
            out[i] = self.update(float(t), float(v))
        return out

    def expected(self) -> dict[str, Any]:
        """Evidence about the expected value behind the latest score (``expected``, ``lower``, ``upper``,
        ...); empty for a scorer that has no band to show."""
        return {}

    def state_arrays(self) -> dict[str, Any]:
        """The state for a per-series checkpoint; numeric arrays may stay numpy arrays."""
        return self.state_dict()


def batch_score(scorer: Scorer, timestamps: Sequence[float], values: Sequence[float]) -> np.ndarray:
    """Score a whole series with the scorer's batch path (:meth:`Scorer.score`), as a float array."""
    return np.asarray(scorer.score(timestamps, values), dtype=float)


class Stateful(Protocol):
    """What saves and restores its state as JSON-safe data (a scorer of one series, or of a group)."""

    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, state: Mapping[str, Any]) -> None: ...


S = TypeVar("S", bound=Stateful)


def saved_scorers(scorers: Mapping[str, Stateful]) -> dict[str, Any]:
    """The state of a detector's scorers, one per key (a series, a group), as one JSON-safe mapping."""
    return {key: scorer.state_dict() for key, scorer in scorers.items()}


def restored_scorers(states: Mapping[str, Any], new: Callable[[], S]) -> dict[str, S]:
    """The scorers :func:`saved_scorers` saved, each a ``new()`` scorer loaded with its state."""
    restored: dict[str, S] = {}
    for key, state in dict(states).items():
        scorer = new()
        scorer.load_state_dict(state)
        restored[key] = scorer
    return restored


def group_series(frame: Frame, label: str | None) -> dict[str, dict[str, Series]]:
    """Series of a frame as vectors: ``{value of label: {series key without that label: series}}``.

    Detectors that judge several metrics together (one finding per service, not per metric) group by one
    label; without a label the whole frame is one vector under the key ``""``.
    """
    groups: dict[str, dict[str, Series]] = {}
    for series in frame.series:
        key = "" if label is None else str(series.labels.get(label, ""))
        rest = {k: v for k, v in series.labels.items() if k != label}  # the group's own label is implied
        groups.setdefault(key, {})[series_key(series.name, rest)] = series
    return dict(sorted(groups.items()))


class SeriesDetectorParams(BaseModel):
    """Parameters every per-series detector shares."""

    model_config = ConfigDict(extra="forbid")

    threshold: float = Field(0.5, ge=0.0, le=1.0, description="anomaly score at or above which a finding is raised")
    severity: Severity = Severity.WARNING


class SeriesDetector(Detector):
    """Base of check detectors built from a per-series streaming scorer.

    Subclasses set ``Params`` (a subclass of :class:`SeriesDetectorParams`) and implement
    :meth:`new_scorer`. State is one scorer state per series key, plus the last timestamp fed, so that a
    point is never fed twice even if a source re-delivers it.
    """

    Params: ClassVar[type[SeriesDetectorParams]] = SeriesDetectorParams
    params: SeriesDetectorParams
    name: ClassVar[str] = "series"
    kind: ClassVar[str] = "anomaly"
    per_series: ClassVar[bool] = True  # one scorer per series, fed only points after its last timestamp

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        self._scorers: dict[str, Scorer] = {}
        self._last_ts: dict[str, float] = {}

    def new_scorer(self) -> Scorer:
        raise NotImplementedError

    def warm_up(self) -> None:
        """Run every scoring path once, on a throwaway copy, before the first tick.

        Compiled scorers (numba) compile on first use, or load machine code from their disk cache: seconds
        on a fresh install. Done inside the first tick, that time would count against the check's timeout
        and page someone with a ``check_timeout``; done here, the daemon simply reports ready a bit later.
        """
        clone = type(self)(**self.params.model_dump())
        one = Series("warm_up", (0.0,), (0.0,))  # one new point: the tick path
        two = Series("warm_up_2", (0.0, 1.0), (0.0, 1.0))  # several points: point by point
        clone.evaluate(Frame(source="warm-up", collected_at=1.0, series=(one, two)))
        batch_score(clone.new_scorer(), [0.0, 1.0], [0.0, 1.0])

    def explain(self, scorer: Scorer, value: float, score: float) -> dict[str, Any]:
        """Evidence for a finding: the point, its score and the scorer's expected band, if it has one."""
        return {"value": value, "score": score, **scorer.expected()}

    def evaluate(self, frame: Frame) -> list[Finding]:
        threshold, severity = self.params.threshold, self.params.severity
        findings: list[Finding] = []
        for series in frame.series:
            finding = self._evaluate_series(series, threshold, severity)
            if finding is not None:
                findings.append(finding)
        return findings

    def _evaluate_series(self, series: Series, threshold: float, severity: Severity) -> Finding | None:
        key = series.key
        scorer = self._scorer_for(key)
        last = self._last_ts.get(key, -math.inf)
        worst: tuple[float, float, float, dict[str, Any]] | None = None
        latest_score: float | None = None
        for t, v in zip(series.timestamps, series.values, strict=True):
            t, v = float(t), float(v)
            if t <= last or not math.isfinite(v):
                continue  # duplicates/out-of-order/NaN are the source's data-quality findings, not anomalies
            score = float(scorer.update(t, v))
            last = t
            latest_score = score
            if score >= threshold and (worst is None or score > worst[1]):
                worst = (t, score, v, self.explain(scorer, v, score))
        self._last_ts[key] = last
        # Only the newest point decides whether the series is anomalous *now*; earlier points in the same
        # batch that crossed the threshold still count, since a spike between two ticks is a real event.
        if worst is None or latest_score is None:
            return None
        return self._finding(series, worst, threshold, severity)

    def _scorer_for(self, key: str) -> Scorer:
        """The scorer of one series, created on its first point (subclasses may place it elsewhere)."""
        scorer = self._scorers.get(key)
        if scorer is None:
            scorer = self._scorers[key] = self.new_scorer()
        return scorer

    def _finding(
        self, series: Series, worst: tuple[float, float, float, dict[str, Any]], threshold: float, severity: Severity
    ) -> Finding:
        t, score, v, evidence = worst
        labels = {"series": series.name, **dict(series.labels)}
        return Finding(
            kind=self.kind,
            detector=self.name,
            summary=f"{series.name} = {v:.6g} is anomalous (score {score:.2f} >= {threshold:.2f})",
            severity=severity,
            score=score,
            labels=labels,
            evidence=json_safe({**evidence, "timestamp": t}),
            observed_at=t,
        )

    def state_dict(self) -> dict[str, Any]:
        return {"series": saved_scorers(self._scorers), "last_ts": dict(self._last_ts)}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self._scorers = restored_scorers(state.get("series", {}), self.new_scorer)
        self._last_ts = {k: float(v) for k, v in dict(state.get("last_ts", {})).items()}

    # -- per-series checkpoints: only the series that changed are saved, as arrays rather than JSON --------

    def series_versions(self) -> Mapping[str, float] | None:
        """Each series' last timestamp fed: a series whose entry moved has changed since it was saved."""
        return self._last_ts

    def series_state(self, key: str) -> dict[str, Any]:
        """One series' state; numeric arrays stay numpy arrays (:meth:`Scorer.state_arrays`) so the
        checkpoint can store them as raw bytes."""
        scorer = self._scorers.get(key)
        state: dict[str, Any] = {"last_ts": self._last_ts.get(key)}
        if scorer is not None:
            state["scorer"] = scorer.state_arrays()
        return state

    def load_series_state(self, key: str, state: Mapping[str, Any]) -> None:
        """Restore one series saved by :meth:`series_state` (replacing what this detector holds for it)."""
        if state.get("scorer") is not None:
            scorer = self.new_scorer()
            scorer.load_state_dict(state["scorer"])
            self._adopt(key, scorer)
        last = state.get("last_ts")
        if isinstance(last, int | float):
            self._last_ts[key] = float(last)

    def _adopt(self, key: str, scorer: Scorer) -> None:
        """Take a restored scorer as the scorer of ``key`` (banked detectors also move it into their bank)."""
        self._scorers[key] = scorer


@dataclass(frozen=True)
class ColumnDrift:
    """One column's test: which test, its statistic, p-value, effect size and the decision."""

    column: str
    test: str
    statistic: float
    p_value: float | None
    effect: float | None
    drift: bool
    details: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class DriftResult:
    """A drift decision for one current window against the reference, and why."""

    drift: bool
    summary: str
    columns: Mapping[str, ColumnDrift] = field(default_factory=dict)
    p_value: float | None = None
    details: Mapping[str, Any] = field(default_factory=dict)

    @property
    def drifted_columns(self) -> list[str]:
        return [name for name, col in self.columns.items() if col.drift]

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = json_safe(
            {
                "drift": self.drift,
                "summary": self.summary,
                "p_value": self.p_value,
                "columns": {
                    name: {
                        "test": c.test,
                        "statistic": c.statistic,
                        "p_value": c.p_value,
                        "effect": c.effect,
                        "drift": c.drift,
                        **dict(c.details),
                    }
                    for name, c in self.columns.items()
                },
                **dict(self.details),
            }
        )
        return out
