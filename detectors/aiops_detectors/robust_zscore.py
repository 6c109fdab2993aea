"""Rolling robust z-score (median and MAD): the simplest detector that a single outlier cannot fool."""

from __future__ import annotations

import bisect
import math
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import numpy as np
from pydantic import Field

from aiops.detection import Scorer, SeriesDetector, SeriesDetectorParams
from aiops_detectors.anomaly import _robust_kernel as kernel
from aiops_detectors.anomaly._base import band

MAD_TO_SIGMA = kernel.MAD_TO_SIGMA  # MAD of a normal distribution times this is its standard deviation


class RobustZScoreParams(SeriesDetectorParams):
    window: int = Field(500, ge=10, description="points in the rolling baseline")
    min_points: int = Field(30, ge=3, description="points needed before anything is scored")
    z_threshold: float = Field(5.0, gt=0, description="|z| at which the score reaches 0.5 (the default threshold)")
    min_scale: float = Field(1e-9, ge=0, description="absolute floor on the scale, so flat series need a real step")
    relative_min_scale: float = Field(
        1e-3, ge=0, description="scale floor relative to |median|, so float noise on a constant is not an anomaly"
    )


def sorted_mad(values: list[float], median: float) -> float:
    """``np.median(np.abs(values - median))`` of a sorted list in O(log n), bit for bit.

    The distances below the median (read right to left) and above it (left to right) are two sorted
    sequences; their k-th smallest element is found by binary search on how many come from the first.
    The compiled scorer (``anomaly._robust_kernel.sorted_mad``) runs the same selection on its state array.
    """
    n = len(values)
    split = bisect.bisect_left(values, median)
    n_low, n_high = split, n - split

    def low(j: int) -> float:
        return median - values[split - 1 - j]

    def high(j: int) -> float:
        return values[split + j] - median

    def kth(k: int) -> float:
        lo, hi = max(0, k + 1 - n_high), min(k + 1, n_low)
        while lo < hi:
            a = (lo + hi) // 2
            if low(a) < high(k - a):  # taking a+1 from the low side keeps the partition valid
                lo = a + 1
            else:
                hi = a
        a, b = lo, k + 1 - lo
        return max(low(a - 1) if a > 0 else -math.inf, high(b - 1) if b > 0 else -math.inf)

    if n % 2:
        return kth(n // 2)
    return (kth(n // 2 - 1) + kth(n // 2)) / 2.0


class RobustZScoreScorer(Scorer):
    """Median/MAD of the last ``window`` points; the current point is scored before it joins the window.

    The update runs compiled over one flat state array (``anomaly._robust_kernel``: the ring of the window
    in arrival order and the same values sorted); ``update`` and ``score`` call the same compiled step, with
    the arithmetic of :func:`sorted_mad`, so their scores are identical. The saved state is the window
    itself (a JSON-safe list, oldest first), so a restart resumes with the same baseline.
    """

    def __init__(self, params: RobustZScoreParams) -> None:
        self.params = params
        self.p = kernel.make_params(params)
        self.st = kernel.new_state(self.p)

    def update(self, timestamp: float, value: float) -> float:
        x = float(value)
        if not math.isfinite(x):
            return 0.0  # never poison the baseline; the source reports non-finite values as data quality
        return float(kernel.step(self.st, self.p, x))

    def score(self, timestamps: Sequence[float], values: Sequence[float]) -> np.ndarray:
        """The whole series inside the kernel (the same step as :meth:`update`, so the same scores)."""
        xs = np.array(values, dtype=float)
        if len(xs) != len(timestamps):
            raise ValueError(f"{len(timestamps)} timestamps but {len(xs)} values")
        out = np.empty(len(xs))
        kernel.run(self.st, self.p, xs, out)
        return out

    def expected(self) -> dict[str, Any]:
        st = self.st
        if not st[kernel.S_SCORED]:
            return {}
        m, s = float(st[kernel.S_MEDIAN]), float(st[kernel.S_SCALE])
        return band(m, self.params.z_threshold * s, median=m, mad=float(st[kernel.S_MAD]), z=float(st[kernel.S_Z]))

    def state_dict(self) -> dict[str, Any]:
        return {"values": kernel.window_values(self.st, self.p)}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        values = [float(v) for v in state.get("values", [])][-self.params.window :]
        if not all(math.isfinite(v) for v in values):
            raise ValueError("robust_zscore state holds a non-finite value (it starts afresh)")
        self.st = kernel.load_values(self.p, values)


class RobustZScoreDetector(SeriesDetector):
    """Flags points far from the rolling median, in units of the rolling MAD.

    Why median/MAD rather than mean/std: the anomaly being detected must not inflate its own baseline, and
    one spike moves a mean and a standard deviation a lot but a median and a MAD hardly at all.

    >>> from aiops.types import Frame, Series
    >>> det = RobustZScoreDetector(window=50, min_points=10, z_threshold=5)
    >>> ts = [float(i) for i in range(31)]
    >>> values = [100.0 + (i % 3) for i in range(30)] + [160.0]
    >>> [round(f.evidence["z"]) for f in det.evaluate(Frame("file", 0.0, series=(Series("latency", ts, values),)))]
    [40]
    """

    Params = RobustZScoreParams
    params: RobustZScoreParams
    name: ClassVar[str] = "robust_zscore"

    def new_scorer(self) -> RobustZScoreScorer:
        return RobustZScoreScorer(self.params)
