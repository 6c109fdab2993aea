"""The sequential scan of ``drift``: false alarms per clean stream, power on small persistent shifts, restarts."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from aiops_detectors.drift import _conditional as cond
from aiops_detectors.drift._sequential import LOOKBACK, Baseline, ShiftScan, StatRow, scan_pvalue, scan_threshold
from aiops_detectors.drift.tabular import TabularDrift

from aiops.types import Frame

N_REF, WINDOW = 2000, 500


def _placement_baseline(columns: int, ref: np.ndarray) -> Baseline:
    n = ref.shape[0]
    return Baseline(
        columns=(*(f"x{i}" for i in range(columns)), "flag"),
        labels=("",) * columns + ("1.0",),
        kinds=("location",) * columns + ("rate",),
        mean=np.array([0.5] * columns + [float(ref[:, -1].mean())]),
        var=np.array([(n * n - 1.0) / (12.0 * n * n)] * columns + [float(ref[:, -1].mean() * (1 - ref[:, -1].mean()))]),
        n=np.full(columns + 1, float(n)),
        raw_mean=np.append(ref[:, :-1].mean(axis=0), ref[:, -1].mean()),
        raw_sd=np.append(ref[:, :-1].std(axis=0), 1.0),
    )


def _window_stats(ref_sorted: list[np.ndarray], window: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per statistic: (values, sum of placements or of 1s, raw sum), as TabularDrift feeds the scan."""
    n = len(ref_sorted[0])
    sums = [
        float(np.sum(np.searchsorted(srt, window[:, j], "left") + np.searchsorted(srt, window[:, j], "right")))
        / (2 * n)
        for j, srt in enumerate(ref_sorted)
    ]
    flags = float(window[:, -1].sum())
    count = np.full(len(ref_sorted) + 1, float(len(window)))
    return count, np.array([*sums, flags]), np.append(window[:, :-1].sum(axis=0), flags)


def _stream(rng: np.random.Generator, rows: int, columns: int, rate: float, shift: float = 0.0) -> np.ndarray:
    x = rng.normal(size=(rows, columns))
    x[:, 0] += shift
    return np.column_stack([x, rng.random(rows) < rate]).astype(float)


def test_threshold_table_matches_a_fresh_simulation() -> None:
    from aiops_detectors.drift._sequential import simulate_null_max

    maxima = simulate_null_max(40_000, seed=7)
    for p in (0.1, 0.02, 0.005):
        assert abs(float(np.mean(maxima > scan_threshold(p))) - p) < 4 * np.sqrt(p / 40_000) + 0.1 * p
    assert scan_pvalue(scan_threshold(1e-3)) == pytest.approx(1e-3, rel=1e-6)
    assert scan_threshold(1e-7) > scan_threshold(1e-5) > scan_threshold(1e-3)


def test_false_alarms_on_200_clean_streams_of_20_windows_stay_under_the_level() -> None:
    """200 streams, each with its own finite reference (3 numeric columns and a binary one), 20 windows each.

    Over 2 000 such streams the rate was 4.25 % (+- 0.45) at this 5 % level; these 200 give 10 (5.0 %).
    """
    alpha = 0.05  # a level high enough that 200 streams can show a miscalibration
    rng = np.random.default_rng(11)
    alarmed = 0
    for _ in range(200):
        ref = _stream(rng, N_REF, 3, 0.3)
        scan = ShiftScan(_placement_baseline(3, ref), alpha)
        srt = [np.sort(ref[:, j]) for j in range(3)]
        stream = _stream(rng, 20 * WINDOW, 3, 0.3)
        fired = False
        for w in range(20):
            fired |= any(a.drift for a in scan.update(*_window_stats(srt, stream[w * WINDOW : (w + 1) * WINDOW])))
        alarmed += fired
    assert alarmed / 200 <= alpha


