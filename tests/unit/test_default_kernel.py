"""The compiled ``default`` scorer against a plain-Python reference, and its banked tick path."""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from aiops_detectors.anomaly._base import Debounce, Likelihood
from aiops_detectors.anomaly.ensemble import DefaultDetector, DefaultParams, DefaultScorer
from aiops_detectors.anomaly.ewma import EwmaScorer
from aiops_detectors.anomaly.knn import KnnShape

from aiops.detection import SeriesDetector
from aiops.types import Frame, Series
from tests.kernel_refs.value import ValueNovelty

SMALL: dict[str, Any] = {"memory": 120, "history": 400, "value_memory": 300, "learn": 40, "warmup": 20, "rest": 20}


class ReferenceDefault:
    """The ``default`` pipeline written with the readable Python building blocks (as it was before the
    kernel): the kernel must reproduce it up to the order of additions inside a squared distance."""

    def __init__(self, memory: int, history: int, value_memory: int, learn: int, warmup: int, rest: int) -> None:
        self.shapes = [KnnShape(8, memory, 1, 1, "step", 0.003), KnnShape(32, memory, 1, 1, "step", 0.003)]
        self.value = ValueNovelty(value_memory, 0.003)
        self.liks = [
            Likelihood(short=1, history=history, warmup=warmup, min_std=m, learn=learn) for m in (0.2, 0.2, 0.4)
        ]
        self.debounce = Debounce(rest, 0.6, 500, 0.9)
        self.band = EwmaScorer()

    def update(self, t: float, x: float) -> tuple[float, list[float]]:
        raw = [s.update(x) for s in self.shapes] + [self.value.update(x)]
        surprise = [lik.update(r) for lik, r in zip(self.liks, raw, strict=True)]
        self.band.update(t, x)
        return self.debounce(max(surprise)), raw


def hard_series(n: int = 3000, seed: int = 3) -> np.ndarray:
    """Noise on a daily-ish wave, a spike, a level shift, a flat stretch after a huge spike, a slow ramp."""
    rng = np.random.default_rng(seed)
    v = 50 + 5 * np.sin(np.arange(n) / 15) + rng.normal(0, 0.5, n)
    v[700] += 40
    v[1200:1500] += 12
    v[1800] = 1e7  # the sliding distances must not keep a residue of this once it leaves the windows
    v[1801:2300] = 42.0
    v[2500:] += np.linspace(0, 30, max(n - 2500, 0))
    return v


# the reference is the Gaussian likelihood and its levels (the tail's own check: test_tail_kernel.py)
GAUSSIAN: dict[str, Any] = {"tail": 0.0, "decades": 6.0, "alert_level": 0.6, "cooldown_level": 0.9}


def test_kernel_matches_the_python_reference() -> None:
    v = hard_series()
    ref = ReferenceDefault(**SMALL)
    fast = DefaultScorer(DefaultParams(**SMALL, **GAUSSIAN))
    for i, x in enumerate(v.tolist()):
        want, want_raw = ref.update(60.0 * i, x)
        got = fast.update(60.0 * i, x)
        assert got == pytest.approx(want, abs=1e-9), i
        # the sliding distances carry a rounding residue of the 1e7 spike for <= 64 points: ~1e-9 here
        assert fast.raw == pytest.approx(want_raw, rel=1e-6, abs=1e-6), i
    band = ref.band.expected()
    evidence = fast.expected()
    assert evidence["expected"] == pytest.approx(band["expected"])
    assert evidence["upper"] == pytest.approx(band["upper"])


def test_flat_stretch_after_a_huge_spike_is_quiet() -> None:
    scores = DefaultScorer(DefaultParams(**SMALL)).score(60.0 * np.arange(3000), hard_series())
    assert scores[1900:2300].max() < 0.5  # 42.0 repeated: no residue of the 1e7 spike in the distances


