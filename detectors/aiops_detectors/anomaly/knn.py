"""k-NN novelty of the recent shape of a series (KNN-CAD's idea), normalised by anomaly likelihood."""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Mapping
from typing import Any

import numpy as np
from pydantic import Field

from aiops.detection import SeriesDetector
from aiops_detectors.anomaly._base import Debounce, Likelihood, ScorerBase
from aiops_detectors.anomaly._params import CalibratedParams
from aiops_detectors.anomaly.ensemble import DefaultParams, DefaultScorer


class KnnParams(CalibratedParams):
    lags: int = Field(8, ge=1, le=256, description="points in the embedded shape")
    memory: int = Field(500, ge=10, le=100_000, description="past shapes kept to compare against")
    k: int = Field(1, ge=1, le=50, description="neighbours averaged")


class KnnShape:
    """Raw novelty: distance of the last ``lags`` values to the nearest of the last ``memory`` shapes.

    Distances are made scale-free by one of two units. ``"step"`` (default): the exponentially weighted
    mean absolute step ``|x[t] - x[t-1]|`` (memory ``1/step_alpha`` points), with ``log1p`` to tame the
    heavy tail, so a jump is measured against how much the series usually moves. ``"range"``: the running
    max - min, which bounds the raw score to [0, 1] but lets one old extreme mute everything after it.
    Shapes enter the memory ``lags * block`` points late so a shape never matches its own overlap.
    """

    def __init__(
        self,
        lags: int = 8,
        memory: int = 500,
        k: int = 1,
        block: int = 1,
        unit: str = "step",
        step_alpha: float = 0.003,
    ) -> None:
        if unit not in ("step", "range"):
            raise ValueError(f"unit must be 'step' or 'range', not {unit!r}")
        self.lags, self.memory, self.k, self.block = int(lags), int(memory), int(k), int(block)
        self.unit, self.step_alpha = unit, float(step_alpha)
        self.step = 0.0
        self.prev = math.nan
        self.n = 0
        self.recent: deque[float] = deque(maxlen=self.lags * self.block)
        self.pending: deque[list[float]] = deque()
        self.bank = np.zeros((self.memory, self.lags))
        self.filled = 0
        self.pos = 0
        self.lo = math.inf
        self.hi = -math.inf

    def update(self, x: float) -> float:
        # the range includes x: raw stays in [0, 1], so one huge spike cannot blow up the likelihood's
        # variance and blind the detector for the rest of its history
        self.lo = min(self.lo, x)
        self.hi = max(self.hi, x)
        self.n += 1
        if self.n > 1:
            self.step += max(self.step_alpha, 1.0 / (self.n - 1)) * (abs(x - self.prev) - self.step)
        self.prev = x
        self.recent.append(x)
        if len(self.recent) < self.lags * self.block:
            return 0.0
        if self.block == 1:
            shape = list(self.recent)
        else:  # a longer context at lower resolution: block means
            shape = np.asarray(self.recent).reshape(self.lags, self.block).mean(axis=1).tolist()
        raw = 0.0
        unit = self.step if self.unit == "step" else self.hi - self.lo
        # floor: float noise on a constant series is not a novel shape
        unit = max(unit, 1e-9 * max(abs(self.lo), abs(self.hi)), 1e-12)
        if self.filled >= max(self.k, 10):  # a near-empty memory says nothing yet
            diff = self.bank[: self.filled] - np.asarray(shape)
            d2 = np.einsum("ij,ij->i", diff, diff)
            if self.k == 1:
                dist = math.sqrt(float(d2.min()))
            else:
                dist = float(np.sqrt(np.partition(d2, self.k - 1)[: self.k]).mean())
            raw = dist / (unit * math.sqrt(self.lags))
            if self.unit == "step":
                raw = math.log1p(raw)
        self.pending.append(shape)
        if len(self.pending) > self.lags * self.block:
            self.bank[self.pos] = self.pending.popleft()
            self.pos = (self.pos + 1) % self.memory
            self.filled = min(self.filled + 1, self.memory)
        return raw

    def state_dict(self) -> dict[str, Any]:
        order = [(self.pos - self.filled + i) % self.memory for i in range(self.filled)]
        return {
            "lags": self.lags,
            "memory": self.memory,
            "k": self.k,
            "block": self.block,
            "unit": self.unit,
            "step_alpha": self.step_alpha,
            "step": self.step,
            "prev": self.prev if math.isfinite(self.prev) else None,
            "n": self.n,
            "recent": list(self.recent),
            "pending": [list(p) for p in self.pending],
            "bank": self.bank[order].tolist(),
            "lo": self.lo if math.isfinite(self.lo) else None,
            "hi": self.hi if math.isfinite(self.hi) else None,
        }

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> KnnShape:
        obj = cls(
            int(state["lags"]),
            int(state["memory"]),
            int(state["k"]),
            int(state["block"]),
            str(state["unit"]),
            float(state["step_alpha"]),
        )
        obj.step, obj.n = float(state["step"]), int(state["n"])
        obj.prev = math.nan if state["prev"] is None else float(state["prev"])
        obj.recent.extend(float(v) for v in state["recent"])
        obj.pending.extend([float(v) for v in p] for p in state["pending"])
        bank = np.asarray(state["bank"], dtype=float).reshape(-1, obj.lags)
        obj.filled = len(bank)
        obj.bank[: obj.filled] = bank
        obj.pos = obj.filled % obj.memory
        obj.lo = math.inf if state["lo"] is None else float(state["lo"])
        obj.hi = -math.inf if state["hi"] is None else float(state["hi"])
        return obj


