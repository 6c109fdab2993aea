"""The histogram peaks-over-threshold tail of ``default``'s likelihood against the exact sorted computation."""

from __future__ import annotations

import math

import numpy as np
import pytest
from aiops_detectors.anomaly import _tail_kernel as tk
from aiops_detectors.anomaly.ensemble import DefaultParams, DefaultScorer


def exact_tail(values: np.ndarray, m_tail: float, floor: float, x: float) -> float:
    """POT read from the sorted values: u between the top m and the rest, beta the top's mean excess."""
    n = len(values)
    m = max(5, math.floor(m_tail * n))
    s = np.sort(values)
    u = s[n - m - 1]
    beta = max(float(s[n - m :].mean()) - u, floor)
    return min(1.0, (m + 1) / (n + 1)) * math.exp(-max(x - u, 0.0) / beta)


def test_sliding_histogram_tail_matches_the_sorted_one() -> None:
    rng = np.random.default_rng(2)
    raw = np.log1p(np.abs(rng.standard_t(3, 6000)))  # skewed, heavy-tailed, like novelty scores
    window = 2000
    st = tk.new_block()
    for i, r in enumerate(raw.tolist()):
        tk.tail_add(st, 0, r, 1.0)
        if i >= window:
            tk.tail_add(st, 0, float(raw[i - window]), -1.0)
        n = min(i + 1, window)
        tk.tail_rebalance(st, 0, float(n), 0.1)
        if i in (300, 1999, 4321, 5999):
            recent = raw[max(0, i + 1 - window) : i + 1]
            for x in (float(np.quantile(recent, 0.95)), float(recent.max()) + 1.0):
                got = tk.tail_probability(st, 0, float(n), 0.1, 0.2, x)
                want = exact_tail(recent, 0.1, 0.2, x)
                # only the spread of values inside one bin of width 0.05 is assumed; the score reads
                # decades (3 decades score 1), so a tenth of a decade is the budget
                assert math.log10(got) == pytest.approx(math.log10(want), abs=0.1), (i, x)


def test_a_new_extreme_scores_high_and_the_bulk_does_not() -> None:
    rng = np.random.default_rng(5)
    v = 10 + np.sin(np.arange(3000) / 20) + rng.normal(0, 0.1, 3000)
    v[2500] += 6
    scorer = DefaultScorer(DefaultParams(tail=0.1, decades=3.0, rest=0, cooldown=0))
    scores = scorer.score((60.0 * np.arange(3000)).tolist(), v.tolist())
    assert scores[2500] >= 0.7
    assert np.mean(scores[400:2400] >= 0.7) < 0.01


def test_a_state_saved_before_the_tail_parameter_is_refused() -> None:
    old = DefaultScorer(DefaultParams(tail=0.0, decades=6.0))
    old.score([0.0, 60.0], [1.0, 2.0])
    state = old.state_dict()
    state["params"] = state["params"][:16]  # the previous release's parameter vector
    with pytest.raises(ValueError, match="earlier layout"):
        DefaultScorer().load_state_dict(state)