def test_a_stale_reference_bias_does_not_add_up() -> None:
    """A reference whose mean is off by chance is a finite sample: the two-sample z keeps that from adding up."""
    rng = np.random.default_rng(12)
    ref = _stream(rng, N_REF, 1, 0.3)
    ref[:, 0] += 2.0 / np.sqrt(N_REF)  # the reference mean 2 standard errors off, as 1 in 20 references are
    scan = ShiftScan(_placement_baseline(1, ref), 0.01)
    srt = [np.sort(ref[:, 0])]
    stream = _stream(rng, 3 * LOOKBACK * WINDOW, 1, 0.3)
    z = [scan.update(*_window_stats(srt, stream[w * WINDOW : (w + 1) * WINDOW]))[0] for w in range(3 * LOOKBACK)]
    assert not any(a.drift for a in z)
    assert abs(z[-1].z) < 3.0  # a one-sample z would be ~2 * sqrt(1 + 60 * 500 / 2000) = 8


def _table(rng: np.random.Generator, n: int, rate: float = 0.3, shift: float = 0.0) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "a": rng.normal(size=n) + shift,
            "b": rng.gamma(2.0, 1.0, size=n),
            "flag": (rng.random(n) < rate).astype(int),
            "plan": rng.choice(["basic", "pro", "team"], size=n, p=[0.6, 0.3, 0.1]),
        }
    )


def _fitted(ref: pd.DataFrame, **params: object) -> TabularDrift:
    det = TabularDrift(**params)
    det.fit(ref)
    return det


def _run(det: TabularDrift, windows: list[pd.DataFrame]) -> list[bool]:
    return [det.test(w).drift for w in windows]


def test_small_persistent_shifts_are_found_that_no_single_window_shows() -> None:
    rng = np.random.default_rng(13)
    ref = _table(rng, N_REF)
    clean = [_table(rng, WINDOW) for _ in range(6)]
    rate_up = [_table(rng, WINDOW, rate=0.37) for _ in range(6)]  # +7 points
    mean_up = [_table(rng, WINDOW, shift=0.15) for _ in range(6)]  # +0.15 sd

    per_window = _fitted(ref, sequential=False)
    assert sum(_run(per_window, clean + rate_up + mean_up)) <= 2  # alone, most shifted windows show nothing
    for moved, column in ((rate_up, "flag"), (mean_up, "a")):
        det = _fitted(ref)
        flags = _run(det, clean + moved)
        assert not any(flags[:6]) and flags[-1]
        res = det.test(moved[-1])
        seq = res.details["sequential"]
        assert list(seq["alarms"]) == [column]
        alarm = seq["alarms"][column]
        assert 5 <= alarm["start_window"] <= 8
        assert alarm["ci95"][0] > 0.0  # the interval excludes "no shift"
        if column == "a":  # no window of it was flagged alone, so none sat out: the interval covers the truth
            assert alarm["ci95"][0] < 0.15 < alarm["ci95"][1]
        assert res.columns[column].drift and "persistent shift" in res.columns[column].details["reasons"]
        assert "since window" in res.summary


def test_state_survives_a_restart_mid_stream() -> None:
    rng = np.random.default_rng(14)
    ref = _table(rng, N_REF)
    windows = [_table(rng, WINDOW) for _ in range(5)] + [_table(rng, WINDOW, rate=0.38) for _ in range(7)]
    whole = _fitted(ref)
    expected = [whole.test(w).to_dict() for w in windows]

    first = _fitted(ref)
    got = [first.test(w).to_dict() for w in windows[:7]]
    state = json.loads(json.dumps(first.state_dict()))  # what the daemon stores
    assert state["sequential"]["windows"] == 7

    restarted = TabularDrift()
    restarted.load_state_dict(state)  # before the reference is read, as after a daemon restart
    restarted.fit(ref)
    got += [restarted.test(w).to_dict() for w in windows[7:]]
    assert [g["drift"] for g in got] == [e["drift"] for e in expected]
    assert got[-1]["sequential"] == expected[-1]["sequential"]

    moved = TabularDrift()  # a retrain or rollback moved the reference while it was down: start afresh
    moved.load_state_dict(state)
    moved.fit(_table(np.random.default_rng(15), N_REF))
    assert moved.scan_ is not None and moved.scan_.windows == 0


def test_a_refit_resets_the_accumulation() -> None:
    rng = np.random.default_rng(16)
    det = _fitted(_table(rng, N_REF))
    for _ in range(3):
        det.test(_table(rng, WINDOW))
    assert det.scan_ is not None and det.scan_.windows == 3
    det.fit(_table(rng, N_REF))  # what evaluate does when the registry alias moves
    assert det.scan_.windows == 0
    assert _fitted(_table(rng, N_REF), sequential=False).scan_ is None


