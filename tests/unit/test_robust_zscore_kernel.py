"""The compiled ``robust_zscore`` scorer against the plain-Python implementation it replaced, bit for bit."""

from __future__ import annotations

import bisect
import json
import math
from collections import deque
from collections.abc import Mapping
from typing import Any

import numpy as np
import pytest
from aiops_detectors.anomaly import _robust_kernel as kernel
from aiops_detectors.robust_zscore import RobustZScoreDetector, RobustZScoreParams, RobustZScoreScorer

from aiops.detection import Scorer
from aiops.types import Frame, Series

MAD_TO_SIGMA = 1.4826


def reference_sorted_mad(values: list[float], median: float) -> float:
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
            if low(a) < high(k - a):
                lo = a + 1
            else:
                hi = a
        a, b = lo, k + 1 - lo
        return max(low(a - 1) if a > 0 else -math.inf, high(b - 1) if b > 0 else -math.inf)

    if n % 2:
        return kth(n // 2)
    return (kth(n // 2 - 1) + kth(n // 2)) / 2.0


class ReferenceRobustZScore(Scorer):
    """The Python scorer as it was before the kernel (deque, sorted list, ``bisect``), copied verbatim."""

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
        self._mad = reference_sorted_mad(self._sorted, median)
        return max(self._mad * MAD_TO_SIGMA, self.min_scale, self.relative_min_scale * abs(median))

    def update(self, timestamp: float, value: float) -> float:
        if not math.isfinite(value):
            return 0.0
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


PARAMS = [(60, 10, 5.0, 1e-9, 1e-3), (500, 30, 5.0, 1e-9, 1e-3), (11, 3, 2.0, 1e-12, 0.0)]


def hard_series(n: int = 3000, seed: int = 5) -> np.ndarray:
    """Noise rounded to one decimal (ties, values equal to the median), spikes, NaN and inf, a constant
    stretch longer than the window, and a stretch around zero where rounding yields both 0.0 and -0.0."""
    rng = np.random.default_rng(seed)
    v = np.round(20 + 3 * np.sin(np.arange(n) / 20) + rng.normal(0, 1.0, n), 1)
    v[[300, 301, 900, 1400]] += [60.0, -45.0, 1e6, 25.0]
    v[[50, 51, 777, 2000]] = [np.nan, np.inf, np.nan, -np.inf]
    v[1000:1700] = 7.25  # constant: MAD 0, the scale floor decides; then the series leaves it
    v[1700] = 7.5
    v[2200:2600] = np.round(rng.normal(0, 0.04, 400), 1)  # 0.0, -0.0, +-0.1
    v[2600:2620] = -0.0
    return v


def _bits(xs: list[float]) -> list[int]:
    return np.asarray(xs, dtype=float).view(np.int64).tolist()


def _scorer(params: tuple[Any, ...]) -> RobustZScoreScorer:
    names = ("window", "min_points", "z_threshold", "min_scale", "relative_min_scale")
    return RobustZScoreScorer(RobustZScoreParams(**dict(zip(names, params, strict=True))))


def _sorted_window(s: RobustZScoreScorer) -> list[float]:
    w = int(s.p[kernel.P_WINDOW])
    n = int(s.st[kernel.S_COUNT])
    return list(s.st[kernel.HEADER + w : kernel.HEADER + w + n].tolist())


@pytest.mark.parametrize("params", PARAMS)
def test_compiled_scorer_equals_the_python_reference_bit_for_bit(params: tuple[Any, ...]) -> None:
    v = hard_series()
    ref, fast = ReferenceRobustZScore(*params), _scorer(params)
    for i, x in enumerate(v.tolist()):
        want, got = ref.update(60.0 * i, x), fast.update(60.0 * i, x)
        assert _bits([got]) == _bits([want]), i
        assert fast.expected() == ref.expected(), i
        if i % 97 == 0 or 2200 <= i < 2640:  # the sorted window, down to the sign of each zero
            assert _bits(_sorted_window(fast)) == _bits(ref._sorted), i
    assert fast.state_dict() == ref.state_dict()
    assert _bits(fast.state_dict()["values"]) == _bits(ref.state_dict()["values"])


@pytest.mark.parametrize("params", PARAMS)
def test_batch_equals_streaming_and_restore_mid_stream(params: tuple[Any, ...]) -> None:
    v = hard_series()
    t = 60.0 * np.arange(len(v))
    streamed = _scorer(params)
    a = np.array([streamed.update(ti, vi) for ti, vi in zip(t.tolist(), v.tolist(), strict=True)])
    batch = _scorer(params)
    assert np.array_equal(batch.score(t, v), a)
    assert batch.state_dict() == streamed.state_dict()
    for cut in (5, 700, 1650):
        first = _scorer(params)
        head = first.score(t[:cut], v[:cut])
        saved = json.loads(json.dumps(first.state_dict(), allow_nan=False))  # JSON-safe, as the daemon stores it
        second = _scorer(params)
        second.load_state_dict(saved)
        tail = [second.update(ti, vi) for ti, vi in zip(t[cut:].tolist(), v[cut:].tolist(), strict=True)]
        assert np.array_equal(np.concatenate([head, tail]), a), cut
        # the reference restored from the same state agrees too (the layout is unchanged)
        ref = ReferenceRobustZScore(*params)
        ref.load_state_dict(saved)
        assert [ref.update(ti, vi) for ti, vi in zip(t[cut:].tolist(), v[cut:].tolist(), strict=True)] == tail
    assert second.state_dict() == streamed.state_dict()


def test_state_saved_by_the_python_scorer_loads_and_bad_states_are_refused() -> None:
    v = hard_series()[:1500]
    ref = ReferenceRobustZScore(*PARAMS[0])
    for i, x in enumerate(v.tolist()):
        ref.update(float(i), x)
    fast = _scorer(PARAMS[0])
    fast.load_state_dict(ref.state_dict())
    assert ref.expected() and fast.expected() == {}  # loading forgets the last evidence, as before
    ref.load_state_dict(ref.state_dict())
    assert [fast.update(0.0, x) for x in (20.0, 90.0, 19.9)] == [ref.update(0.0, x) for x in (20.0, 90.0, 19.9)]
    longer = _scorer(PARAMS[0])
    longer.load_state_dict({"values": list(range(1000))})  # more than the window: the newest are kept
    assert longer.state_dict()["values"] == [float(x) for x in range(940, 1000)]
    with pytest.raises(ValueError, match="non-finite"):
        _scorer(PARAMS[0]).load_state_dict({"values": [1.0, math.nan]})


def test_kernel_sorted_mad_equals_numpy_bit_for_bit() -> None:
    rng = np.random.default_rng(11)
    for trial in range(2000):
        n = int(rng.integers(1, 40))
        if trial % 3 == 0:
            x = rng.normal(size=n)
        elif trial % 3 == 1:
            x = rng.integers(0, 4, size=n).astype(float)
        else:
            x = np.round(rng.exponential(size=n), 1)
        s = np.sort(x)
        m = (s[(n - 1) // 2] + s[n // 2]) / 2.0
        padded = np.concatenate([[9.0, -9.0, 9.0], s])  # the window sits at an offset in the state array
        assert kernel.sorted_mad(padded, 3, n, m) == float(np.median(np.abs(s - m)))


class ReferenceDetector(RobustZScoreDetector):
    def new_scorer(self) -> Any:
        p = self.params
        return ReferenceRobustZScore(p.window, p.min_points, p.z_threshold, p.min_scale, p.relative_min_scale)


def test_detector_findings_equal_the_reference_through_evaluate() -> None:
    rng = np.random.default_rng(2)
    base = np.round(10 + rng.normal(0, 1, (400, 6)), 1)
    base[300, 2] = 40.0
    base[200:260, 4] = np.nan
    det, ref = RobustZScoreDetector(window=50, min_points=10), ReferenceDetector(window=50, min_points=10)
    found = 0
    for i in range(400):
        series = tuple(Series("m", (60.0 * i,), (float(base[i, s]),), {"id": str(s)}) for s in range(6))
        frame = Frame("t", 60.0 * i, series)
        got, want = det.evaluate(frame), ref.evaluate(frame)
        assert [(f.score, f.labels, f.evidence) for f in got] == [(f.score, f.labels, f.evidence) for f in want], i
        found += len(got)
    assert found > 0
    assert det.state_dict() == ref.state_dict()
