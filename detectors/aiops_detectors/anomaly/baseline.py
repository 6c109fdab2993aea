"""Faults of a machine against its own fault-free start: the ``baseline`` multivariate detector.

A test bed, a pump or a batch job starts in a known-good state; a fault (a closed valve, a leak, a worn
bearing) moves one or a few of its channels away from where they sat then. This detector learns each
channel's fault-free behaviour from the first ``train_rows`` vectors and scores every later vector by the
channel that moved furthest from it, in units of that channel's own training spread.

Three choices make it hold on runs it was not tuned on (SKAB's valve faults, see docs/detectors.md):

- **Slow channels are judged by their rate, not their level.** A temperature warms for the whole run, so
  its level leaves the training range without any fault; a training window of minutes cannot show the
  range of a channel whose lag-1 autocorrelation is close to 1. Such channels (autocorrelation at or above
  ``slow_autocorr`` in the training rows) are scored by their change over ``rate_lag`` rows, which is
  stationary where the level is not. Fast, noisy channels keep their level: a valve that closes moves the
  flow's level and keeps it there for the whole fault.
- **Each channel's evidence is averaged over ``window`` rows first** (a causal moving mean of its squared
  z-score), so one noisy row does not page while a fault, which lasts, does. Averaging per channel before
  comparing keeps a small persistent move of one channel (a valve half closed: the flow down by 1.4 of its
  training sd) from being drowned by the other channels' row-to-row noise, as a mean of the per-row
  maximum would be.
- **Each channel is judged against its own fault-free worst, and the most-moved channel decides.** A
  channel's averaged evidence is divided by its 99th percentile over the training rows, so a heavy-tailed
  or coarsely quantised channel (SKAB's flow rate steps by whole units) counts no more than a smooth one,
  and the score, the largest of these ratios, means "this many times the worst the fault-free start ever
  looked" whatever the channels' units. A fault moves few channels; an average over all of them would
  dilute it, and a full covariance (Hotelling's T²) learnt from a few hundred rows amplifies directions
  that merely had little variance then.

It is a baseline, not a model of normal drift: a long run whose channels wander far from the start (the
2.5-hour fault-free SKAB run does) will alarm. Re-baseline (a new detector state) after a planned change.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from aiops.detection import group_series
from aiops.plugins import Detector
from aiops.types import Finding, Frame, Series, Severity, json_safe


class BaselineParams(BaseModel):
    """Settings chosen by leave-one-group-out over SKAB's valve groups; see docs/detectors.md."""

    model_config = ConfigDict(extra="forbid")

    train_rows: int = Field(400, ge=20, le=1_000_000, description="fault-free vectors the baseline is learnt from")
    slow_autocorr: float = Field(
        0.7, gt=0.0, lt=1.0, description="lag-1 autocorrelation from which a channel is judged by its rate"
    )
    rate_lag: int = Field(10, ge=1, le=10_000, description="rows over which a slow channel's rate is taken")
    window: int = Field(30, ge=1, le=100_000, description="rows each channel's evidence is averaged over")
    threshold: float = Field(
        3.0, gt=0.0, description="alert at this multiple of a channel's training 99th-percentile evidence"
    )
    group_by: str | None = Field(
        None, description="label whose value groups series into one vector (None: a frame is one vector)"
    )
    severity: Severity = Severity.WARNING


