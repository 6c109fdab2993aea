"""Additive Holt-Winters with the season found from the timestamps (daily or weekly)."""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Mapping
from typing import Any

import numpy as np
from pydantic import Field

from aiops.detection import SeriesDetector, SeriesDetectorParams
from aiops_detectors.anomaly._base import ScorerBase, band, robust_scale

_DAY = 86400.0
_CANDIDATES = (7 * _DAY, _DAY)  # weekly first: it also explains the daily pattern when both are present


class HoltWintersParams(SeriesDetectorParams):
    alpha: float = Field(0.1, gt=0.0, lt=1.0, description="level smoothing")
    beta: float = Field(0.005, ge=0.0, lt=1.0, description="trend smoothing (0 = no trend)")
    gamma: float = Field(0.1, ge=0.0, lt=1.0, description="seasonal smoothing")
    z_threshold: float = Field(5.0, gt=0.0, description="|z| of the residual at which the score is 0.5")
    max_period: int = Field(4032, ge=2, description="longest season, in points, that is considered")
    min_autocorr: float = Field(0.3, ge=0.0, le=1.0, description="autocorrelation needed to accept a season")
    min_points: int = Field(30, ge=2, description="points seen before anything is scored")


class HoltWintersScorer(ScorerBase):
    """Forecast = level + trend + season[phase]; score = |residual z| / (|z| + z_threshold).

    The season length is decided once, when two full cycles of the longest candidate that fits in
    ``max_period`` points have been buffered (or as soon as the shorter one is confirmed): the sampling
    step is the median timestamp difference, a candidate of ``period / step`` points is accepted if the
    autocorrelation at that lag reaches ``min_autocorr``. Until then the model is plain Holt.
    """

    def __init__(self, params: HoltWintersParams | None = None) -> None:
        self.params = params or HoltWintersParams.model_validate({})
        self.level = math.nan
        self.trend = 0.0
        self.dev = 0.0
        self.n = 0
        self.season: list[float] = []
        self.phase = 0
        self.decided = False
        self.buffer: deque[float] = deque(maxlen=2 * self.params.max_period)
        self.steps: list[float] = []
        self.last_t = math.nan
        self.forecast = math.nan
        self.z = 0.0

    # --- season detection -------------------------------------------------------------------------------
    def _candidates(self) -> list[int]:
        if len(self.steps) < 5:
            return []
        step = float(np.median(self.steps))
        if step <= 0:
            return []
        out = []
        for period in _CANDIDATES:
            p = round(period / step)
            if 4 <= p <= self.params.max_period:
                out.append(p)
        return out

    def _try_decide(self) -> None:
        cands = self._candidates()
        n = len(self.buffer)
        if len(self.steps) >= 5 and not cands:
            self._decide(0)
            return
        pending = False
        for p in cands:
            if n < 2 * p:
                pending = True
                continue
            arr = np.asarray(self.buffer)[-2 * p :]
            a, b = arr[:p] - arr[:p].mean(), arr[p:] - arr[p:].mean()
            den = math.sqrt(float((a * a).sum() * (b * b).sum()))
            if den > 0 and float((a * b).sum()) / den >= self.params.min_autocorr:
                self._decide(p)
                return
        if not pending and cands:
            self._decide(0)

    def _decide(self, p: int) -> None:
        self.decided = True
        if p:
            arr = np.asarray(self.buffer)[-2 * p :]
            cycle = 0.5 * (arr[:p] + arr[p:])
            self.season = (cycle - cycle.mean()).tolist()
            self.phase = 0  # the buffer ends with the current point: the next one starts a new cycle
            self.level = float(arr[p:].mean())
            self.trend = 0.0
        self.buffer.clear()
        self.steps = []

    # --- streaming ---------------------------------------------------------------------------------------
    def _scale(self) -> float:
        return robust_scale(self.dev, self.level)

    def _update(self, t: float, x: float) -> float:
        if math.isfinite(self.last_t) and len(self.steps) < 50 and t > self.last_t:
            self.steps.append(t - self.last_t)
        self.last_t = t
        if self.n == 0:
            self.level, self.n = x, 1
            self.buffer.append(x)
            return 0.0
        s = self.season[self.phase] if self.season else 0.0
        self.forecast = self.level + self.trend + s
        r = x - self.forecast
        score = 0.0
        if self.n >= self.params.min_points:
            self.z = r / self._scale()
            score = abs(self.z) / (abs(self.z) + self.params.z_threshold)
            lim = self.params.z_threshold * self._scale()
            r = max(-lim, min(lim, r))  # an outlier updates the model only as much as a point at the band edge
        xc = self.forecast + r
        old_level = self.level
        self.level = self.params.alpha * (xc - s) + (1 - self.params.alpha) * (self.level + self.trend)
        self.trend = self.params.beta * (self.level - old_level) + (1 - self.params.beta) * self.trend
        if self.season:
            self.season[self.phase] = self.params.gamma * (xc - self.level) + (1 - self.params.gamma) * s
            self.phase = (self.phase + 1) % len(self.season)
        self.dev = abs(r) if self.n == 1 else self.dev + 0.02 * (abs(r) - self.dev)
        self.n += 1
        if not self.decided:
            self.buffer.append(x)
            if len(self.buffer) % 16 == 0:  # the test costs O(period): run it every 16 points, not every one
                self._try_decide()
        return score

    def expected(self) -> dict[str, Any]:
        return band(self.forecast, self.params.z_threshold * self._scale(), z=self.z, season_points=len(self.season))

    def state_dict(self) -> dict[str, Any]:
        return {
            "level": self.level if math.isfinite(self.level) else None,
            "trend": self.trend,
            "dev": self.dev,
            "n": self.n,
            "season": list(self.season),
            "phase": self.phase,
            "decided": self.decided,
            "buffer": list(self.buffer),
            "steps": list(self.steps),
            "last_t": self.last_t if math.isfinite(self.last_t) else None,
            "forecast": self.forecast if math.isfinite(self.forecast) else None,
            "z": self.z,
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        def f(v: Any) -> float:
            return math.nan if v is None else float(v)

        self.level, self.trend, self.dev = f(state["level"]), float(state["trend"]), float(state["dev"])
        self.n, self.phase, self.decided = int(state["n"]), int(state["phase"]), bool(state["decided"])
        self.season = [float(v) for v in state["season"]]
        self.buffer = deque((float(v) for v in state["buffer"]), maxlen=2 * self.params.max_period)
        self.steps = [float(v) for v in state["steps"]]
        self.last_t, self.forecast, self.z = f(state["last_t"]), f(state["forecast"]), float(state["z"])


class HoltWintersDetector(SeriesDetector):
    """Business metrics breathe daily and weekly; a band that ignores the season is either too wide at
    night or pages every morning. The season length comes from the timestamps, so one configuration
    serves minute-level and hourly series alike.

    >>> import math
    >>> s = HoltWintersDetector().new_scorer()
    >>> quiet = [s.update(3600.0 * h, 10 + 5 * math.sin(2 * math.pi * h / 24)) for h in range(24 * 10)]
    >>> len(s.season), max(quiet[72:]) < 0.5, s.update(3600.0 * 240, 14.0) > 0.5
    (24, True, True)
    """

    Params = HoltWintersParams
    name = "holt_winters"
    params: HoltWintersParams

    def new_scorer(self) -> HoltWintersScorer:
        return HoltWintersScorer(self.params)