class KnnScorer(ScorerBase):
    """Shape novelty -> anomaly likelihood -> debounce."""

    def __init__(self, params: KnnParams | None = None) -> None:
        p = params or KnnParams.model_validate({})
        self.shape = KnnShape(p.lags, p.memory, p.k)
        self.likelihood = Likelihood(short=1, history=p.history, warmup=p.warmup, min_std=p.min_std, learn=p.learn)
        self.debounce = Debounce(p.rest, p.alert_level, p.cooldown, p.cooldown_level)
        self.last_raw = 0.0

    def _update(self, t: float, x: float) -> float:
        self.last_raw = self.shape.update(x)
        return self.debounce(self.likelihood.update(self.last_raw))

    def expected(self) -> dict[str, Any]:
        return {"raw_score": self.last_raw, "detectors": ["knn"]}

    def state_dict(self) -> dict[str, Any]:
        return {
            "shape": self.shape.state_dict(),
            "likelihood": self.likelihood.state_dict(),
            "debounce": self.debounce.state_dict(),
            "last_raw": self.last_raw,
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.shape = KnnShape.from_state(state["shape"])
        self.likelihood = Likelihood.from_state(state["likelihood"])
        self.debounce = Debounce.from_state(state["debounce"])
        self.last_raw = float(state["last_raw"])


class KnnKernelScorer(DefaultScorer):
    """``KnnScorer`` with ``k = 1``, compiled: ``default``'s kernel with one shape scale and no value
    component computes exactly the same pipeline (shape novelty -> likelihood -> debounce), ~10x faster."""

    def expected(self) -> dict[str, Any]:
        return {"raw_score": self.raw[0], "detectors": ["knn"]}


class KnnDetector(SeriesDetector):
    """Novel shapes rather than extreme values: most incidents are a series doing something it has
    not done before (a stall, a new rhythm) while staying inside its usual range, which value-based bands
    miss. The distance to the nearest past shape is made comparable across series by its likelihood.

    >>> det = KnnDetector(memory=200, warmup=50)
    >>> s = det.new_scorer()
    >>> import math
    >>> quiet = [s.update(t, math.sin(t / 5)) for t in range(1000)]
    >>> max(quiet[300:]) < 0.5, s.update(1000, 0.6) > 0.5
    (True, True)
    """

    Params = KnnParams
    name = "knn"
    params: KnnParams

    def new_scorer(self) -> KnnScorer | KnnKernelScorer:
        p = self.params
        if p.k == 1:  # the nearest neighbour alone: the compiled pipeline of ``default``, one scale, no value
            shared = p.model_dump(include=set(CalibratedParams.model_fields))
            # validated as knn's parameters already (default's own bounds differ: lags >= 2)
            return KnnKernelScorer(
                DefaultParams.model_construct(
                    **shared,
                    lags=p.lags,
                    long_lags=0,
                    memory=p.memory,
                    value_memory=0,
                    tail=0.0,  # knn keeps the Gaussian likelihood its levels were chosen for
                    decades=6.0,
                )
            )
        return KnnScorer(p)
