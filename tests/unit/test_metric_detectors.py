"""Contract of the streaming metric detectors: causal, deterministic, resumable, batch == streaming, robust
to NaN/gaps/duplicates, quiet on constant series; plus ``aiops detect`` end to end."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner

from aiops import plugins
from aiops.detection import SeriesDetector, batch_score
from aiops.errors import AiopsError
from aiops.types import Frame, Series

# name -> parameters small enough to make the tests fast while exercising every code path
DETECTORS: dict[str, dict[str, Any]] = {
    "threshold": {"above": 12.0, "below": 2.0},
    "robust_zscore": {"window": 100, "min_points": 20},
    "ewma": {"min_points": 20},
    "holt_winters": {"min_points": 20, "max_period": 300},
    "cusum": {"min_points": 20},
    "bocpd": {"max_run": 100, "history": 300, "learn": 50, "warmup": 30, "rest": 20},
    "knn": {"memory": 100, "history": 300, "warmup": 30, "rest": 20},
    "default": {"memory": 100, "history": 300, "warmup": 30, "rest": 20, "seasonal": True},
}
NAMES = sorted(DETECTORS)


def make_detector(name: str) -> SeriesDetector:
    cls = plugins.load(plugins.DETECTORS, name)
    det = cls(**DETECTORS[name])
    assert isinstance(det, SeriesDetector)
    return det


def series(n: int = 600, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Hourly-ish seasonal series (period 24 points) with noise, a spike and a level shift."""
    rng = np.random.default_rng(seed)
    t = 3600.0 * np.arange(n) + 1_400_000_000.0
    v = 6.0 + 2.0 * np.sin(2 * np.pi * np.arange(n) / 24) + rng.normal(0, 0.2, n)
    v[n // 2] += 15.0
    v[int(n * 0.8) :] += 3.0
    return t, v


def stream(scorer: Any, t: np.ndarray, v: np.ndarray) -> np.ndarray:
    return np.array([scorer.update(float(a), float(b)) for a, b in zip(t, v, strict=True)])


@pytest.mark.parametrize("name", NAMES)
def test_deterministic_and_in_unit_interval(name: str) -> None:
    det = make_detector(name)
    t, v = series()
    a, b = stream(det.new_scorer(), t, v), stream(det.new_scorer(), t, v)
    assert np.array_equal(a, b)
    assert np.all((a >= 0.0) & (a <= 1.0))


@pytest.mark.parametrize("name", NAMES)
def test_causal(name: str) -> None:
    det = make_detector(name)
    t, v = series()
    cut = 350
    other = v.copy()
    other[cut:] = np.random.default_rng(7).normal(50, 10, len(v) - cut)
    a, b = stream(det.new_scorer(), t, v), stream(det.new_scorer(), t, other)
    assert np.array_equal(a[:cut], b[:cut])


@pytest.mark.parametrize("name", NAMES)
def test_save_restore_mid_stream_is_identical(name: str) -> None:
    det = make_detector(name)
    t, v = series()
    whole = stream(det.new_scorer(), t, v)
    first = det.new_scorer()
    head = stream(first, t[:333], v[:333])
    state = json.loads(json.dumps(first.state_dict(), allow_nan=False))
    resumed = det.new_scorer()
    resumed.load_state_dict(state)
    tail = stream(resumed, t[333:], v[333:])
    assert np.array_equal(whole, np.concatenate([head, tail]))


@pytest.mark.parametrize("name", NAMES)
def test_batch_equals_streaming(name: str) -> None:
    det = make_detector(name)
    t, v = series()
    assert np.array_equal(batch_score(det.new_scorer(), t, v), stream(det.new_scorer(), t, v))


@pytest.mark.parametrize("name", NAMES)
def test_nan_does_not_crash_or_poison_state(name: str) -> None:
    det = make_detector(name)
    t, v = series()
    clean = stream(det.new_scorer(), t, v)
    scorer = det.new_scorer()
    out = []
    for i, (a, b) in enumerate(zip(t, v, strict=True)):
        if i % 50 == 25:
            s = scorer.update(float(a) - 1.0, math.nan)
            assert 0.0 <= s <= 1.0
            assert scorer.update(float(a) - 0.5, math.inf) >= 0.0
        out.append(scorer.update(float(a), float(b)))
    assert np.array_equal(np.array(out), clean)
    json.dumps(scorer.state_dict(), allow_nan=False)


@pytest.mark.parametrize("name", [n for n in NAMES if n != "threshold"])
@pytest.mark.parametrize("level", [0.0, 5.0, 1e9])
def test_constant_series_never_alerts(name: str, level: float) -> None:
    det = make_detector(name)
    scorer = det.new_scorer()
    n = 800
    noise = np.where(np.arange(n) % 7 == 3, level * 1e-13 + 1e-15, 0.0)  # float-noise wiggles
    scores = stream(scorer, 60.0 * np.arange(n), level + noise)
    assert scores.max() < 0.5


@pytest.mark.parametrize("name", [n for n in NAMES if n != "threshold"])
def test_anomaly_after_quiet_period_is_found(name: str) -> None:
    det = make_detector(name)
    t, v = series()
    scores = stream(det.new_scorer(), t, v)
    if name == "cusum":  # made for sustained shifts, not single spikes
        shift = int(len(v) * 0.8)
        assert scores[shift : shift + 30].max() >= 0.5
    else:
        spike = len(v) // 2
        assert scores[spike : spike + 5].max() >= 0.5


@pytest.mark.parametrize("name", NAMES)
def test_adapter_skips_nan_gaps_and_duplicates(name: str) -> None:
    det = make_detector(name)
    t, v = series(300)
    v = v.copy()
    v[10] = math.nan
    t = t.copy()
    t[20] = t[19]  # duplicate timestamp
    first = Series(name="m", timestamps=list(t[:200]), values=list(v[:200]))
    again = Series(name="m", timestamps=list(t[150:]), values=list(v[150:]))  # re-delivered overlap
    for s in (first, again):
        for finding in det.evaluate(Frame(source="test", collected_at=float(s.timestamps[-1]), series=(s,))):
            assert finding.detector == name
            assert 0.0 <= finding.score <= 1.0
            json.dumps(finding.to_dict(), allow_nan=False)
    state = det.state_dict()
    json.dumps(state, allow_nan=False)
    assert state["last_ts"]["m"] == float(t[-1])


def test_threshold_needs_a_limit() -> None:
    cls = plugins.load(plugins.DETECTORS, "threshold")
    with pytest.raises(ValueError, match="'above', 'below'"):
        cls()
    det = cls(above=3.0)
    scorer = det.new_scorer()
    assert scorer.update(0.0, 4.0) == 1.0
    assert det.explain(scorer, 4.0, 1.0)["limit"] == 3.0
    low = cls(above=3.0, below=1.0)
    scorer = low.new_scorer()
    assert scorer.update(0.0, 0.5) == 1.0
    assert low.explain(scorer, 0.5, 1.0)["limit"] == 1.0


def test_robust_zscore_score_is_one_half_at_the_threshold() -> None:
    det = make_detector("robust_zscore")
    scorer = det.new_scorer()
    for i in range(50):
        scorer.update(float(i), 10.0 + (1.0 if i % 2 else -1.0))
    # the window is 25 x 9.0 and 25 x 11.0: median 10, MAD 1
    assert scorer.update(50.0, 10.0 + 5.0 * 1.4826) == pytest.approx(0.5)
    ev = scorer.expected()
    assert (ev["median"], ev["mad"]) == (10.0, 1.0)
    assert ev["upper"] == pytest.approx(10.0 + 5.0 * 1.4826)
    assert {"median", "mad", "z", "lower", "upper"} <= set(ev)


def test_default_evidence_names_the_detectors_that_fired() -> None:
    det = make_detector("default")
    t, v = series()
    scorer = det.new_scorer()
    spike = len(v) // 2
    stream(scorer, t[: spike + 1], v[: spike + 1])
    ev = det.explain(scorer, float(v[spike]), 1.0)
    assert {"expected", "lower", "upper", "raw_scores", "detectors"} <= set(ev)
    assert ev["detectors"]


# --- aiops detect -------------------------------------------------------------------------------------------


def _write_csv(path: Path, n: int, seed: int, iso: bool = True) -> None:
    t, v = series(n, seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    stamps = [np.datetime_as_string(np.datetime64(int(x), "s")).replace("T", " ") if iso else str(x) for x in t]
    lines = ["timestamp,value", *(f"{a},{b!r}" for a, b in zip(stamps, v.tolist(), strict=True))]
    path.write_text("\n".join(lines) + "\n")


def test_detect_cli_mirrors_a_directory(tmp_path: Path) -> None:
    from aiops.commands.detect import detect

    src, out = tmp_path / "in", tmp_path / "out"
    _write_csv(src / "a" / "one.csv", 300, 1)
    _write_csv(src / "b" / "c" / "two.csv", 250, 2, iso=False)
    result = CliRunner().invoke(
        detect, [str(src), "-o", str(out), "--detector", "robust_zscore", "--param", "window=50", "-q"]
    )
    assert result.exit_code == 0, result.output
    import pandas as pd

    for rel, n in (("a/one.csv", 300), ("b/c/two.csv", 250)):
        df = pd.read_csv(out / rel)
        assert list(df.columns) == ["timestamp", "value", "anomaly_score"]
        assert len(df) == n
        assert df["anomaly_score"].between(0, 1).all()
        assert df["anomaly_score"].max() > 0.5  # the spike


def test_detect_cli_single_file_with_plot_and_jobs(tmp_path: Path) -> None:
    from aiops.commands.detect import detect

    _write_csv(tmp_path / "s.csv", 400, 3)
    png = tmp_path / "plot.png"
    result = CliRunner().invoke(
        detect, [str(tmp_path / "s.csv"), "-o", str(tmp_path / "o.csv"), "--plot", str(png), "-q"]
    )
    assert result.exit_code == 0, result.output
    assert png.stat().st_size > 1000
    assert (tmp_path / "o.csv").exists()
    _write_csv(tmp_path / "d" / "x.csv", 200, 4)
    _write_csv(tmp_path / "d" / "y.csv", 200, 5)
    result = CliRunner().invoke(
        detect, [str(tmp_path / "d"), "-o", str(tmp_path / "od"), "--jobs", "2", "--detector", "ewma", "-q"]
    )
    assert result.exit_code == 0, result.output
    assert (tmp_path / "od" / "x.csv").exists() and (tmp_path / "od" / "y.csv").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--detector", "nope"], "unknown detector 'nope'"),
        (["--param", "window=-3", "--detector", "robust_zscore"], "invalid parameters: window"),
        (["--param", "bogus=1", "--detector", "robust_zscore"], "bogus"),
        (["--param", "noequals"], "expected KEY=VALUE"),
    ],
)
def test_detect_cli_errors_are_aiops_errors(tmp_path: Path, args: list[str], message: str) -> None:
    from aiops.commands.detect import detect

    _write_csv(tmp_path / "s.csv", 50, 0)
    result = CliRunner().invoke(detect, [str(tmp_path / "s.csv"), "-o", str(tmp_path / "o.csv"), *args])
    assert isinstance(result.exception, AiopsError)
    assert message in str(result.exception)


