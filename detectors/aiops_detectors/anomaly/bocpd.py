"""Bayesian online changepoint detection (Adams & MacKay 2007) with a truncated run length, normalised by
anomaly likelihood and debounced."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np
from pydantic import Field

from aiops_detectors.anomaly import _bocpd_kernel as kernel
from aiops_detectors.anomaly._bank import BankedDetector, KernelScorer
from aiops_detectors.anomaly._base import band, robust_scale
from aiops_detectors.anomaly._params import CalibratedParams

_SHORT_RUN = kernel.SHORT_RUN  # runs this short mean "a change just happened" (the changepoint probability)
_STATE_VERSION = 2  # 1: the numpy layout (runs / likelihood / debounce as nested dicts)


class BocpdParams(CalibratedParams):
    hazard_lambda: float = Field(250.0, gt=1.0, description="expected points between changepoints (hazard 1/lambda)")
    max_run: int = Field(500, ge=2, le=100_000, description="run lengths kept (R): each point costs O(R)")
    kappa0: float = Field(1.0, gt=0.0, description="prior weight of the running level, in points")
    alpha0: float = Field(3.0, gt=0.0, description="prior shape of the precision (predictive df = 2 alpha0)")
    scale_alpha: float = Field(0.002, gt=0.0, lt=1.0, description="adaptation rate of the robust level and scale")
    max_surprise: float = Field(30.0, gt=0.0, description="cap of the raw surprise -log p(x | past), in nats")
    short: int = Field(10, ge=1, le=1000, description="raw surprises averaged before the likelihood")


class RunLength:
    """The run-length posterior of BOCPD over Gaussian segments with unknown mean and variance.

    Each hypothesis "the current segment started ``r`` points ago" (r = 0 .. R-1) carries the Normal-Gamma
    posterior of its segment: mean ``mu[r]``, ``kappa = kappa0 + r``, ``alpha = alpha0 + r / 2``, and
    ``beta[r]``; its predictive is a Student-t with ``2 alpha`` degrees of freedom. Since kappa and alpha
    depend on ``r`` only, the log-gamma terms are a table computed once. The posterior is truncated at
    ``R``: the mass of runs longer than ``R - 1`` is merged into ``R - 1``, i.e. a long segment is
    described by its last ``R - 1`` points, so every update is O(R).

    The prior is set, at the birth of each hypothesis, from a robust running level and scale of the
    series (an EWMA of the values and of their clipped absolute deviations): ``mu0 = level``,
    ``beta0 = alpha0 * scale**2``. A Normal-Gamma prior has units; fixed hyperparameters would call every
    point of a series in milliseconds a changepoint and never one in a series of ratios. Setting them from
    the series makes the detector invariant to the series' units (one configuration for every series),
    and, unlike standardising the inputs, never rescales a segment's statistics while it is running.

    The arithmetic is the compiled ``_bocpd_kernel._runs``, the first stage of :class:`BocpdScorer`; this
    class exposes it alone (posterior, scale) for tests and notebooks.
    """

    def __init__(self, params: BocpdParams | None = None) -> None:
        # of the parameters only the run-length model's count: the likelihood and debounce stages never run
        self.p = kernel.make_params(params or BocpdParams.model_validate({}))
        self.st = kernel.new_state(self.p)

    def update(self, x: float) -> tuple[float, np.ndarray]:
        """Feed x; return -log p(x | past) in nats (in units of the robust scale, capped) and the new
        run-length posterior."""
        surprise = float(kernel.step_runs(self.st, self.p, float(x)))
        return surprise, self.prob

    @property
    def prob(self) -> np.ndarray:
        return _posterior(self.st, self.p)

    def scale(self) -> float:
        return _scale(self.st)

    def map_run(self) -> int:
        return _map_run(self.st, self.p)


def _scale(st: np.ndarray) -> float:
    return robust_scale(float(st[kernel.S_DEV]), float(st[kernel.S_LEVEL]))


def _posterior(st: np.ndarray, p: np.ndarray) -> np.ndarray:
    lp = kernel.offsets(p)[0]
    prob: np.ndarray = np.exp(st[lp : lp + int(st[kernel.S_M])])
    return prob


def _map_run(st: np.ndarray, p: np.ndarray) -> int:
    lp = kernel.offsets(p)[0]
    return int(np.argmax(st[lp : lp + int(st[kernel.S_M])]))


class BocpdScorer(KernelScorer):
    """Run-length posterior -> predictive surprise -> anomaly likelihood -> debounce.

    The raw score is the surprise ``-log p(x_t | x_1..x_{t-1})`` under the BOCPD mixture (in units of the
    robust scale, capped at ``max_surprise`` nats so that one absurd point does not inflate the
    likelihood's history for ``history`` points); its ``short``-point average is turned into [0, 1] by the
    anomaly likelihood, as for ``knn``. The posterior probability of a short run, P(r_t < 5), scored far
    worse as the raw score on NAB (15 standard, against 37 for the surprise, with an earlier prior) and is
    only reported as evidence.

    The whole update runs in one compiled kernel over a flat state array (``_bocpd_kernel``); ``update``,
    ``score`` and a detector's banked tick call the same compiled step.
    """

    kernel: ClassVar[Any] = kernel

    def __init__(self, params: BocpdParams | None = None) -> None:
        self.p = kernel.make_params(params or BocpdParams.model_validate({}))
        self.st = kernel.new_state(self.p)
        self.row: int | None = None  # row in a detector's StateBank, when banked

    @property
    def last_raw(self) -> float:
        return float(self.st[kernel.S_RAW])

    @property
    def cp_prob(self) -> float:
        """P(r_t < 5): the posterior probability that a segment started in the last few points."""
        return float(_posterior(self.st, self.p)[:_SHORT_RUN].sum())

    def expected(self) -> dict[str, Any]:
        st, p = self.st, self.p
        _, mu_at, beta_at, _, _, _ = kernel.offsets(p)
        r = _map_run(st, p)
        mu = float(st[mu_at + r])
        kappa, alpha = float(p[kernel.P_KAPPA0]) + float(r), float(p[kernel.P_ALPHA0]) + 0.5 * float(r)
        return band(
            mu,
            3.0 * math.sqrt(float(st[beta_at + r]) * ((kappa + 1.0) / (alpha * kappa))),
            run_length=r,
            changepoint_probability=self.cp_prob,
            raw_score=self.last_raw,
            detectors=["bocpd"],
        )

    def state_fields(self) -> dict[str, Any]:
        # dead run-length hypotheses hold -inf (log 0): in JSON they travel as None, in a checkpoint as is
        return {"version": _STATE_VERSION, "params": self.p[: kernel.N_PARAMS], "state": self.st}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        if state.get("version") != _STATE_VERSION:
            raise ValueError("state saved by an earlier layout of the bocpd detector (it starts afresh)")
        scalars = np.asarray(state["params"], dtype=float)
        if len(scalars) != kernel.N_PARAMS:
            raise ValueError("bocpd detector state does not match its parameters")
        p = kernel.with_tables(scalars)
        st = self.flat_from_json(state["state"], -math.inf)
        if len(st) != kernel.state_len(p):
            raise ValueError("bocpd detector state does not match its parameters")
        self.p, self.st, self.row = p, st, None


class BocpdDetector(BankedDetector):
    """A changepoint is a point the recent segment cannot explain but a fresh one can: BOCPD weighs every
    possible start of the current segment at once, so a shift in level or in variance is found in a few
    points, without CUSUM's fixed slack and threshold.

    >>> s = BocpdDetector(learn=50, warmup=20).new_scorer()
    >>> import random
    >>> rng = random.Random(1)
    >>> quiet = [s.update(t, rng.gauss(10.0, 1.0)) for t in range(400)]
    >>> shifted = [s.update(t, rng.gauss(16.0, 1.0)) for t in range(400, 420)]
    >>> max(quiet) < 0.5, max(shifted) >= 0.6
    (True, True)
    """

    Params = BocpdParams
    name = "bocpd"
    params: BocpdParams
    Scorer = BocpdScorer


__all__ = ["BocpdDetector", "BocpdScorer", "RunLength"]