class BaselineScorer:
    """Streaming scorer of one vector of channels; ``update`` returns the score ratio (>= 0).

    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> scorer = BaselineScorer(2, BaselineParams(train_rows=200, window=10))
    >>> normal = [scorer.update(rng.normal(size=2)) for _ in range(300)]
    >>> max(normal[200:]) < 3.0
    True
    >>> faulty = [scorer.update(rng.normal(size=2) + [0.0, 6.0]) for _ in range(20)]
    >>> faulty[-1] > 3.0
    True
    """

    def __init__(self, channels: int, params: BaselineParams | None = None) -> None:
        self.channels = channels
        self.params = params or BaselineParams.model_validate({})
        self._training: list[np.ndarray] = []
        self.slow_: np.ndarray | None = None  # per channel: judged by rate
        self.mean_: np.ndarray | None = None
        self.scale_: np.ndarray | None = None  # 0 where a channel was constant: left out
        self.norm_: np.ndarray = np.ones(channels)  # per channel: its training 99th-percentile evidence
        self._recent = np.full((self.params.rate_lag, channels), np.nan)  # raw rows, for the rates
        self._evidence = np.zeros((self.params.window, channels))  # the last rows' z^2 per channel, a ring
        self._rows = 0  # rows seen since training ended (ring positions)
        self.last_z: np.ndarray = np.zeros(channels)

    @property
    def fitted(self) -> bool:
        return self.mean_ is not None

    def update(self, values: Sequence[float] | np.ndarray) -> float:
        row = np.asarray(values, dtype=float).reshape(self.channels)
        if not self.fitted:
            self._training.append(row.copy())
            if len(self._training) >= self.params.train_rows:
                self._fit(np.vstack(self._training))
                self._training = []
            return 0.0
        feature = self._features(row)
        self._remember(row)
        return self._push_evidence(feature)

    def _features(self, row: np.ndarray) -> np.ndarray:
        assert self.slow_ is not None
        oldest = self._recent[self._rows % self.params.rate_lag]
        return np.where(self.slow_, row - oldest, row)

    def _remember(self, row: np.ndarray) -> None:
        self._recent[self._rows % self.params.rate_lag] = row

    def _push_evidence(self, feature: np.ndarray) -> float:
        assert self.mean_ is not None and self.scale_ is not None
        used = self.scale_ > 0
        with np.errstate(invalid="ignore", divide="ignore"):
            z = np.where(used, (feature - self.mean_) / np.where(used, self.scale_, 1.0), 0.0)
        z = np.where(np.isfinite(z), z, 0.0)  # a missing or non-finite value is no evidence either way
        self.last_z = z
        self._evidence[self._rows % self.params.window] = z * z
        self._rows += 1
        averaged = self._evidence[: min(self._rows, self.params.window)].mean(axis=0)
        return float(np.max(averaged / self.norm_)) if averaged.size else 0.0

    def _fit(self, train: np.ndarray) -> None:
        column_means = np.nanmean(np.where(np.isfinite(train), train, np.nan), axis=0)
        finite = np.nan_to_num(np.where(np.isfinite(train), train, column_means))
        lag, slow_autocorr = self.params.rate_lag, self.params.slow_autocorr
        if len(finite) > 2 * lag:
            self.slow_ = np.array([_lag1_autocorr(finite[:, j]) >= slow_autocorr for j in range(self.channels)])
        else:  # too few rows to learn a rate from: every channel by its level
            self.slow_ = np.zeros(self.channels, dtype=bool)
        rates = np.vstack([np.full((min(lag, len(finite)), self.channels), np.nan), finite[lag:] - finite[:-lag]])
        features = np.where(self.slow_, rates, finite)
        self.mean_ = np.nan_to_num(np.nanmean(features, axis=0))
        spread = np.nan_to_num(np.nanstd(features, axis=0))
        self.scale_ = np.where(spread > 1e-12 * (1.0 + np.abs(self.mean_)), spread, 0.0)
        # the training rows, replayed through the same path, give each channel's fault-free scale
        self.norm_ = np.ones(self.channels)
        self._recent[:] = np.nan
        self._rows = 0
        averaged = np.array([self._replay(r) for r in finite]).reshape(len(finite), self.channels)
        tail = averaged[lag:] if len(averaged) > lag else averaged
        self.norm_ = np.maximum(np.quantile(tail, 0.99, axis=0), 1e-12)
        # continue from the end of training: the ring holds the last rows where _features reads them next
        self._recent = np.full((lag, self.channels), np.nan)
        last = finite[-lag:]
        self._recent[lag - len(last) :] = last
        self._rows = 0
        self._evidence[:] = 0.0

    def _replay(self, row: np.ndarray) -> np.ndarray:
        """One training row through the scoring path; its per-channel averaged evidence."""
        assert self.mean_ is not None
        feature = self._features(row)
        self._remember(row)
        self._push_evidence(np.where(np.isfinite(feature), feature, self.mean_))
        averaged: np.ndarray = self._evidence[: min(self._rows, self.params.window)].mean(axis=0)
        return averaged

    def moved(self, top: int = 3) -> list[int]:
        """Indices of the channels that moved most in the last row, largest first."""
        order = np.argsort(-np.abs(self.last_z))
        return [int(i) for i in order[:top] if abs(self.last_z[i]) > 0]

    def state_dict(self) -> dict[str, Any]:
        return {
            "channels": self.channels,
            "training": [r.tolist() for r in self._training],
            "slow": None if self.slow_ is None else self.slow_.tolist(),
            "mean": None if self.mean_ is None else self.mean_.tolist(),
            "scale": None if self.scale_ is None else self.scale_.tolist(),
            "norm": self.norm_.tolist(),
            "recent": self._recent.tolist(),
            "evidence": self._evidence.tolist(),
            "rows": self._rows,
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.channels = int(state["channels"])
        self._training = [np.asarray(r, dtype=float) for r in state["training"]]
        self.slow_ = None if state["slow"] is None else np.asarray(state["slow"], dtype=bool)
        self.mean_ = None if state["mean"] is None else np.asarray(state["mean"], dtype=float)
        self.scale_ = None if state["scale"] is None else np.asarray(state["scale"], dtype=float)
        # a state saved before the evidence was kept per channel has one norm and one evidence column:
        # broadcast them, so a restart after an upgrade keeps its baseline instead of failing
        self.norm_ = np.broadcast_to(np.asarray(state["norm"], dtype=float), (self.channels,)).copy()
        self._recent = np.asarray(state["recent"], dtype=float).reshape(self.params.rate_lag, self.channels)
        evidence = np.asarray(state["evidence"], dtype=float)
        if evidence.ndim == 1:
            evidence = np.repeat(evidence[:, None], self.channels, axis=1)
        self._evidence = evidence.reshape(self.params.window, self.channels)
        self._rows = int(state["rows"])
        self.last_z = np.zeros(self.channels)


def _lag1_autocorr(x: np.ndarray) -> float:
    centred = x - x.mean()
    denom = float(np.dot(centred, centred))
    if denom <= 0.0:
        return 0.0
    return float(np.dot(centred[1:], centred[:-1]) / denom)


def score_matrix(values: np.ndarray, params: BaselineParams) -> np.ndarray:
    """Score every row of a (rows x channels) matrix; rows of the training part score 0."""
    scorer = BaselineScorer(values.shape[1], params)
    return np.array([scorer.update(row) for row in values])


class BaselineDetector(Detector):
    """A check detector: series sharing the ``group_by`` label form one vector whose first ``train_rows``
    timestamps are its fault-free baseline; a vector scoring at or above ``threshold`` raises one finding
    naming the channels that moved most.

    The channels of a vector are fixed by the first timestamp seen (sorted series keys); a channel missing
    at a later timestamp counts as no evidence.
    """

    Params = BaselineParams
    params: BaselineParams
    name = "baseline"
    kind = "anomaly"

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        self._groups: dict[str, BaselineScorer] = {}
        self._channels: dict[str, list[str]] = {}
        self._last_ts: dict[str, float] = {}

    def score_rows(self, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Offline scoring of one run (``aiops detect --multivariate``): (anomaly_score in [0, 1), alert).

        The score maps the ratio ``r`` to ``r / (r + threshold)``, so 0.5 is exactly the detector's own
        alert level and the ranking is unchanged.
        """
        ratios = score_matrix(np.asarray(values, dtype=float), self.params)
        threshold = self.params.threshold
        return ratios / (ratios + threshold), ratios >= threshold

    def evaluate(self, frame: Frame) -> list[Finding]:
        groups = group_series(frame, self.params.group_by)
        return [f for key, members in groups.items() if (f := self._evaluate_group(key, members)) is not None]

    def _evaluate_group(self, key: str, members: Mapping[str, Series]) -> Finding | None:
        channels = self._channels.setdefault(key, sorted(members))
        scorer = self._groups.get(key)
        if scorer is None:
            scorer = self._groups[key] = BaselineScorer(len(channels), self.params)
        index = {name: i for i, name in enumerate(channels)}
        rows: dict[float, np.ndarray] = {}
        for name, series in members.items():
            i = index.get(name)
            if i is None:
                continue  # a channel that appeared after the baseline was fixed is not part of it
            for t, v in zip(series.timestamps, series.values, strict=True):
                rows.setdefault(float(t), np.full(len(channels), np.nan))[i] = float(v)
        last = self._last_ts.get(key, -math.inf)
        worst: tuple[float, float, list[str]] | None = None
        for t in sorted(rows):
            if t <= last or not math.isfinite(t):
                continue
            score = scorer.update(rows[t])
            last = t
            if score >= self.params.threshold and (worst is None or score > worst[1]):
                worst = (t, score, [channels[i] for i in scorer.moved()])
        self._last_ts[key] = last
        if worst is None:
            return None
        t, score, moved = worst
        labels = {self.params.group_by: key} if self.params.group_by else {"group": "all"}
        return Finding(
            kind=self.kind,
            detector=self.name,
            summary=f"moved away from the fault-free baseline: {', '.join(moved) or '?'} "
            f"({score:.1f}x the baseline's worst)",
            severity=self.params.severity,
            score=score,
            labels=labels,
            evidence=json_safe({"channels": moved, "score": score, "timestamp": t, "threshold": self.params.threshold}),
            observed_at=t,
        )

    def state_dict(self) -> dict[str, Any]:
        return {
            "groups": {k: s.state_dict() for k, s in self._groups.items()},
            "channels": dict(self._channels),
            "last_ts": dict(self._last_ts),
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self._channels = {k: list(v) for k, v in dict(state.get("channels", {})).items()}
        self._groups = {}
        for key, sub in dict(state.get("groups", {})).items():
            scorer = BaselineScorer(len(self._channels.get(key, [])) or 1, self.params)
            scorer.load_state_dict(sub)
            self._groups[key] = scorer
        self._last_ts = {k: float(v) for k, v in dict(state.get("last_ts", {})).items()}