def test_detect_cli_missing_input_and_bad_columns(tmp_path: Path) -> None:
    from aiops.commands.detect import detect

    result = CliRunner().invoke(detect, [str(tmp_path / "missing"), "-o", str(tmp_path / "o")])
    assert isinstance(result.exception, AiopsError)
    (tmp_path / "bad.csv").write_text("time,v\n1,2\n")
    result = CliRunner().invoke(detect, [str(tmp_path / "bad.csv"), "-o", str(tmp_path / "o.csv")])
    assert isinstance(result.exception, AiopsError)
    assert "missing column" in str(result.exception)


def test_sorted_mad_equals_numpy_bit_for_bit() -> None:
    from aiops_detectors.robust_zscore import sorted_mad

    rng = np.random.default_rng(3)
    for trial in range(3000):
        n = int(rng.integers(1, 40))
        if trial % 3 == 0:
            v = rng.normal(size=n)
        elif trial % 3 == 1:
            v = rng.integers(0, 4, size=n).astype(float)  # many ties, values equal to the median
        else:
            v = np.round(rng.exponential(size=n), 1)
        s = sorted(v.tolist())
        m = (s[(n - 1) // 2] + s[n // 2]) / 2.0
        assert sorted_mad(s, m) == float(np.median(np.abs(np.asarray(s) - m)))


# --- value novelty (a component of `default`) ------------------------------------------------------------------


def _value_scorer(memory: int = 200) -> Any:
    from tests.kernel_refs.value import ValueNoveltyScorer

    return ValueNoveltyScorer(memory=memory)


def test_value_novelty_deterministic_causal_and_in_unit_interval() -> None:
    t, v = series()
    a, b = stream(_value_scorer(), t, v), stream(_value_scorer(), t, v)
    assert np.array_equal(a, b)
    assert np.all((a >= 0.0) & (a < 1.0))
    cut = 350
    other = v.copy()
    other[cut:] = np.random.default_rng(7).normal(50, 10, len(v) - cut)
    assert np.array_equal(a[:cut], stream(_value_scorer(), t, other)[:cut])


def test_value_novelty_save_restore_and_batch_equal_streaming() -> None:
    t, v = series()
    whole = stream(_value_scorer(), t, v)
    assert np.array_equal(batch_score(_value_scorer(), t, v), whole)
    for cut in (0, 1, 5, 333):  # before scoring starts, mid-warm-up, and once the memory is full
        first = _value_scorer()
        head = stream(first, t[:cut], v[:cut])
        resumed = _value_scorer()
        resumed.load_state_dict(json.loads(json.dumps(first.state_dict(), allow_nan=False)))
        assert np.array_equal(whole, np.concatenate([head, stream(resumed, t[cut:], v[cut:])]))


def test_value_novelty_equals_a_brute_force_search() -> None:
    from tests.kernel_refs.value import ValueNovelty

    rng = np.random.default_rng(5)
    x = np.round(rng.normal(0, 1, 700).cumsum(), 1)  # ties and a wandering level
    nov = ValueNovelty(memory=50, step_alpha=0.01)
    step = 0.0
    for i, xi in enumerate(x.tolist()):
        raw = nov.update(xi)
        if i > 0:
            step += max(0.01, 1.0 / i) * (abs(xi - x[i - 1]) - step)
        past = x[max(0, i - 51) : max(0, i - 1)]  # the 50 values before the previous one
        if len(past) < 10:
            assert raw == 0.0
        else:
            unit = max(step, 1e-9 * float(np.abs(x[: i + 1]).max()), 1e-12)
            assert raw == pytest.approx(math.log1p(float(np.abs(past - xi).min()) / unit), rel=1e-12, abs=1e-12)


def test_value_novelty_nan_and_constant_series() -> None:
    t, v = series()
    clean = stream(_value_scorer(), t, v)
    scorer = _value_scorer()
    out = []
    for i, (a, b) in enumerate(zip(t, v, strict=True)):
        if i % 50 == 25:
            assert scorer.update(float(a) - 1.0, math.nan) == 0.0
        out.append(scorer.update(float(a), float(b)))
    assert np.array_equal(np.array(out), clean)
    for level in (0.0, 5.0, 1e9):
        n = 800
        noise = np.where(np.arange(n) % 7 == 3, level * 1e-13 + 1e-15, 0.0)
        assert stream(_value_scorer(), 60.0 * np.arange(n), level + noise).max() < 0.5


def test_default_value_component_fires_on_a_new_level_only() -> None:
    """A slow move to a level never visited before is a value novelty; the routine before it is not."""
    det = plugins.load(plugins.DETECTORS, "default")()
    n = 3000
    rng = np.random.default_rng(11)
    v = 10 + np.sin(np.arange(n) / 20) + rng.normal(0, 0.05, n)
    v[2500:] += np.linspace(0, 6, 500)  # a slow ramp to a new plateau
    scorer = det.new_scorer()
    surprise = []
    for i, x in enumerate(v.tolist()):
        scorer.update(60.0 * i, x)
        surprise.append(scorer.expected()["surprise"]["value"])
    assert max(surprise[:2500]) < 0.5
    assert max(surprise[2500:]) >= 0.6


# --- bocpd (Bayesian online changepoint detection) -------------------------------------------------------------


def _bocpd_stream(x: np.ndarray, **params: Any) -> np.ndarray:
    scorer = plugins.load(plugins.DETECTORS, "bocpd")(**params).new_scorer()
    return stream(scorer, 60.0 * np.arange(len(x)), x)


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("change", ["mean", "variance"])
def test_bocpd_finds_a_mean_or_variance_change_within_a_few_points(seed: int, change: str) -> None:
    rng = np.random.default_rng(seed)
    x = rng.normal(10.0, 1.0, 1500)
    if change == "mean":
        x[1000:] += 3.0  # a 3-sigma shift
    else:
        x[1000:] = 10.0 + 4.0 * (x[1000:] - 10.0)  # the deviation quadruples, the mean stays
    scores = _bocpd_stream(x)  # the shipped configuration
    found = scores[1000:1010].max()
    assert found >= 0.6  # the shipped threshold, within 10 points
    assert found > scores[:1000].max()  # and above anything iid noise scored before


def test_bocpd_run_length_recursion_equals_the_closed_form_posterior() -> None:
    """With a negligible hazard the long run carries all the mass: its predictive must be the Normal-Gamma
    posterior predictive of every point so far (Student-t), computed in closed form."""
    from aiops_detectors.anomaly.bocpd import BocpdParams, RunLength
    from scipy import stats

    rng = np.random.default_rng(4)
    x = rng.normal(3.0, 2.0, 60)
    k0, a0 = 1.0, 3.0
    runs = RunLength(BocpdParams(hazard_lambda=1e15, max_run=100, kappa0=k0, alpha0=a0, max_surprise=1e9))
    runs.update(float(x[0]))
    mu0, b0 = float(x[0]), a0 * (1e-6 * abs(float(x[0]))) ** 2  # the prior at t = 0: level x0, floor scale
    for n in range(1, len(x)):
        past = x[:n]
        kn, an = k0 + n, a0 + n / 2
        mun = (k0 * mu0 + past.sum()) / kn
        bn = b0 + 0.5 * ((past - past.mean()) ** 2).sum() + k0 * n * (past.mean() - mu0) ** 2 / (2 * kn)
        pred = stats.t(df=2 * an, loc=mun, scale=math.sqrt(bn * (kn + 1) / (an * kn)))
        expected = -pred.logpdf(x[n]) - math.log(runs.scale())
        surprise, prob = runs.update(float(x[n]))
        assert surprise == pytest.approx(expected, rel=1e-9, abs=1e-9)
        assert prob.sum() == pytest.approx(1.0)
        assert len(prob) == n + 2


def test_bocpd_truncation_keeps_the_cost_bounded_and_the_mass() -> None:
    from aiops_detectors.anomaly.bocpd import BocpdParams, RunLength

    runs = RunLength(BocpdParams(max_run=50))
    rng = np.random.default_rng(5)
    for v in rng.normal(0.0, 1.0, 300).tolist():
        _, prob = runs.update(v)
        assert len(prob) <= 50
        assert prob.sum() == pytest.approx(1.0)
    assert runs.map_run() == 49  # one long segment: the mass sits on the merged "49 or more" hypothesis


def test_bocpd_does_not_depend_on_the_units_of_the_series() -> None:
    _, v = series(1500)
    a = _bocpd_stream(v, learn=50, warmup=30)
    b = _bocpd_stream(1e6 * v - 3e7, learn=50, warmup=30)
    assert np.allclose(a, b, atol=1e-6)
    assert a.max() >= 0.6


def test_bocpd_evidence_and_resume_before_the_run_length_is_truncated() -> None:
    det = plugins.load(plugins.DETECTORS, "bocpd")(max_run=400)
    t, v = series()
    whole = stream(det.new_scorer(), t, v)
    for cut in (0, 1, 7, 200):
        first = det.new_scorer()
        head = stream(first, t[:cut], v[:cut])
        resumed = det.new_scorer()
        resumed.load_state_dict(json.loads(json.dumps(first.state_dict(), allow_nan=False)))
        assert np.array_equal(whole, np.concatenate([head, stream(resumed, t[cut:], v[cut:])]))
    scorer = det.new_scorer()
    stream(scorer, t[:400], v[:400])
    ev = det.explain(scorer, float(v[399]), 0.0)
    assert {"expected", "lower", "upper", "run_length", "changepoint_probability", "raw_score"} <= set(ev)
    assert ev["lower"] < ev["expected"] < ev["upper"]
    assert ev["detectors"] == ["bocpd"]
