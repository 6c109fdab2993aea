"""Rolling robust z-score (median and MAD): the simplest detector that a single outlier cannot fool."""

from __future__ import annotations

import bisect
import math
from collections import deque
from collections.abc import Mapping
from typing import Any, ClassVar

from pydantic import BaseModel, Field

from aiops.detection import SeriesDetector, SeriesDetectorParams

MAD_TO_SIGMA = 1.4826  # MAD of a normal distribution times this is its standard deviation


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


class RobustZScoreScorer:
    """Median/MAD of the last ``window`` points; the current point is scored before it joins the window.

    State is the window itself (JSON-safe list), so a restart resumes with the same baseline.
    """

    def __init__(
        self, window: int, min_points: int, z_threshold: float, min_scale: float, relative_min_scale: float
    ) -> None:
        self.window = window
        self.min_points = min_points
        self.z_threshold = z_threshold
        self.min_scale = min_scale
        self.relative_min_scale = relative_min_scale
        self._values: deque[float] = deque()
        self._sorted: list[float] = []
        self._last: dict[str, float] = {}
        self._mad = 0.0

    def _scale(self, median: float) -> float:
        self._mad = sorted_mad(self._sorted, median)
        return max(self._mad * MAD_TO_SIGMA, self.min_scale, self.relative_min_scale * abs(median))

    def update(self, timestamp: float, value: float) -> float:
        if not math.isfinite(value):
            return 0.0  # never poison the baseline; the source reports non-finite values as data quality
        score = 0.0
        if len(self._sorted) >= self.min_points:
            n = len(self._sorted)
            median = (self._sorted[(n - 1) // 2] + self._sorted[n // 2]) / 2.0
            scale = self._scale(median)
            z = (value - median) / scale
            score = abs(z) / (abs(z) + self.z_threshold)
            self._last = {"median": median, "mad": self._mad, "scale": scale, "z": z}
        self._values.append(value)
        bisect.insort(self._sorted, value)
        if len(self._values) > self.window:
            old = self._values.popleft()
            del self._sorted[bisect.bisect_left(self._sorted, old)]
        return score

    def expected(self) -> dict[str, Any]:
        if not self._last:
            return {}
        m, s = self._last["median"], self._last["scale"]
        return {
            "expected": m,
            "median": m,
            "mad": self._last["mad"],
            "z": self._last["z"],
            "lower": m - self.z_threshold * s,
            "upper": m + self.z_threshold * s,
        }

    def state_dict(self) -> dict[str, Any]:
        return {"values": list(self._values)}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        values = [float(v) for v in state.get("values", [])][-self.window :]
        self._values = deque(values)
        self._sorted = sorted(values)
        self._last = {}


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

    Params: ClassVar[type[BaseModel]] = RobustZScoreParams
    name: ClassVar[str] = "robust_zscore"

    def new_scorer(self) -> RobustZScoreScorer:
        p = self.params
        assert isinstance(p, RobustZScoreParams)
        return RobustZScoreScorer(p.window, p.min_points, p.z_threshold, p.min_scale, p.relative_min_scale)
