"""Several metrics of one service as one vector: a correlated failure is one finding, not one per metric."""

from __future__ import annotations

import math
from collections.abc import Mapping
from functools import partial
from typing import Any

from pydantic import Field

from aiops.detection import SeriesDetector, group_series, restored_scorers, saved_scorers
from aiops.types import Finding, Frame, Series, Severity, json_safe
from aiops_detectors.anomaly._base import Debounce, Likelihood
from aiops_detectors.anomaly.ensemble import DefaultParams, DefaultScorer


class MultivariateParams(DefaultParams):
    group_by: str | None = Field(
        None, description="label whose value groups series into one vector (None: a frame is one vector)"
    )
    joint: bool = Field(
        True, description="also score the metrics' summed surprise: moderate shifts of several metrics at once"
    )
    joint_short: int = Field(10, ge=1, le=1000, description="points the joint surprise is averaged over")
    # the per-metric pipelines keep the Gaussian likelihood and the levels the joint combination was built on
    threshold: float = Field(
        0.6, ge=0.0, le=1.0, description="anomaly score at or above which a finding is raised (= alert_level)"
    )
    alert_level: float = Field(0.6, gt=0.0, le=1.0, description="score that starts a rest period")
    cooldown_level: float = Field(0.9, gt=0.0, le=1.0, description="score needed to alert again in cooldown")
    tail: float = Field(0.0, ge=0.0, lt=1.0, description="peaks-over-threshold likelihood (0: Gaussian)")
    decades: float = Field(6.0, gt=0.0, description="a tail probability of 10**-decades scores 1")