def test_stream_batch_and_restore_are_identical_with_gaps() -> None:
    v = hard_series(2000)
    v[[100, 900, 901]] = np.nan
    t = 60.0 * np.arange(2000)
    t[500] = np.inf
    streamed = DefaultScorer(DefaultParams(**SMALL))
    a = np.array([streamed.update(ti, vi) for ti, vi in zip(t.tolist(), v.tolist(), strict=True)])
    b = DefaultScorer(DefaultParams(**SMALL)).score(t, v)
    assert np.array_equal(a, b)
    first = DefaultScorer(DefaultParams(**SMALL))
    head = first.score(t[:1100], v[:1100])
    second = DefaultScorer(DefaultParams(**SMALL))
    second.load_state_dict(first.state_dict())
    assert np.array_equal(np.concatenate([head, second.score(t[1100:], v[1100:])]), a)


def test_state_of_an_earlier_layout_is_refused() -> None:
    with pytest.raises(ValueError, match="earlier layout"):
        DefaultScorer().load_state_dict({"shapes": [], "value": None})


def _frames(n_series: int, ticks: int, seed: int = 0) -> list[Frame]:
    rng = np.random.default_rng(seed)
    base = 10 + rng.normal(0, 1, (ticks, n_series)).cumsum(axis=0) * 0.05
    base[ticks // 2 :, 3] += 25  # one series shifts
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


@pytest.mark.parametrize(
    ("block", "backwards"),
    [(512, False), (4, False), (4, True)],  # 4: nine series span three blocks; backwards: rows come unsorted
)
def test_banked_tick_equals_the_point_by_point_path(
    block: int, backwards: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    from aiops_detectors.anomaly._bank import StateBank

    monkeypatch.setattr(StateBank, "BLOCK", block)
    frames = _frames(n_series=9, ticks=900)
    if backwards:  # the first tick still adopts them in order, so later ticks step rows 8, 7, ... 0
        frames = frames[:1] + [replace(f, series=f.series[::-1]) for f in frames[1:]]
    banked = DefaultDetector(**SMALL)
    plain = DefaultDetector(**SMALL)
    for k, frame in enumerate(frames):
        got = banked.evaluate(frame)
        want = SeriesDetector.evaluate(plain, frame)
        assert [f.to_dict() if hasattr(f, "to_dict") else f for f in got] == [
            f.to_dict() if hasattr(f, "to_dict") else f for f in want
        ], k
        if k == 450:  # restore mid-stream: the bank is rebuilt from the saved states
            restored = DefaultDetector(**SMALL)
            restored.load_state_dict(banked.state_dict())
            banked = restored
    assert banked.state_dict() == plain.state_dict()
    assert len(banked._bank.owners) == 9 and sum(len(b) for b in banked._bank.blocks) >= 9


def test_compiled_code_is_cached_only_where_it_can_be_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from aiops_detectors.anomaly._jit import cache_writable
    from numba.core import config  # numba reads NUMBA_CACHE_DIR once, into this

    monkeypatch.setattr(config, "CACHE_DIR", str(tmp_path))
    assert cache_writable()
    monkeypatch.setattr(config, "CACHE_DIR", "/nonexistent-aiops-dir/numba-cache")
    assert not cache_writable()  # numba would refuse to import a cache=True function: compile in memory
    monkeypatch.setattr(config, "CACHE_DIR", "")
    assert cache_writable(str(tmp_path / "pkg" / "module.py")) is False
    (tmp_path / "pkg").mkdir()
    assert cache_writable(str(tmp_path / "pkg" / "module.py"))


@pytest.mark.parametrize("name", ["ewma", "cusum", "default"])
def test_compiled_batch_then_streaming_equals_streaming_throughout(name: str) -> None:
    from aiops.commands.detect import build_detector

    v = hard_series(2600)
    v[[10, 700, 701]] = np.nan
    t = 60.0 * np.arange(len(v))
    det = build_detector(name, SMALL if name == "default" else {})
    whole = det.new_scorer()
    want = [whole.update(a, b) for a, b in zip(t.tolist(), v.tolist(), strict=True)]
    mixed = det.new_scorer()
    head = list(mixed.score(t[:1300], v[:1300]))  # type: ignore[attr-defined]
    tail = [mixed.update(a, b) for a, b in zip(t[1300:].tolist(), v[1300:].tolist(), strict=True)]
    assert head + tail == want
    assert mixed.state_dict() == whole.state_dict()


@pytest.mark.parametrize(
    "name", ["default", "knn", "bocpd", "robust_zscore", "ewma", "cusum", "holt_winters", "multivariate"]
)
def test_warm_up_runs_every_path_on_a_copy_and_leaves_the_detector_untouched(name: str) -> None:
    from aiops.commands.detect import build_detector

    det = build_detector(name, {})
    before = det.state_dict()
    det.warm_up()
    assert det.state_dict() == before
    frame = Frame(source="t", collected_at=1.0, series=(Series("m", (1.0,), (5.0,)),))
    assert det.evaluate(frame) == []  # still works, from scratch


def test_smallest_is_the_one_by_one_minimum_nan_included() -> None:
    """The nearest-window search takes its minimum in eight lanes; it must equal the sequential scan."""
    from aiops_detectors.anomaly._default_kernel import smallest

    def one_by_one(values: np.ndarray, start: int) -> float:
        best = float(values[start])
        for v in values[start + 1 :].tolist():
            if v < best:
                best = v
        return best

    rng = np.random.default_rng(7)
    for n in range(1, 40):
        values = rng.integers(-5, 5, n).astype(float)  # ties on purpose
        if n > 3:
            values[rng.integers(0, n, 2)] = np.nan
        for start in range(n):
            got, want = smallest(values, start), one_by_one(values, start)
            assert got == want or (math.isnan(got) and math.isnan(want)), (n, start)


def test_sorted_value_memory_stays_the_sorted_ring() -> None:
    """The value memory's sorted copy is kept by shifting a stretch one place (memmove-able loops): after
    filling and wrapping many times, with ties, it must be exactly the ring's values in order."""
    from aiops_detectors.anomaly import _default_kernel as kernel

    scorer = DefaultScorer(DefaultParams(**SMALL))
    p = scorer.p
    vmem = int(p[kernel.P_VMEM])
    ring = kernel.HEADER + 2 * kernel.history_len(p) + 2 * int(p[kernel.P_MEM])
    values = np.random.default_rng(2).integers(0, 40, 5 * vmem + 17).astype(float)
    for k, x in enumerate(values.tolist()):
        scorer.update(60.0 * k, x)
        if k in (vmem // 2, vmem, 3 * vmem + 5, len(values) - 1):
            count = int(scorer.st[kernel.S_VCOUNT])
            held = scorer.st[ring : ring + count]
            assert scorer.st[ring + vmem : ring + vmem + count].tolist() == sorted(held.tolist())


def test_a_new_series_is_a_fresh_scorer_on_its_own_row() -> None:
    """New series are copies of one template (the scorer is not built anew per series): each must be, bit
    for bit, what a newly built scorer is, on its own row, and feeding one leaves the others as they were."""
    det = DefaultDetector(**SMALL)
    det.evaluate(
        Frame(source="t", collected_at=1.0, series=tuple(Series("m", (), (), {"id": str(s)}) for s in range(3)))
    )
    scorers = [det._scorers[f'm{{id="{s}"}}'] for s in range(3)]
    fresh = DefaultScorer(DefaultParams(**SMALL))
    assert [s.row for s in scorers] == [0, 1, 2]
    assert all(s.st.tobytes() == fresh.st.tobytes() and s.names == fresh.names for s in scorers)
    det.evaluate(Frame(source="t", collected_at=2.0, series=(Series("m", (60.0,), (5.0,), {"id": "1"}),)))
    assert scorers[1].st.tobytes() != fresh.st.tobytes()
    assert scorers[0].st.tobytes() == scorers[2].st.tobytes() == fresh.st.tobytes()
    assert det._fresh is not None and det._fresh.template.st.tobytes() == fresh.st.tobytes()  # never fed