def test_the_daemon_keeps_accumulating_across_ticks_and_a_restart(tmp_path: Path) -> None:
    rng = np.random.default_rng(17)
    path = tmp_path / "ref.csv"
    _table(rng, N_REF).to_csv(path, index=False)
    ticks = [_table(rng, WINDOW) for _ in range(5)] + [_table(rng, WINDOW, rate=0.39) for _ in range(6)]
    frames = [
        Frame(source="t", collected_at=float(i), rows=tuple(df.to_dict("records")), columns=tuple(df.columns))
        for i, df in enumerate(ticks)
    ]
    whole = TabularDrift(reference=str(path))
    expected = [[f.evidence["sequential"] for f in whole.evaluate(fr)] for fr in frames]
    assert any(expected[5:]) and not any(expected[:5])  # no finding on clean ticks; found once it has lasted

    first = TabularDrift(reference=str(path))
    got = [[f.evidence["sequential"] for f in first.evaluate(fr)] for fr in frames[:7]]
    state = json.loads(json.dumps(first.state_dict()))
    restarted = TabularDrift(reference=str(path))
    restarted.load_state_dict(state)  # the daemon restores state, then the first tick reads the reference
    got += [[f.evidence["sequential"] for f in restarted.evaluate(fr)] for fr in frames[7:]]
    assert got == expected


# ---- each column given the others ---------------------------------------------------------------------------
def _linked(rng: np.random.Generator, n: int, flip: float = 0.0, shift: float = 0.0) -> pd.DataFrame:
    """Columns that predict each other: a 0/1 class (30 %) and numeric features that differ by class (two near
    copies of one factor, a skewed one tied to it), an independent one; ``flip`` of the rows get class 1
    whatever their features say, ``shift`` moves x1 alone."""
    label = (rng.random(n) < 0.3).astype(int)
    f = 2.5 * label + rng.normal(size=n)
    label[rng.random(n) < flip] = 1
    return pd.DataFrame(
        {
            "x1": f + 0.4 * rng.normal(size=n) + shift,
            "x2": f + 0.4 * rng.normal(size=n),
            "x3": np.exp(0.5 * (f + 0.5 * rng.normal(size=n))),
            "noise": rng.standard_t(4, size=n),
            "label": label,
        }
    )


def _model(ref: pd.DataFrame) -> cond.ConditionalModel:
    cols = list(ref.columns)
    srts = [None if c == "label" else np.sort(ref[c].to_numpy(float)) for c in cols]
    model = cond.fit_conditional(
        cond.scoring_of(cols, srts, [1.0 if c == "label" else np.nan for c in cols]), ref.to_numpy(float)
    )
    assert model is not None
    return model


def test_residual_statistics_keep_the_false_alarm_level_on_200_clean_streams() -> None:
    """The scan over each column and each well-predicted column given the others, 200 clean streams of 20
    windows, each stream with its own finite reference (its own fitted regressions): alarms <= the level."""
    alpha = 0.05
    rng = np.random.default_rng(21)
    alarmed = 0
    for _ in range(200):
        ref = _linked(rng, N_REF)
        model = _model(ref)
        assert set(model.columns) >= {"x1", "x2", "label"}  # the label: R^2 ~ 0.6
        x = ref.to_numpy(float)
        own = _placement_baseline(4, x)
        scan = ShiftScan(Baseline.of([*_rows_of(own), *model.stat_rows({"label": "1.0"})]), alpha)
        srt = [np.sort(x[:, j]) for j in range(4)]
        stream = _linked(rng, 20 * WINDOW).to_numpy(float)
        fired = False
        for w in range(20):
            window = stream[w * WINDOW : (w + 1) * WINDOW]
            count, total, raw = _window_stats(srt, window)
            g_count, g_total = model.window_sums(window)
            obs = [np.concatenate(p) for p in ((count, g_count), (total, g_total), (raw, g_total))]
            fired |= any(a.drift for a in scan.update(*obs))
        alarmed += fired
    assert alarmed / 200 <= alpha  # 8 of 200 here (4 %)


