"""Value novelty: how far the current value is from every value the series took recently.

The shape detectors (``knn.py``) ask "has the series moved like this before?"; a level shift, a slow climb
to a new plateau or a value parked in a gap of the usual distribution often moves exactly like the past and
is only new in *where* it is. This raw score asks "has the series been here before?": the distance from the
current value to the nearest of the last ``memory`` values, in units of the series' typical step, ``log1p``.
It is the one-dimensional case of KNN-CAD's nearest-neighbour non-conformity (Burnaev & Ishimtsev), and in
spirit the "new fact" half of CAD OSE (Smirnov) and the value histogram of the relative-entropy detector
(Wang et al.): a value far from all recent values is a new fact, whatever shape led to it.

A sorted list of the window makes the search O(log memory) (plus one C-level ``memmove`` to insert and
evict), so a long memory is cheap; the likelihood and debounce of ``default`` turn the raw score into a
calibrated surprise.

This is the readable reference of the value component of ``default``'s compiled kernel
(``aiops_detectors.anomaly._default_kernel``), which the detector runs; tests compare the two.
"""

from __future__ import annotations

import bisect
import math
from array import array
from collections.abc import Mapping
from typing import Any

from aiops_detectors.anomaly._base import ScorerBase


class ValueNovelty:
    """Raw novelty of a value: ``log1p(min_j |x - x_j| / step)`` over the last ``memory`` values.

    The current value is compared with the values up to two points back (as the shape detectors, a value
    enters the memory one point late, so a random walk's last step is not "the nearest past value");
    ``step`` is the exponentially weighted mean absolute step (memory ``1/step_alpha`` points), floored
    relative to the value's magnitude so float noise on a constant series is no novelty. Scoring starts
    once ten values are in memory.

    >>> v = ValueNovelty(memory=100)
    >>> raws = [v.update(10.0 + (i % 5)) for i in range(200)]
    >>> max(raws[20:]) == 0.0, round(v.update(30.0), 2)
    (True, 2.36)
    """

    def __init__(self, memory: int = 4000, step_alpha: float = 0.003) -> None:
        self.memory = int(memory)
        self.step_alpha = float(step_alpha)
        self.step = 0.0
        self.prev = math.nan
        self.pending = math.nan  # the previous value, not yet in memory
        self.n = 0
        self.lo = math.inf
        self.hi = -math.inf
        self.ring = array("d")  # memory in arrival order, a ring once full (oldest at ``pos``)
        self.pos = 0
        self.sorted = array("d")  # the same values, ascending (8 bytes a value)

    def update(self, x: float) -> float:
        self.lo = min(self.lo, x)
        self.hi = max(self.hi, x)
        self.n += 1
        if self.n > 1:
            self.step += max(self.step_alpha, 1.0 / (self.n - 1)) * (abs(x - self.prev) - self.step)
        self.prev = x
        raw = 0.0
        if len(self.sorted) >= 10:
            vals = self.sorted
            i = bisect.bisect_left(vals, x)
            dist = min(abs(x - vals[i]) if i < len(vals) else math.inf, abs(x - vals[i - 1]) if i > 0 else math.inf)
            unit = max(self.step, 1e-9 * max(abs(self.lo), abs(self.hi)), 1e-12)
            raw = math.log1p(dist / unit)
        if self.n > 1:
            self._remember(self.pending)
        self.pending = x
        return raw

    def _remember(self, x: float) -> None:
        if len(self.ring) < self.memory:
            self.ring.append(x)
        else:
            old = self.ring[self.pos]
            self.ring[self.pos] = x
            self.pos = (self.pos + 1) % self.memory
            del self.sorted[bisect.bisect_left(self.sorted, old)]
        bisect.insort(self.sorted, x)

    def values(self) -> list[float]:
        """The memory, oldest first."""
        return self.ring[self.pos :].tolist() + self.ring[: self.pos].tolist()

    def state_dict(self) -> dict[str, Any]:
        return {
            "memory": self.memory,
            "step_alpha": self.step_alpha,
            "step": self.step,
            "prev": self.prev if math.isfinite(self.prev) else None,
            "pending": self.pending if math.isfinite(self.pending) else None,
            "n": self.n,
            "lo": self.lo if math.isfinite(self.lo) else None,
            "hi": self.hi if math.isfinite(self.hi) else None,
            "values": self.values(),
        }

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> ValueNovelty:
        obj = cls(int(state["memory"]), float(state["step_alpha"]))
        obj.step, obj.n = float(state["step"]), int(state["n"])
        obj.prev = math.nan if state["prev"] is None else float(state["prev"])
        obj.pending = math.nan if state["pending"] is None else float(state["pending"])
        obj.lo = math.inf if state["lo"] is None else float(state["lo"])
        obj.hi = -math.inf if state["hi"] is None else float(state["hi"])
        obj.ring = array("d", [float(v) for v in state["values"]])
        obj.sorted = array("d", sorted(obj.ring))
        return obj


class ValueNoveltyScorer(ScorerBase):
    """The raw value novelty as a stand-alone scorer, squashed to [0, 1) as ``raw / (1 + raw)`` (no
    likelihood, no debounce: for tests and plots; ``default`` runs it through both).

    >>> s = ValueNoveltyScorer(memory=50)
    >>> quiet = [s.update(float(t), 5.0 + (t % 3)) for t in range(100)]
    >>> max(quiet[20:]), s.update(100.0, 50.0) > 0.5
    (0.0, True)
    """

    def __init__(self, memory: int = 4000, step_alpha: float = 0.003) -> None:
        self.novelty = ValueNovelty(memory, step_alpha)

    def _update(self, t: float, x: float) -> float:
        raw = self.novelty.update(x)
        return raw / (1.0 + raw)

    def state_dict(self) -> dict[str, Any]:
        return {"novelty": self.novelty.state_dict()}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.novelty = ValueNovelty.from_state(state["novelty"])
