"""Data-drift detectors: right on clean data, right on shifted data, and never a crash on bad input."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from aiops_detectors.drift import _stats as st
from aiops_detectors.drift._io import read_table, reservoir_sample
from aiops_detectors.drift.multivariate import ClassifierDrift, MMDDrift
from aiops_detectors.drift.tabular import TabularDrift
from aiops_detectors.drift.univariate import KSDrift, PSIDrift

from aiops import plugins
from aiops.errors import DetectorError
from aiops.testing import check_detector
from aiops.types import Frame

N_REF, N_CUR = 2000, 500


def _table(rng: np.random.Generator, n: int, shift: float = 0.0) -> pd.DataFrame:
    """Correlated numeric columns, a rounded column, a binary and a categorical one."""
    base = rng.normal(size=n)
    return pd.DataFrame(
        {
            "a": base + shift,
            "b": 0.8 * base + 0.6 * rng.normal(size=n),
            "rounded": np.round(rng.gamma(3.0, 2.0, size=n), 1),
            "flag": (rng.random(n) < 0.3).astype(int),
            "colour": rng.choice(["red", "green", "blue"], size=n, p=[0.5, 0.3, 0.2]),
        }
    )


@pytest.fixture
def fitted() -> TabularDrift:
    """A fresh fit per test: the detector accumulates evidence across the windows it is given."""
    return TabularDrift().fit(_table(np.random.default_rng(0), N_REF))


def test_clean_windows_do_not_alarm(fitted: TabularDrift) -> None:
    rng = np.random.default_rng(1)
    flags = [fitted.test(_table(rng, N_CUR)).drift for _ in range(20)]
    assert sum(flags) == 0


def test_shifted_column_is_detected_and_named(fitted: TabularDrift) -> None:
    res = fitted.test(_table(np.random.default_rng(2), N_CUR, shift=0.5))
    assert res.drift
    assert "a" in res.drifted_columns
    col = res.columns["a"]
    assert col.p_value is not None and col.p_value < 1e-6
    assert col.effect is not None and col.effect > 0.3
    assert "a (" in res.summary


def test_missing_values_are_a_signal(fitted: TabularDrift) -> None:
    cur = _table(np.random.default_rng(3), N_CUR)
    cur.loc[cur.index[:25], "b"] = np.nan  # 5 % of one column goes empty, the rest unchanged
    res = fitted.test(cur)
    assert res.drifted_columns == ["b"]
    assert res.columns["b"].details["reasons"] == ["missingness"]


def test_added_noise_on_rounded_values_is_novelty(fitted: TabularDrift) -> None:
    cur = _table(np.random.default_rng(4), N_CUR)
    cur["rounded"] = cur["rounded"] + np.random.default_rng(5).normal(0, 0.05, N_CUR)
    res = fitted.test(cur)
    assert "novelty" in res.columns["rounded"].details["reasons"]


def test_binary_and_categorical_shifts(fitted: TabularDrift) -> None:
    rng = np.random.default_rng(6)
    cur = _table(rng, N_CUR)
    cur["flag"] = (rng.random(N_CUR) < 0.45).astype(int)
    cur["colour"] = rng.choice(["red", "green", "blue"], size=N_CUR, p=[0.3, 0.3, 0.4])
    res = fitted.test(cur)
    assert set(res.drifted_columns) == {"flag", "colour"}
    assert res.columns["colour"].test == "chi-square"


def test_multivariate_sees_broken_correlation(fitted: TabularDrift) -> None:
    rng = np.random.default_rng(7)
    cur = _table(rng, N_CUR)
    cur["b"] = rng.permutation(cur["b"].to_numpy())  # same marginal, correlation with "a" gone
    res = fitted.test(cur)
    assert res.drift
    assert res.details["multivariate"]["drift"]


def test_effect_floor_silences_trivial_differences_on_large_samples() -> None:
    rng = np.random.default_rng(8)
    ref = pd.DataFrame({"x": rng.normal(size=50_000)})
    cur = pd.DataFrame({"x": rng.normal(0.03, 1.0, size=50_000)})
    assert TabularDrift(min_shift=0.0).fit(ref).test(cur).drift
    assert not TabularDrift().fit(ref).test(cur).drift


def test_nan_empty_and_wrong_types_give_clear_results(fitted: TabularDrift) -> None:
    rng = np.random.default_rng(9)
    empty = fitted.test(_table(rng, N_CUR).iloc[:0])
    assert not empty.drift and "empty" in empty.summary
    all_nan = _table(rng, N_CUR)
    all_nan["a"] = np.nan
    res = fitted.test(all_nan)
    assert res.columns["a"].drift and res.columns["a"].details["reasons"] == ["missingness"]
    garbage = _table(rng, N_CUR)
    garbage["a"] = "not a number"
    res = fitted.test(garbage)
    assert res.columns["a"].drift
    assert res.columns["a"].details["signals"]["missingness"]["unparseable"] == N_CUR
    absent = fitted.test(_table(rng, N_CUR).drop(columns=["b"]))
    assert absent.columns["b"].test == "schema" and absent.drift
    json.dumps(res.to_dict())  # evidence is JSON-safe
    with pytest.raises(DetectorError):
        fitted.test("not a frame")  # type: ignore[arg-type]
    with pytest.raises(DetectorError):
        TabularDrift().test(_table(rng, 10))  # not fitted
    with pytest.raises(DetectorError):
        TabularDrift().fit(_table(rng, 0))
    with pytest.raises(DetectorError, match="alpha"):
        TabularDrift(alpha=2.0)


def test_all_nan_reference_column_and_constant_column() -> None:
    rng = np.random.default_rng(10)
    ref = pd.DataFrame({"x": rng.normal(size=500), "const": 1.0, "void": np.nan})
    det = TabularDrift().fit(ref)
    res = det.test(pd.DataFrame({"x": rng.normal(size=200), "const": 1.0, "void": np.nan}))
    assert not res.drift
    res = det.test(pd.DataFrame({"x": rng.normal(size=200), "const": 2.0, "void": 3.0}))
    assert set(res.drifted_columns) == {"const", "void"}


def test_sample_caps_bound_the_work() -> None:
    rng = np.random.default_rng(11)
    det = TabularDrift(max_reference_rows=1000, max_current_rows=300).fit(pd.DataFrame({"x": rng.normal(size=5000)}))
    assert det.n_reference_ == 1000
    res = det.test(pd.DataFrame({"x": rng.normal(size=5000)}))
    assert res.details["n_current"] == 300


@pytest.mark.parametrize("cls", [KSDrift, PSIDrift, MMDDrift])
def test_baselines_clean_and_shifted(cls: type) -> None:
    rng = np.random.default_rng(12)
    det = cls().fit(_table(rng, N_REF).drop(columns=["colour"]))
    assert not det.test(_table(rng, N_CUR).drop(columns=["colour"])).drift
    assert det.test(_table(rng, N_CUR, shift=1.0).drop(columns=["colour"])).drift


def test_classifier_detects_shift() -> None:
    rng = np.random.default_rng(13)
    det = ClassifierDrift(max_iter=20, max_test_reference_rows=600).fit(_table(rng, 1000))
    assert not det.test(_table(rng, 300)).drift
    res = det.test(_table(rng, 300, shift=1.0))
    assert res.drift and res.details["auc"] > 0.6


def test_evaluate_loads_reference_lazily_and_reports_a_finding(tmp_path: Path) -> None:
    rng = np.random.default_rng(14)
    path = tmp_path / "ref.parquet"
    _table(rng, N_REF).to_parquet(path)
    det = TabularDrift(reference=str(path))
    clean = _table(rng, N_CUR)
    frame = Frame(source="t", collected_at=5.0, rows=tuple(clean.to_dict("records")), columns=tuple(clean.columns))
    assert det.evaluate(frame) == []
    moved = _table(rng, N_CUR, shift=1.0)
    frame = Frame(source="t", collected_at=6.0, rows=tuple(moved.to_dict("records")), columns=tuple(moved.columns))
    (finding,) = det.evaluate(frame)
    assert finding.kind == "drift" and finding.labels == {"check_part": "data_drift"}
    assert finding.evidence["columns"]["a"]["drift"] is True
    json.dumps(finding.to_dict())
    with pytest.raises(DetectorError, match="reference"):
        TabularDrift().evaluate(frame)


@pytest.mark.parametrize(
    "name",
    [
        "drift",
        "ks",
        "psi",
        "mmd",
        "classifier",
        "alibi_ks",
        "alibi_tabular",
        "alibi_cvm",
        "alibi_chisquare",
        "alibi_mmd",
    ],
)
def test_entry_points_honour_the_detector_contract(name: str) -> None:
    cls = plugins.load(plugins.DETECTORS, name)
    check_detector(cls)
    assert callable(cls.fit) and callable(cls.test)


def test_read_table_formats_and_reservoir(tmp_path: Path) -> None:
    frame = pd.DataFrame({"x": np.arange(1000), "s": ["a", "b"] * 500})
    frame.to_csv(tmp_path / "t.csv", index=False)
    frame.to_json(tmp_path / "t.jsonl", orient="records", lines=True)
    for name in ("t.csv", "t.jsonl"):
        assert len(read_table(tmp_path / name)) == 1000
        sample = read_table(tmp_path / name, max_rows=100)
        assert len(sample) == 100 and sample["x"].is_unique
    with pytest.raises(DetectorError):
        read_table(tmp_path / "missing.csv")
    # reservoir sampling is uniform: every position is equally likely to be kept
    hits = np.zeros(60)
    for seed in range(100):
        chunks = (pd.DataFrame({"i": np.arange(s, s + 20)}) for s in range(0, 60, 20))
        hits[reservoir_sample(chunks, 20, seed=seed)["i"].to_numpy()] += 1
    assert hits.sum() == 2000
    assert hits.min() > 15 and hits.max() < 55  # expectation 33 each: early and late rows alike


def test_exact_tests_are_calibrated() -> None:
    """Under no drift, the hypergeometric novelty and Fisher missingness p-values are not anti-conservative."""
    rng = np.random.default_rng(15)
    pvals = []
    for _ in range(300):
        ref = rng.integers(0, 400, size=1000)
        cur = rng.integers(0, 400, size=200)
        det = TabularDrift(multivariate=False).fit(pd.DataFrame({"v": ref.astype(float)}))
        signals = det.test(pd.DataFrame({"v": cur.astype(float)})).columns["v"].details["signals"]
        pvals.append(signals["novelty"]["p_value"])
    assert np.mean(np.array(pvals) < 0.05) <= 0.08
    assert st.fisher_two_sided(0, 500, 0, 2000) == 1.0
    assert st.fisher_two_sided(10, 500, 0, 2000) < 1e-6
    assert st.cauchy_combine([1e-20, 0.5]) < 1e-19
    assert st.tarone_bonferroni([0.5, 0.5], [1.0, 1e-9], 0.01) == 1


def test_timestamp_columns_are_not_tested_unless_named() -> None:
    rng = np.random.default_rng(16)

    def table(n: int, start: str) -> pd.DataFrame:
        return pd.DataFrame({"when": pd.date_range(start, periods=n, freq="h"), "x": rng.normal(size=n)})

    res = TabularDrift().fit(table(1000, "2024-01-01")).test(table(300, "2025-06-01"))
    assert not res.drift and list(res.columns) == ["x"]
    named = TabularDrift(columns=["when", "x"]).fit(table(1000, "2024-01-01")).test(table(300, "2025-06-01"))
    assert named.drifted_columns == ["when"]


def test_warmup_reference_from_the_stream_survives_a_restart() -> None:
    rng = np.random.default_rng(17)

    def frame(df: pd.DataFrame, t: float) -> Frame:
        return Frame(source="t", collected_at=t, rows=tuple(df.to_dict("records")), columns=tuple(df.columns))

    det = TabularDrift(warmup_rows=1500)
    assert det.evaluate(frame(_table(rng, 1000), 1.0)) == []  # still warming up
    state = json.loads(json.dumps(det.state_dict()))
    again = TabularDrift(warmup_rows=1500)
    again.load_state_dict(state)
    assert again.evaluate(frame(_table(rng, 1000), 2.0)) == []  # completes the reference, tests the rest
    assert again.n_reference_ == 1500
    (finding,) = again.evaluate(frame(_table(rng, 500, shift=1.0), 3.0))
    assert finding.kind == "drift"


# ---- the fast paths of `drift`: equal to scipy / to the tie-corrected path they replace for speed --------------
def test_ks_pvalue_and_smirnov_equal_scipy() -> None:
    from scipy import special, stats

    for en in (50, 141, 490, 2_500, 25_000, 100_000):
        for nxsq in (0.05, 0.5, 1.5, 2.2, 3.0, 9.0, 50.0, 200.0, 369.0, 400.0):
            d = float(np.sqrt(nxsq / en))
            if d >= 1.0:
                continue
            exact = float(stats.kstwo.sf(d, en))
            if en > 140 and d * d * en < 2.2:  # p > 0.02: the limiting tail, never below the exact one
                assert exact <= st.ks_pvalue(d, en) <= exact + 0.025
                continue
            assert st.ks_pvalue(d, en) == pytest.approx(exact, rel=1e-9, abs=1e-300)
            if en > 140 and nxsq >= 2.2:
                assert st.smirnov_sf(en, d) == pytest.approx(float(special.smirnov(en, d)), rel=1e-9, abs=1e-300)
    assert st.ks_pvalue(0.0, 1000) == 1.0
    assert st.ks_pvalue(0.7, 300) == pytest.approx(float(stats.kstwo.sf(0.7, 300)), rel=1e-9)


def test_merged_ranks_equal_scipy_ks_and_mann_whitney() -> None:
    from scipy import stats

    rng = np.random.default_rng(20)
    for n, m, shift in ((5_000, 800, 0.0), (3_000, 3_000, 0.1), (400, 7_000, -0.3), (1, 50, 0.0)):
        ref, cur = np.sort(rng.normal(size=n)), np.sort(rng.normal(shift, 1.0, size=m))
        le = st.tie_free_ranks(ref, cur)
        assert le is not None
        assert np.array_equal(le, np.searchsorted(ref, cur))
        d, p = st.ks_merged(n, le)
        ks = stats.ks_2samp(ref, cur, method="asymp")
        assert d == float(ks.statistic)  # the same differences, the same arithmetic: bit for bit
        assert p == pytest.approx(float(ks.pvalue), rel=1e-9, abs=1e-300)
        auc, p_mw = st.rank_sum_u(n, float(m), float(np.sum(le)), 0.0)
        mw = stats.mannwhitneyu(cur, ref, method="asymptotic", use_continuity=True)
        assert auc == pytest.approx(float(mw.statistic) / (n * m), rel=1e-12)
        assert p_mw == pytest.approx(float(mw.pvalue), rel=1e-9)
    # a reference with ties of its own is fine; a current value that is tied is not (tie-corrected path)
    ref = np.sort(np.repeat(rng.normal(size=500), 3))
    cur = np.sort(rng.normal(size=200))
    assert np.array_equal(st.tie_free_ranks(ref, cur), np.searchsorted(ref, cur))  # type: ignore[arg-type]
    assert st.tie_free_ranks(ref, np.sort(np.append(cur, ref[7]))) is None
    assert st.tie_free_ranks(ref, np.sort(np.append(cur, cur[3]))) is None


def test_sorted_helpers_equal_numpy() -> None:
    rng = np.random.default_rng(21)
    for v in (np.round(rng.normal(size=3_000), 1), rng.normal(size=500), np.zeros(5), np.array([])):
        srt = np.sort(v)
        u, c = st.sorted_unique(srt)
        u0, c0 = np.unique(srt, return_counts=True)
        assert np.array_equal(u, u0) and np.array_equal(c, c0)
        edges = np.unique(srt[(np.arange(1, 10) * (len(srt) - 1)) // 10]) if len(srt) else np.array([])
        expected = np.bincount(np.searchsorted(edges, srt, side="right"), minlength=len(edges) + 1)
        assert np.array_equal(st.bin_counts(edges, srt), expected)
        assert st.tie_sum(c) == float(np.sum(c.astype(float) ** 3 - c))


def test_merge_counts_and_tie_groups_equal_numpy() -> None:
    """The linear merge (pandas' forward-fill indexer) is the right-sided binary search, ties and all; a
    pandas whose internal changed meaning would fail here rather than shift every rank statistic."""
    rng = np.random.default_rng(25)
    for _ in range(300):
        digits = int(rng.integers(0, 3))  # 0-2 decimals: many ties within and across the two arrays
        ref = np.sort(np.round(rng.normal(size=int(rng.integers(0, 80))), digits))
        keys = np.sort(np.round(rng.normal(0.2, 1.3, size=int(rng.integers(0, 80))), digits))
        assert np.array_equal(st.count_at_or_below(ref, keys), np.searchsorted(ref, keys, side="right"))
        counts = st.sorted_unique(ref)[1]
        assert np.array_equal(st.tie_group_sizes(ref), counts[counts > 1])
    ints = np.arange(10)  # not float64: the binary search serves
    assert np.array_equal(st.count_at_or_below(ints, np.array([-1, 3, 3, 12])), [0, 4, 4, 10])


def test_abs_deviations_and_row_order_moments_equal_numpy() -> None:
    from aiops_detectors.drift.tabular import _mean_std_in_row_order

    rng = np.random.default_rng(24)
    for v in (rng.normal(size=5_001), np.round(rng.lognormal(size=3_000), 2), np.array([1.0, 1.0, 1.0])):
        srt = np.sort(v)
        for center in (float(np.median(srt)), float(srt[0]), 0.3):
            assert np.array_equal(st.sorted_abs_dev(srt, center), np.sort(np.abs(srt - center)))
    # the multivariate test's standardisation: NumPy's row-order sums over a C-ordered matrix, bit for bit
    x = np.ascontiguousarray(rng.normal(3.0, 7.0, size=(20_000, 5)) * [1.0, 1e-3, 1e3, 1.0, 50.0])
    buf = np.empty(len(x))
    for j in range(x.shape[1]):
        mean, sd = _mean_std_in_row_order(np.asfortranarray(x)[:, j], buf)
        assert mean == x.mean(axis=0)[j] and sd == x.std(axis=0)[j]


def test_sample_rows_is_pandas_sample() -> None:
    from aiops_detectors.drift.base import sample_rows

    rng = np.random.default_rng(22)
    floats = pd.DataFrame(rng.normal(size=(1_000, 4)), columns=list("abcd"))
    mixed = floats.assign(s=rng.choice(["x", "y"], 1_000), i=rng.integers(0, 9, 1_000))
    shuffled = floats.set_axis(rng.permutation(1_000) + 5, axis=0)
    for frame in (floats, mixed, shuffled, floats.iloc[100:900]):
        for seed in (0, 7):
            expected = frame.sample(n=300, random_state=seed).sort_index()
            pd.testing.assert_frame_equal(sample_rows(frame, 300, seed), expected)


def test_fast_paths_decide_exactly_as_the_tie_corrected_path(monkeypatch: pytest.MonkeyPatch) -> None:
    """Continuous columns take the merge path, other frames the per-column path: the same result to the bit."""
    rng = np.random.default_rng(23)
    ref = pd.DataFrame(rng.normal(size=(4_000, 3)), columns=["a", "b", "c"])
    cur = pd.DataFrame(rng.normal(size=(900, 3)), columns=["a", "b", "c"])
    cur["a"] += 0.3
    fast = TabularDrift().fit(ref).test(cur)
    assert fast.drifted_columns == ["a"]
    # object columns are parsed by pandas, one column at a time, and no merge is allowed
    monkeypatch.setattr(st, "tie_free_ranks", lambda ref_sorted, cur_sorted: None)
    slow = TabularDrift().fit(ref.astype(object)).test(cur.astype(object))
    assert fast.to_dict() == slow.to_dict()


def test_ledoit_wolf_equals_scikit_learn() -> None:
    from sklearn.covariance import ledoit_wolf

    rng = np.random.default_rng(21)
    for n, p in ((500, 5), (2_000, 40), (60, 80)):
        x = rng.normal(size=(n, p)) @ rng.normal(size=(p, p)) + rng.normal(size=p)
        expected = ledoit_wolf(x)[0]
        assert np.allclose(st.ledoit_wolf(x), expected, rtol=1e-12, atol=1e-12 * float(np.abs(expected).max()))
