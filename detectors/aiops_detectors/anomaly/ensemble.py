"""The ``default`` metric detector: multi-scale shape novelty and value novelty, likelihood-normalised,
debounced."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import numpy as np
from pydantic import Field

from aiops_detectors.anomaly import _default_kernel as kernel
from aiops_detectors.anomaly._bank import BankedDetector, KernelScorer
from aiops_detectors.anomaly._base import ScorerBase, band, robust_scale
from aiops_detectors.anomaly._params import CalibratedParams
from aiops_detectors.anomaly.holt_winters import HoltWintersScorer


class DefaultParams(CalibratedParams):
    """``default``'s knobs: the shared likelihood and debounce ones, its shape and value components, and the
    peaks-over-threshold tail that only its compiled likelihood reads (so ``tail`` and ``decades`` live
    here, not in ``CalibratedParams``: ``knn``'s and ``bocpd``'s likelihoods would ignore them)."""

    threshold: float = Field(
        0.7, ge=0.0, le=1.0, description="anomaly score at or above which a finding is raised (= alert_level)"
    )
    lags: int = Field(8, ge=2, le=256, description="points in the short shape")
    long_lags: int = Field(32, ge=0, le=1024, description="points in the long shape (0: off)")
    memory: int = Field(1000, ge=10, le=100_000, description="past shapes kept per scale")
    step_alpha: float = Field(0.003, gt=0.0, lt=1.0, description="memory of the typical step size")
    value_memory: int = Field(4000, ge=0, le=1_000_000, description="past values for value novelty (0: off)")
    value_min_std: float = Field(
        0.4, ge=0.0, description="floor of the value novelty's deviation (tail: mean excess) in its likelihood"
    )
    seasonal: bool = Field(False, description="also score Holt-Winters residuals")
    alert_level: float = Field(0.7, gt=0.0, le=1.0, description="score that starts a rest period")
    tail: float = Field(
        0.1,
        ge=0.0,
        lt=1.0,
        description="peaks-over-threshold likelihood above this top fraction, min_std and value_min_std "
        "flooring its mean excess (0: Gaussian)",
    )
    decades: float = Field(3.0, gt=0.0, description="a tail probability of 10**-decades scores 1")


class DefaultScorer(KernelScorer):
    """Each component's raw score (shape novelty at ``lags`` and ``long_lags``, value novelty over
    ``value_memory`` values) goes through its own anomaly likelihood; the most surprised one wins; the
    result is debounced. An EWMA runs alongside for the expected value and band of the evidence.

    The arithmetic runs in one compiled kernel over a flat state array (``_default_kernel``); the optional
    Holt-Winters component stays in Python and hands its residual to the kernel.
    """

    kernel: ClassVar[Any] = kernel

    def __init__(self, params: DefaultParams | None = None) -> None:
        params = params or DefaultParams.model_validate({})
        self.p = kernel.make_params(params)
        self.st = kernel.new_state(self.p)
        self.seasonal = HoltWintersScorer() if params.seasonal else None
        self.names = self._names()
        self.row: int | None = None  # row in a detector's StateBank, when banked

    def _names(self) -> list[str]:
        p = self.p
        names = [f"knn{int(p[kernel.P_LAGS])}"]
        if p[kernel.P_LONG] > 0:
            names.append(f"knn{int(p[kernel.P_LONG])}")
        if p[kernel.P_VMEM] > 0:
            names.append("value")
        if p[kernel.P_EXT] > 0:
            names.append("holt_winters")
        return names

    def _update(self, t: float, x: float) -> float:
        ext = math.nan
        if self.seasonal is not None:
            self.seasonal.update(t, x)
            ext = abs(self.seasonal.z)
        return float(kernel.step(self.st, self.p, x, ext))

    def score(self, timestamps: Sequence[float], values: Sequence[float]) -> np.ndarray:
        if self.seasonal is not None:  # the Holt-Winters component runs in Python: point by point
            return ScorerBase.score(self, timestamps, values)
        return super().score(timestamps, values)

    def _component(self, field: int) -> list[float]:
        base = kernel.COMP0 + field
        return [float(self.st[base + c * kernel.COMP_FIELDS]) for c in range(len(self.names))]

    @property
    def raw(self) -> list[float]:
        return self._component(kernel.C_RAW)

    @property
    def surprise(self) -> list[float]:
        return self._component(kernel.C_SUR)

    def expected(self) -> dict[str, Any]:
        st = self.st
        mean, dev = float(st[kernel.S_BMEAN]), float(st[kernel.S_BDEV])
        level = float(self.p[kernel.P_LEVEL])
        surprise = self.surprise
        return band(
            mean,
            5.0 * robust_scale(dev, mean),
            raw_scores=dict(zip(self.names, self.raw, strict=True)),
            surprise=dict(zip(self.names, surprise, strict=True)),
            detectors=[n for n, s in zip(self.names, surprise, strict=True) if s >= level],
        )

    def bankable(self) -> bool:
        return self.seasonal is None  # the Holt-Winters part keeps its state in Python, outside ``st``

    def state_fields(self) -> dict[str, Any]:
        return {
            "version": 2,
            "params": self.p,
            "state": self.st,
            "seasonal": None if self.seasonal is None else self.seasonal.state_dict(),
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        if state.get("version") != 2:
            raise ValueError("state saved by an earlier layout of the default detector (it starts afresh)")
        p = np.asarray(state["params"], dtype=float)
        if len(p) == kernel.P_TAIL:  # saved before the tail parameter existed: relearning is the honest option
            raise ValueError("state saved by an earlier layout of the default detector (before the POT tail)")
        st = self.flat_from_json(state["state"], math.nan)
        if len(p) != kernel.N_PARAMS or len(st) != kernel.state_len(p):
            raise ValueError("default detector state does not match its parameters")
        self.p, self.st, self.row = p, st, None
        self.seasonal = None
        if state.get("seasonal") is not None:
            self.seasonal = HoltWintersScorer()
            self.seasonal.load_state_dict(state["seasonal"])
        self.names = self._names()


class DefaultDetector(BankedDetector):
    """One configuration for every metric, because nobody tunes a detector per series: what is novel is
    judged against the series' own past at two time scales of shape (a spike or a stall, a changed rhythm)
    and by value (a level the series has not visited in its last 4000 points), each judgement is turned
    into "how surprising is this, given how surprising this series usually is" (an anomaly likelihood that
    reads the rarity from the upper tail of the component's own recent scores, peaks over threshold), and
    one event pages once (debounce). NAB public part, leave-one-group-out CV: 73.35 standard, 65.87 low-FP,
    77.64 low-FN (in-sample 72.60 / 63.22 / 77.50).

    >>> import math
    >>> s = DefaultDetector().new_scorer()
    >>> quiet = [s.update(60.0 * t, 10 + math.sin(t / 10) + 0.05 * ((7 * t) % 5)) for t in range(1500)]
    >>> max(quiet[200:]) < 0.5, max(s.update(60.0 * t, 14.0) for t in range(1500, 1505)) > 0.5
    (True, True)
    """

    Params = DefaultParams
    name = "default"
    params: DefaultParams
    Scorer = DefaultScorer
