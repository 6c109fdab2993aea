"""The compiled ``bocpd`` scorer against a plain-Python reference, its state, and its banked tick path."""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
import pytest
from aiops_detectors.anomaly._base import Debounce, Likelihood
from aiops_detectors.anomaly.bocpd import BocpdDetector, BocpdParams, BocpdScorer

from aiops.detection import SeriesDetector
from aiops.types import Frame, Series

SMALL: dict[str, Any] = {"max_run": 120, "history": 400, "learn": 50, "warmup": 20, "rest": 20}


class ReferenceRunLength:
    """Adams & MacKay's recursion as the numpy version wrote it (linear probabilities, the Student-t
    predictive in its textbook form, an explicit normalisation), in plain Python."""

    def __init__(
        self,
        hazard_lambda: float = 250.0,
        max_run: int = 500,
        kappa0: float = 1.0,
        alpha0: float = 3.0,
        scale_alpha: float = 0.002,
        max_surprise: float = 30.0,
    ) -> None:
        self.hazard, self.max_run, self.max_surprise = 1.0 / hazard_lambda, max_run, max_surprise
        self.kappa0, self.alpha0, self.scale_alpha = kappa0, alpha0, scale_alpha
        self.level, self.dev, self.n = 0.0, 0.0, 0
        self.prob, self.mu, self.beta = [1.0], [0.0], [1.0]

    def scale(self) -> float:
        return max(1.2533 * self.dev, 1e-6 * abs(self.level), 1e-9)

    def prior(self) -> tuple[float, float]:
        s = self.scale()
        return self.level, self.alpha0 * s * s

    def update(self, x: float) -> float:
        if self.n == 0:
            self.level = x
            self.mu[0], self.beta[0] = self.prior()
        logjoint, new_mu, new_beta = [], [], []
        for r, (prob, mu, beta) in enumerate(zip(self.prob, self.mu, self.beta, strict=True)):
            kappa, alpha = self.kappa0 + r, self.alpha0 + 0.5 * r
            d = x - mu
            s2, df = beta * (kappa + 1.0) / (alpha * kappa), 2.0 * alpha
            logpi = (
                math.lgamma(alpha + 0.5)
                - math.lgamma(alpha)
                - 0.5 * math.log(df * s2)
                - 0.5 * math.log(math.pi)
                - (alpha + 0.5) * math.log1p(d * d / (s2 * df))
            )
            logjoint.append(logpi + (math.log(prob) if prob > 0.0 else -math.inf))
            new_mu.append(mu + d / (kappa + 1.0))
            new_beta.append(beta + kappa / (2.0 * (kappa + 1.0)) * d * d)
        top = max(logjoint)
        joint = [math.exp(v - top) for v in logjoint]
        evidence = math.fsum(joint)
        surprise = min(-(math.log(evidence) + top) - math.log(self.scale()), self.max_surprise)
        grown = [j * (1.0 - self.hazard) / evidence for j in joint]
        res = x - self.level
        if self.n >= 30:
            lim = 5.0 * self.scale()
            res = max(-lim, min(lim, res))
        rate = max(self.scale_alpha, 1.0 / (self.n + 1))
        self.level += rate * res
        if self.n > 0:
            self.dev += rate * (abs(res) - self.dev)
        mu0, beta0 = self.prior()
        if len(grown) == self.max_run:  # runs of R - 1 and more are one hypothesis
            grown[-2] += grown[-1]
            grown, new_mu, new_beta = grown[:-1], new_mu[:-1], new_beta[:-1]
        prob = [self.hazard, *grown]
        total = math.fsum(prob)
        self.prob = [v / total for v in prob]
        self.mu, self.beta = [mu0, *new_mu], [beta0, *new_beta]
        self.n += 1
        return surprise


class ReferenceBocpd:
    """The ``bocpd`` pipeline with the readable Python building blocks: run length -> likelihood -> debounce."""

    def __init__(self, max_run: int = 500, history: int = 5000, learn: int = 150, warmup: int = 30, rest: int = 100):
        self.runs = ReferenceRunLength(max_run=max_run)
        self.likelihood = Likelihood(short=10, history=history, warmup=warmup, min_std=0.2, learn=learn)
        self.debounce = Debounce(rest, 0.6, 500, 0.8)
        self.raw = 0.0

    def update(self, x: float) -> float:
        if not math.isfinite(x):
            return 0.0
        self.raw = self.runs.update(x)
        return self.debounce(self.likelihood.update(self.raw))

    def expected(self) -> dict[str, Any]:
        runs = self.runs
        r = max(range(len(runs.prob)), key=runs.prob.__getitem__)
        kappa, alpha = runs.kappa0 + r, runs.alpha0 + 0.5 * r
        band = 3.0 * math.sqrt(runs.beta[r] * (kappa + 1.0) / (alpha * kappa))
        return {
            "expected": runs.mu[r],
            "lower": runs.mu[r] - band,
            "upper": runs.mu[r] + band,
            "run_length": r,
            "changepoint_probability": math.fsum(runs.prob[:5]),
        }