class MultivariateScorer:
    """One ``default`` pipeline per metric (likelihood-normalised, so metrics are comparable), their
    surprises combined by ``max`` at each timestamp, then one shared debounce for the vector.

    ``update(timestamp, {metric: value})`` takes the metrics observed at that timestamp; a metric missing
    or non-finite at a timestamp is simply not updated.

    The joint component (``joint``) catches what no single metric shows: latency, errors and CPU each a
    little surprised at the same time. The sum of the metrics' surprises (Fisher's combination of their
    tail probabilities, up to a constant, since a surprise is a scaled ``-log10`` tail), averaged over
    ``joint_short`` points, goes through its own anomaly likelihood; metrics that move together in normal
    operation raise the sum's usual level, which that likelihood learns, so correlation alone is no alarm.
    """

    def __init__(self, params: MultivariateParams | None = None) -> None:
        p = params or MultivariateParams.model_validate({})
        # per-metric debouncing off: the vector is debounced as a whole; Holt-Winters is a single-series option
        self.metric_params = p.model_copy(update={"rest": 0, "cooldown": 0, "seasonal": False})
        self.debounce = Debounce(p.rest, p.alert_level, p.cooldown, p.cooldown_level)
        self.joint: Likelihood | None = None
        if p.joint:
            self.joint = Likelihood(
                short=p.joint_short, history=p.history, warmup=p.warmup, min_std=p.min_std, learn=p.learn
            )
        self.metrics: dict[str, DefaultScorer] = {}
        self.surprise: dict[str, float] = {}
        self.joint_surprise = 0.0

    def _metric(self, name: str) -> DefaultScorer:
        scorer = self.metrics.get(name)
        if scorer is None:
            scorer = DefaultScorer(self.metric_params)
            self.metrics[name] = scorer
        return scorer

    def update(self, timestamp: float, values: Mapping[str, float]) -> float:
        best = 0.0
        total = 0.0
        seen = 0
        for name, value in values.items():
            v = float(value)
            if not math.isfinite(v):
                continue
            s = self._metric(name).update(timestamp, v)
            self.surprise[name] = s
            best = max(best, s)
            total += s
            seen += 1
        if self.joint is not None and seen:
            self.joint_surprise = self.joint.update(total) if len(self.metrics) > 1 else 0.0
            best = max(best, self.joint_surprise)
        return self.debounce(best)

    def expected(self) -> dict[str, Any]:
        level = self.debounce.level
        fired = sorted(n for n, s in self.surprise.items() if s >= level)
        if not fired and self.joint_surprise >= level:  # together, not alone: name the metrics that moved
            fired = sorted(n for n, s in self.surprise.items() if s >= 0.5 * level)
        return {
            "surprise": dict(self.surprise),
            "joint_surprise": self.joint_surprise,
            "metrics": fired,
            "expected": {n: self.metrics[n].expected()["expected"] for n in fired},
        }

    def state_dict(self) -> dict[str, Any]:
        return {
            "metrics": {n: s.state_dict() for n, s in self.metrics.items()},
            "debounce": self.debounce.state_dict(),
            "surprise": dict(self.surprise),
            "joint": None if self.joint is None else self.joint.state_dict(),
            "joint_surprise": self.joint_surprise,
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.metrics = {}
        for name, sub in dict(state["metrics"]).items():
            self._metric(name).load_state_dict(sub)
        self.debounce = Debounce.from_state(state["debounce"])
        self.surprise = {k: float(v) for k, v in dict(state["surprise"]).items()}
        if self.joint is not None and state.get("joint") is not None:  # older states: the joint part relearns
            self.joint = Likelihood.from_state(state["joint"])
        self.joint_surprise = float(state.get("joint_surprise", 0.0))


class MultivariateDetector(SeriesDetector):
    """When a database slows down, latency, error rate and queue depth of the service all jump at once;
    five pages for one cause teach people to ignore pages. Series sharing the ``group_by`` label are scored
    as one vector (each metric judged against its own past, the most surprised one decides) and raise one
    finding that lists every metric that moved.

    >>> import math
    >>> from aiops.types import Frame, Series
    >>> det = MultivariateDetector(group_by="service")
    >>> ts = [60.0 * i for i in range(1200)]
    >>> def metric(name, base, jump):
    ...     vals = [base + math.sin(i / 9) + (jump if i >= 1190 else 0.0) for i in range(1200)]
    ...     return Series(name, ts, vals, {"service": "api"})
    >>> frame = Frame("t", ts[-1], series=(metric("latency", 10, 8), metric("errors", 1, 5), metric("qps", 50, 0)))
    >>> [(f.labels["service"], f.evidence["metrics"]) for f in det.evaluate(frame)]
    [('api', ['errors', 'latency'])]
    """

    Params = MultivariateParams
    name = "multivariate"
    params: MultivariateParams
    per_series = False  # a group's series are judged together

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        self._groups: dict[str, MultivariateScorer] = {}
        self._group_ts: dict[str, float] = {}

    def new_scorer(self) -> DefaultScorer:
        """A single series is a vector of one: the ``default`` pipeline (used by ``aiops detect``)."""
        return DefaultScorer(self.params)

    def evaluate(self, frame: Frame) -> list[Finding]:
        groups = group_series(frame, self.params.group_by)
        return [f for key, members in groups.items() if (f := self._evaluate_group(key, members)) is not None]

    def _evaluate_group(self, key: str, members: Mapping[str, Series]) -> Finding | None:
        scorer = self._groups.get(key)
        if scorer is None:
            scorer = self._groups[key] = MultivariateScorer(self.params)
        points: dict[float, dict[str, float]] = {}
        for metric, series in members.items():
            for t, v in zip(series.timestamps, series.values, strict=True):
                points.setdefault(float(t), {})[metric] = float(v)
        last = self._group_ts.get(key, -math.inf)
        threshold = float(self.params.threshold)
        worst: tuple[float, float, dict[str, Any]] | None = None
        for t in sorted(points):
            if t <= last or not math.isfinite(t):
                continue
            score = float(scorer.update(t, points[t]))
            last = t
            if score >= threshold and (worst is None or score > worst[1]):
                worst = (t, score, scorer.expected())
        self._group_ts[key] = last
        if worst is None:
            return None
        t, score, evidence = worst
        labels = {self.params.group_by: key} if self.params.group_by else {"group": "all"}
        moved = ", ".join(evidence["metrics"]) or "?"
        return Finding(
            kind=self.kind,
            detector=self.name,
            summary=f"{len(evidence['metrics'])} metric(s) anomalous together: {moved} (score {score:.2f})",
            severity=Severity(self.params.severity),
            score=score,
            labels=labels,
            evidence=json_safe({**evidence, "score": score, "timestamp": t}),
            observed_at=t,
        )

    def series_versions(self) -> None:
        """Saved whole: its state is one scorer per group, not per series (the inherited per-series hooks
        would see no series at all, and the groups would never be checkpointed)."""
        return None

    def state_dict(self) -> dict[str, Any]:
        return {"groups": saved_scorers(self._groups), "group_ts": dict(self._group_ts)}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self._groups = restored_scorers(state.get("groups", {}), partial(MultivariateScorer, self.params))
        self._group_ts = {k: float(v) for k, v in dict(state.get("group_ts", {})).items()}
