"""Prediction, performance, label-free performance, segment gaps and the Page-Hinkley stream detector."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from aiops_detectors.drift.performance import CBPE, PageHinkley, PerformanceDrift, PredictionDrift, SegmentGap

from aiops.errors import DetectorError
from aiops.types import Frame, Series


def _labelled(rng: np.random.Generator, n: int, acc: float) -> pd.DataFrame:
    y = rng.integers(0, 2, n)
    score = np.clip(np.where(y == 1, rng.normal(0.7, 0.2, n), rng.normal(0.3, 0.2, n)), 0, 1)
    pred = np.where(rng.random(n) < acc, y, 1 - y)
    return pd.DataFrame({"label": y, "prediction": pred, "score": score, "segment": rng.choice(["a", "b"], n)})


@pytest.mark.parametrize("metric", ["accuracy", "f1", "auc", "rmse", "mae"])
def test_performance_metrics_stable_then_dropping(metric: str) -> None:
    rng = np.random.default_rng(0)
    pred_col = "score" if metric in ("auc", "rmse", "mae") else "prediction"
    det = PerformanceDrift(metric=metric, prediction=pred_col, n_bootstrap=200).fit(_labelled(rng, 2000, 0.9))
    assert not det.test(_labelled(rng, 800, 0.9)).drift
    worse = _labelled(rng, 800, 0.7)
    if pred_col == "score":
        worse["score"] = np.clip(worse["score"] + rng.normal(0, 0.35, 800), 0, 1)
    res = det.test(worse)
    assert res.drift, res.summary
    col = res.columns[metric]
    assert col.details["drop_lower"] > 0
    json.dumps(res.to_dict())


def test_performance_bad_input() -> None:
    rng = np.random.default_rng(1)
    det = PerformanceDrift(n_bootstrap=50).fit(_labelled(rng, 300, 0.9))
    assert not det.test(pd.DataFrame({"label": [np.nan], "prediction": [1]})).drift
    with pytest.raises(DetectorError, match="label"):
        det.test(pd.DataFrame({"prediction": [1, 0]}))


def test_prediction_drift_on_scores_and_classes() -> None:
    rng = np.random.default_rng(2)
    ref = _labelled(rng, 2000, 0.9)
    det = PredictionDrift(column="score").fit(ref)
    assert not det.test(_labelled(rng, 500, 0.9)).drift
    moved = _labelled(rng, 500, 0.9)
    moved["score"] = np.clip(moved["score"] + 0.15, 0, 1)
    res = det.test(moved)
    assert res.drift and res.drifted_columns == ["score"]
    classes = PredictionDrift(column="prediction").fit(ref)
    skew = _labelled(rng, 500, 0.9)
    skew["prediction"] = (rng.random(500) < 0.8).astype(int)
    assert classes.test(skew).drift
    with pytest.raises(DetectorError):
        PredictionDrift(column="nope").fit(ref)


def test_cbpe_tracks_accuracy_under_covariate_shift() -> None:
    rng = np.random.default_rng(3)
    x = rng.normal(size=6000)
    p_true = 1 / (1 + np.exp(-2 * x))
    y = (rng.random(6000) < p_true).astype(int)
    frame = pd.DataFrame({"score": p_true, "label": y, "x": x})
    det = CBPE().fit(frame.iloc[:3000])
    # covariate shift: current rows concentrated near the decision boundary, where the model is less sure
    near = frame.iloc[3000:][np.abs(frame["x"].iloc[3000:]) < 0.5]
    res = det.test(near[["score"]])
    realised = float(np.mean((near["score"] >= 0.5) == (near["label"] == 1)))
    assert abs(res.details["estimated_accuracy"] - realised) < 0.04
    assert res.drift  # the estimate dropped well below the reference accuracy
    assert not det.test(frame.iloc[3000:4000][["score"]]).drift


def test_segment_gap_with_labels() -> None:
    rng = np.random.default_rng(4)
    ref = _labelled(rng, 2000, 0.9)
    det = SegmentGap(label="label").fit(ref)
    cur = _labelled(rng, 2000, 0.9)
    assert not det.test(cur).drift
    b = cur["segment"] == "b"
    cur.loc[b, "prediction"] = np.where(rng.random(int(b.sum())) < 0.7, cur.loc[b, "label"], 1 - cur.loc[b, "label"])
    res = det.test(cur)
    assert res.drift and res.columns["segment"].details["worst"] == "b"
    few = det.test(cur.iloc[:40])
    assert not few.drift


def test_page_hinkley_detector_on_an_error_series() -> None:
    det = PageHinkley(ph_lambda=15.0)
    rng = np.random.default_rng(5)
    ts = np.arange(600, dtype=float)
    errors = np.where(ts < 400, rng.random(600) < 0.05, rng.random(600) < 0.4).astype(float)
    first = Frame(source="t", collected_at=399.0, series=(Series("errors", ts[:400], errors[:400]),))
    assert det.evaluate(first) == []
    state = json.loads(json.dumps(det.state_dict()))
    again = PageHinkley(ph_lambda=15.0)
    again.load_state_dict(state)
    second = Frame(source="t", collected_at=599.0, series=(Series("errors", ts, errors),))
    (finding,) = again.evaluate(second)
    assert finding.kind == "performance" and finding.score == 1.0