def hard_series(n: int = 2400, seed: int = 3) -> np.ndarray:
    """Noise; a mean shift; the deviation quadruples; a spike; NaNs; a jump of a million deviations."""
    rng = np.random.default_rng(seed)
    v = rng.normal(10.0, 1.0, n)
    at = [int(f * n) for f in (0.25, 0.45, 0.62, 0.125, 0.71, 0.83)]
    v[at[0] :] += 4.0
    v[at[1] :] = 14.0 + 4.0 * (v[at[1] :] - 14.0)
    v[at[2]] += 60.0
    v[[at[3], at[3] + 1, at[4]]] = np.nan
    v[at[5] :] += 1e6  # hypotheses older than the jump underflow: their probability is exactly 0 (-inf)
    return v


@pytest.mark.parametrize(("params", "n"), [(SMALL, 2400), ({}, 900)])
def test_kernel_matches_the_python_reference(params: dict[str, Any], n: int) -> None:
    v = hard_series(n)
    ref = ReferenceBocpd(**params)
    fast = BocpdScorer(BocpdParams(**params))
    for i, x in enumerate(v.tolist()):
        want = ref.update(x)
        got = fast.update(60.0 * i, x)
        assert got == pytest.approx(want, abs=1e-9), i
        if math.isfinite(x):
            assert fast.last_raw == pytest.approx(ref.raw, rel=1e-9, abs=1e-9), i
        if i % 97 == 0:
            prob = np.exp(fast.st[16 : 16 + len(ref.runs.prob)])
            assert np.allclose(prob, ref.runs.prob, rtol=1e-9, atol=1e-12), i
    got_ev, want_ev = fast.expected(), ref.expected()
    for key, want_value in want_ev.items():
        assert got_ev[key] == pytest.approx(want_value, rel=1e-9), key


def test_stream_batch_and_restore_are_identical_with_gaps() -> None:
    v = hard_series()
    t = 60.0 * np.arange(len(v))
    t[800] = np.inf
    streamed = BocpdScorer(BocpdParams(**SMALL))
    a = np.array([streamed.update(ti, vi) for ti, vi in zip(t.tolist(), v.tolist(), strict=True)])
    b = BocpdScorer(BocpdParams(**SMALL)).score(t, v)
    assert np.array_equal(a, b)
    assert a.max() >= 0.6
    for cut in (0, 1, 150, 2000):
        first = BocpdScorer(BocpdParams(**SMALL))
        head = first.score(t[:cut], v[:cut])
        state = first.state_dict()
        if cut == 2000:  # just after the jump: dead hypotheses (-inf) travel through JSON as None
            assert None in state["state"]
        second = BocpdScorer(BocpdParams(**SMALL))
        second.load_state_dict(json.loads(json.dumps(state, allow_nan=False)))
        assert np.array_equal(np.concatenate([head, second.score(t[cut:], v[cut:])]), a), cut
        assert second.state_dict() == streamed.state_dict()


def test_state_of_an_earlier_layout_is_refused() -> None:
    old = {"runs": {}, "likelihood": {}, "debounce": {}, "last_raw": 0.0, "cp_prob": 0.0}
    with pytest.raises(ValueError, match="earlier layout"):
        BocpdScorer().load_state_dict(old)
    state = BocpdScorer(BocpdParams(**SMALL)).state_dict()
    with pytest.raises(ValueError, match="does not match"):
        BocpdScorer().load_state_dict({**state, "state": state["state"][:-1]})


def _frames(n_series: int, ticks: int, seed: int = 0) -> list[Frame]:
    rng = np.random.default_rng(seed)
    base = 10 + rng.normal(0, 1, (ticks, n_series))
    base[ticks // 2 :, 3] += 6  # one series shifts
    frames = []
    for i in range(ticks):
        series = []
        for s in range(n_series):
            value = float(base[i, s])
            if s == 5 and i % 97 == 0:
                value = math.nan
            if s == 6 and i % 50 == 0:  # a backfill: two points at once, through the point-by-point path
                series.append(Series("m", (60.0 * i - 30, 60.0 * i), (value, value), {"id": str(s)}))
                continue
            series.append(Series("m", (60.0 * i,), (value,), {"id": str(s)}))
        frames.append(Frame(source="t", collected_at=60.0 * i, series=tuple(series)))
    return frames


def test_banked_tick_equals_the_point_by_point_path() -> None:
    frames = _frames(n_series=9, ticks=700)
    banked = BocpdDetector(**SMALL)
    plain = BocpdDetector(**SMALL)
    raised = 0
    for k, frame in enumerate(frames):
        got = banked.evaluate(frame)
        want = SeriesDetector.evaluate(plain, frame)
        assert got == want, k
        raised += len(got)
        if k == 400:  # restore mid-stream: the bank is rebuilt from the saved states
            restored = BocpdDetector(**SMALL)
            restored.load_state_dict(json.loads(json.dumps(banked.state_dict(), allow_nan=False)))
            banked = restored
    assert raised > 0
    assert banked.state_dict() == plain.state_dict()
    assert len(banked._bank.owners) == 9 and sum(len(b) for b in banked._bank.blocks) >= 9
