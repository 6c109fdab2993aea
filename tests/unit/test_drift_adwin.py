"""ADWIN on per-event error streams: quiet when stationary, fast after a jump, state survives a restart."""

from __future__ import annotations

import json

import numpy as np
import pytest
from aiops_detectors.drift.adwin import Adwin, AdwinParams, AdwinScorer

from aiops import plugins
from aiops.types import Frame, Series


def _feed(scorer: AdwinScorer, values: np.ndarray, start: int = 0) -> list[int]:
    return [start + i for i, v in enumerate(values) if scorer.update(float(start + i), float(v)) >= 1.0]


@pytest.mark.parametrize("rate", [0.02, 0.1, 0.3, 0.5])
def test_no_alarm_on_stationary_bernoulli_streams(rate: float) -> None:
    for seed in range(5):
        scorer = AdwinScorer()
        errors = (np.random.default_rng(seed).random(20_000) < rate).astype(float)
        assert _feed(scorer, errors) == []
        assert abs(scorer.mean - rate) < 0.05
        assert len(scorer.buckets) <= 5 * 16  # memory O(max_buckets * log n)


@pytest.mark.parametrize(("before", "after", "within"), [(0.05, 0.3, 250), (0.1, 0.2, 1500), (0.02, 0.5, 100)])
def test_alarm_soon_after_a_rate_jump_and_the_window_shrinks(before: float, after: float, within: int) -> None:
    for seed in range(5):
        rng = np.random.default_rng(100 + seed)
        scorer = AdwinScorer()
        assert _feed(scorer, (rng.random(5000) < before).astype(float)) == []
        alarms = _feed(scorer, (rng.random(3000) < after).astype(float), start=5000)
        assert alarms and alarms[0] - 5000 <= within, alarms[:3]
        assert scorer.width < 3000 + 1000  # most of the old regime was dropped (bucket granularity)
        assert abs(scorer.mean - after) < 0.05  # the estimate is the new rate
        assert scorer.last_change["after"] > scorer.last_change["before"]


def test_improvement_is_not_an_alarm_unless_two_sided() -> None:
    rng = np.random.default_rng(7)
    stream = np.concatenate([rng.random(3000) < 0.4, rng.random(3000) < 0.05]).astype(float)
    one, two = AdwinScorer(), AdwinScorer(AdwinParams(two_sided=True))
    assert _feed(one, stream) == []
    assert _feed(two, stream) != []
    assert one.mean < 0.15  # it adapted anyway


def test_state_round_trip_is_exact() -> None:
    rng = np.random.default_rng(3)
    stream = np.concatenate([rng.random(4000) < 0.05, rng.random(2000) < 0.4]).astype(float)
    whole = AdwinScorer()
    expected = _feed(whole, stream)
    first = AdwinScorer()
    got = _feed(first, stream[:3500])
    second = AdwinScorer()
    second.load_state_dict(json.loads(json.dumps(first.state_dict(), allow_nan=False)))
    got += _feed(second, stream[3500:], start=3500)
    assert got == expected and expected
    assert second.state_dict() == whole.state_dict()


def test_adwin_detector_on_an_error_series_is_registered_and_persists() -> None:
    det = plugins.build(plugins.DETECTORS, "adwin", {"delta": 0.002})
    assert isinstance(det, Adwin)
    rng = np.random.default_rng(5)
    ts = np.arange(3000, dtype=float)
    errors = np.where(ts < 2000, rng.random(3000) < 0.05, rng.random(3000) < 0.4).astype(float)
    first = Frame(source="t", collected_at=1999.0, series=(Series("errors", ts[:2000], errors[:2000]),))
    assert det.evaluate(first) == []
    again = Adwin(delta=0.002)
    again.load_state_dict(json.loads(json.dumps(det.state_dict())))
    second = Frame(source="t", collected_at=2999.0, series=(Series("errors", ts, errors),))
    (finding,) = again.evaluate(second)
    assert finding.kind == "performance" and finding.score == 1.0 and finding.detector == "adwin"
    assert finding.evidence["change"]["after"] > finding.evidence["change"]["before"]
