"""Exponentially weighted mean and deviation: a forecaster with a memory of ``1/alpha`` points."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from pydantic import Field

from aiops.detection import SeriesDetector, SeriesDetectorParams
from aiops_detectors.anomaly._base import ScorerBase, band, robust_scale
from aiops_detectors.anomaly._batch import ewma_run


class EwmaParams(SeriesDetectorParams):
    alpha: float = Field(0.05, gt=0.0, lt=1.0, description="weight of the newest point in the mean")
    beta: float = Field(0.02, gt=0.0, lt=1.0, description="weight of the newest point in the deviation")
    z_threshold: float = Field(5.0, gt=0.0, description="|z| at which the score is 0.5")
    min_points: int = Field(30, ge=1, description="points seen before anything is scored")


class EwmaScorer(ScorerBase):
    """z = (x - ewma) / (1.2533 * ewma of |residual|), scored as |z| / (|z| + z_threshold).

    The deviation is the mean absolute residual, not the variance: one spike squared would otherwise
    blind the detector for ``1/beta`` points.
    """

    def __init__(self, params: EwmaParams | None = None) -> None:
        self.params = params or EwmaParams.model_validate({})
        self.mean = 0.0
        self.dev = 0.0
        self.n = 0
        self.z = 0.0

    def _scale(self) -> float:
        return robust_scale(self.dev, self.mean)

    def _update(self, t: float, x: float) -> float:
        if self.n == 0:
            self.mean = x
            self.n = 1
            return 0.0
        r = x - self.mean
        score = 0.0
        if self.n >= self.params.min_points:
            self.z = r / self._scale()
            score = abs(self.z) / (abs(self.z) + self.params.z_threshold)
        # a point far outside the band moves the baseline only as much as one at the band's edge
        if self.n >= self.params.min_points:
            lim = self.params.z_threshold * self._scale()
            r_c = max(-lim, min(lim, r))
        else:
            r_c = r
        self.mean += self.params.alpha * r_c
        self.dev += self.params.beta * (abs(r_c) - self.dev) if self.n > 1 else abs(r_c)
        self.n += 1
        return score

    def score(self, timestamps: Sequence[float], values: Sequence[float]) -> np.ndarray:
        """The same arithmetic compiled (``_batch.ewma_run``): identical scores, ~50x the points/s."""
        st = np.array([self.mean, self.dev, float(self.n), self.z])
        out = ewma_run(
            st,
            self.params.alpha,
            self.params.beta,
            self.params.z_threshold,
            self.params.min_points,
            np.asarray(timestamps, dtype=float),
            np.asarray(values, dtype=float),
        )
        self.mean, self.dev, self.n, self.z = float(st[0]), float(st[1]), int(st[2]), float(st[3])
        return np.asarray(out)

    def expected(self) -> dict[str, Any]:
        return band(self.mean, self.params.z_threshold * self._scale(), z=self.z)

    def state_dict(self) -> dict[str, Any]:
        return {"mean": self.mean, "dev": self.dev, "n": self.n, "z": self.z}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.mean, self.dev = float(state["mean"]), float(state["dev"])
        self.n, self.z = int(state["n"]), float(state["z"])


class EwmaDetector(SeriesDetector):
    """A forecast that forgets: for series whose normal level wanders (queue depth, traffic without a
    clear season), where a fixed window is either too slow or too jumpy. Outliers are clipped before they
    update the baseline, so one spike neither drags the expected value nor widens the band.

    >>> s = EwmaDetector(min_points=20).new_scorer()
    >>> quiet = [s.update(t, 5.0 + 0.1 * (t % 2)) for t in range(100)]
    >>> max(quiet) < 0.5, s.update(100, 9.0) > 0.5
    (True, True)
    """

    Params = EwmaParams
    name = "ewma"
    params: EwmaParams

    def new_scorer(self) -> EwmaScorer:
        return EwmaScorer(self.params)


__all__ = ["EwmaDetector", "EwmaScorer"]