def _rows_of(b: Baseline) -> list[StatRow]:
    return [
        StatRow(c, lab, k, float(m), float(v), float(n), float(rm), float(rs))
        for c, lab, k, m, v, n, rm, rs in zip(
            b.columns, b.labels, b.kinds, b.mean, b.var, b.n, b.raw_mean, b.raw_sd, strict=True
        )
    ]


def test_a_label_set_to_one_whatever_the_features_is_found_given_the_other_columns() -> None:
    """4 % of the labels set to 1 from window 6 on (the rate moves ~2.5 points: no single window, nor the
    label's own rate over 6 windows, shows it); its residual given the features does."""
    rng = np.random.default_rng(22)
    ref = _linked(rng, N_REF)
    windows = [_linked(rng, WINDOW) for _ in range(6)] + [_linked(rng, WINDOW, flip=0.04) for _ in range(6)]
    alone = _fitted(ref, sequential_given=False)
    assert not any(_run(alone, windows))
    det = _fitted(ref)
    flags = _run(det, windows)
    assert not any(flags[:6]) and flags[-1]
    res = det.test(_linked(rng, WINDOW, flip=0.04))
    assert "label (persistent shift since window" in res.summary and "given the other columns" in res.summary
    alarm = res.details["sequential"]["alarms"]["label"]
    assert alarm["given"] == "the other columns" and alarm["kind"] == "rate" and 4 <= alarm["start_window"] <= 7
    assert alarm["ci95"][0] > 0.0 and alarm["shift"] < 0.1


def test_a_numeric_column_moving_alone_is_found_given_the_others() -> None:
    rng = np.random.default_rng(23)
    ref = _linked(rng, N_REF)
    det = _fitted(ref, multivariate=False)  # (the per-window Mahalanobis test would see it too)
    flags = _run(det, [_linked(rng, WINDOW) for _ in range(4)] + [_linked(rng, WINDOW, shift=0.1) for _ in range(4)])
    assert not any(flags[:4]) and any(flags[4:])
    assert _fitted(ref, multivariate=False, sequential_given=False).scan_ is not None


def test_residual_state_survives_a_restart_mid_stream() -> None:
    rng = np.random.default_rng(24)
    ref = _linked(rng, N_REF)
    windows = [_linked(rng, WINDOW) for _ in range(5)] + [_linked(rng, WINDOW, flip=0.08) for _ in range(5)]
    whole = _fitted(ref)
    assert whole.scan_ is not None and whole.scan_.baseline.given_mask.any()
    expected = [whole.test(w).to_dict() for w in windows]
    first = _fitted(ref)
    got = [first.test(w).to_dict() for w in windows[:6]]
    restarted = TabularDrift()
    restarted.load_state_dict(json.loads(json.dumps(first.state_dict())))
    restarted.fit(ref)
    got += [restarted.test(w).to_dict() for w in windows[6:]]
    assert got == expected
    assert expected[-1]["sequential"]["first_alarm_window"] is not None


def test_the_residual_model_on_awkward_columns() -> None:
    rng = np.random.default_rng(25)
    ref = _linked(rng, N_REF)
    ref["copy"] = ref["x1"]  # an exact copy: explained entirely, its residual is ~0 on every row
    ref.loc[rng.random(N_REF) < 0.1, "x2"] = np.nan  # a tenth missing
    det = _fitted(ref)
    model = det.cond_
    assert model is not None and {"x1", "x2", "copy"} <= set(model.columns)
    assert np.all(np.isfinite(model.var)) and np.all(model.r2 <= 1.0)
    assert int(model.n[model.columns.index("x2")]) == int(ref["x2"].notna().sum())
    cur = []
    for _ in range(8):
        w = _linked(rng, WINDOW).assign(copy=lambda d: d["x1"])
        w.loc[rng.random(WINDOW) < 0.1, "x2"] = np.nan
        cur.append(w)
    assert not any(_run(det, cur))
    assert det.test(cur[0].drop(columns="x3")).drift  # a column gone: a schema alarm, the residuals sit out
    few = pd.DataFrame({"a": rng.normal(size=30), "b": rng.normal(size=30)})
    assert _fitted(few).cond_ is None  # too few rows per coefficient for a regression
