"""ADWIN: adaptive windowing change detector for an error-rate stream (Bifet & Gavaldà, SDM 2007).

ADWIN keeps a window of the recent values whose length adapts by itself: whenever some split of the window
into an older part ``W0`` and a newer part ``W1`` has means that differ by more than

    eps_cut = sqrt(2 / m * var(W) * ln(2 ln(n) / delta)) + 2 / (3 m) * ln(2 ln(n) / delta),
    m = 1 / (1 / n0 + 1 / n1)   (harmonic mean of the two lengths),

the older part is dropped, and that is a change. The bound (Bernstein's inequality with a union bound over
the splits, as in ADWIN2 and MOA) keeps the false-positive probability of a stationary stream at most
``delta`` per check. The window is stored as an exponential histogram (at most ``max_buckets`` buckets of each
size 1, 2, 4, ...), so memory is O(max_buckets * log n), an update is O(1) amortised, and a check (every
``clock`` points) is O(number of buckets). The state is a short list of numbers: JSON-safe and small.

For per-event errors (1 wrong, 0 right) or a bounded loss. By default only an *increase* of the mean alarms
(a model getting better is not an incident); the window still shrinks on any change, so the estimate adapts.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, ClassVar

from pydantic import Field

from aiops.detection import Scorer, SeriesDetector, SeriesDetectorParams


class AdwinScorer(Scorer):
    """ADWIN2 on one stream: ``update`` returns 1.0 on the point where a change is detected, else 0.0.

    Buckets are ``[size, total, variance]`` (``variance`` is the sum of squared deviations from the bucket
    mean), oldest first; sizes never increase from oldest to newest.
    """

    def __init__(self, params: AdwinParams | None = None) -> None:
        self.params = params or AdwinParams.model_validate({})
        self.buckets: list[list[float]] = []
        self.width = 0
        self.total = 0.0
        self.variance = 0.0
        self.ticks = 0
        self.last_change: dict[str, float] = {}

    # ---- the window ---------------------------------------------------------------------------------------
    @property
    def mean(self) -> float:
        return self.total / self.width if self.width else 0.0

    def _insert(self, value: float) -> None:
        if self.width:
            mean = self.total / self.width
            self.variance += self.width * (value - mean) ** 2 / (self.width + 1)
        self.width += 1
        self.total += value
        self.buckets.append([1.0, value, 0.0])
        self._compress()

    def _compress(self) -> None:
        """Merge the two oldest buckets of a size when there are more than ``max_buckets`` of it."""
        i = len(self.buckets) - 1
        while i >= 0:
            size = self.buckets[i][0]
            j = i
            while j > 0 and self.buckets[j - 1][0] == size:
                j -= 1
            # buckets[j .. i] all have this size (j the oldest of them)
            if i - j + 1 <= self.params.max_buckets:
                i = j - 1
                continue
            (n1, t1, v1), (n2, t2, v2) = self.buckets[j], self.buckets[j + 1]
            merged = [n1 + n2, t1 + t2, v1 + v2 + n1 * n2 * (t1 / n1 - t2 / n2) ** 2 / (n1 + n2)]
            self.buckets[j : j + 2] = [merged]
            i = j  # the merged bucket may overflow the next size up: look again from it

    def _drop_oldest(self) -> None:
        n, t, v = self.buckets.pop(0)
        rest = self.width - n
        if rest > 0:
            mean_rest = (self.total - t) / rest
            self.variance -= v + n * rest * (t / n - mean_rest) ** 2 / self.width
        self.variance = max(0.0, self.variance)
        self.width = int(rest)
        self.total -= t
        if self.width == 0:
            self.total, self.variance = 0.0, 0.0

    def _cut(self) -> tuple[bool, float, float]:
        """(is there a split whose means differ by more than eps_cut, older mean, newer mean) of the first."""
        n = self.width
        if n < 2 * self.params.min_window:
            return False, 0.0, 0.0
        var = self.variance / n
        dd = math.log(2.0 * math.log(n) / self.params.delta) if n > 2 else math.log(2.0 / self.params.delta)
        n0, t0 = 0.0, 0.0
        for size, total, _ in self.buckets[:-1]:
            n0 += size
            t0 += total
            n1 = n - n0
            if n0 < self.params.min_window or n1 < self.params.min_window:
                continue
            mu0, mu1 = t0 / n0, (self.total - t0) / n1
            m = 1.0 / (1.0 / n0 + 1.0 / n1)
            eps = math.sqrt(2.0 / m * var * dd) + 2.0 / (3.0 * m) * dd
            if abs(mu0 - mu1) > eps:
                return True, mu0, mu1
        return False, 0.0, 0.0

    # ---- StreamingScorer ---------------------------------------------------------------------------------
    def update(self, timestamp: float, value: float) -> float:
        self._insert(float(value))
        self.ticks += 1
        if self.ticks % self.params.clock:
            return 0.0
        changed, mu0, mu1 = self._cut()
        if not changed:
            return 0.0
        while changed:  # drop the old part until no split differs
            self._drop_oldest()
            changed = self._cut()[0]
        self.last_change = {"before": mu0, "after": mu1, "at": float(timestamp)}
        return 1.0 if self.params.two_sided or mu1 > mu0 else 0.0

    def expected(self) -> dict[str, Any]:
        return {"window": self.width, "window_mean": self.mean, "change": dict(self.last_change)}

    def state_dict(self) -> dict[str, Any]:
        return {
            "buckets": [list(b) for b in self.buckets],
            "width": self.width,
            "total": self.total,
            "variance": self.variance,
            "ticks": self.ticks,
            "last_change": dict(self.last_change),
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.buckets = [[float(x) for x in b] for b in state.get("buckets", [])]
        self.width = int(state.get("width", 0))
        self.total = float(state.get("total", 0.0))
        self.variance = float(state.get("variance", 0.0))
        self.ticks = int(state.get("ticks", 0))
        self.last_change = {str(k): float(v) for k, v in dict(state.get("last_change", {})).items()}


class AdwinParams(SeriesDetectorParams):
    """Parameters of :class:`Adwin` (``threshold`` of the base class: scores are 0 or 1)."""

    delta: float = Field(0.002, gt=0.0, lt=1.0, description="false-positive bound of one check of a stationary stream")
    clock: int = Field(32, ge=1, description="check for a change every N points")
    max_buckets: int = Field(5, ge=2, description="buckets kept per size (memory and precision)")
    min_window: int = Field(5, ge=1, description="smallest older / newer part of a split")
    two_sided: bool = Field(False, description="alarm on a decrease of the mean too (default: increases only)")


class Adwin(SeriesDetector):
    """ADWIN change detector on error-rate or loss series (per-event labels as they arrive).

    >>> import random
    >>> rng = random.Random(0)
    >>> scorer = Adwin().new_scorer()
    >>> max(scorer.update(float(t), float(rng.random() < 0.1)) for t in range(3000))
    0.0
    >>> alarms = [t for t in range(3000, 4000) if scorer.update(float(t), float(rng.random() < 0.4))]
    >>> 3000 < alarms[0] < 3200
    True
    """

    Params = AdwinParams
    params: AdwinParams
    name: ClassVar[str] = "adwin"
    kind: ClassVar[str] = "performance"

    def new_scorer(self) -> AdwinScorer:
        return AdwinScorer(self.params)
