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


def test_cbpe_estimate_within_tolerance_on_a_shifted_holdout() -> None:
    """A fitted model (not the true probabilities) on a held-out sample moved towards its decision boundary."""
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(11)
    x = rng.normal(size=(9000, 2))
    y = (rng.random(9000) < 1 / (1 + np.exp(-(3 * x[:, 0] - x[:, 1])))).astype(int)
    model = LogisticRegression(C=0.01).fit(x[:3000], y[:3000])  # strongly regularised: under-confident scores
    s = model.predict_proba(x)[:, 1]
    det = CBPE().fit(pd.DataFrame({"score": s[3000:5000], "label": y[3000:5000]}))
    assert abs(det.reference_estimate_ - det.reference_accuracy_) < 0.02  # cross-fitted, on the reference
    held = np.arange(5000, 9000)
    w = np.exp(-2 * np.abs(x[held, 0]))  # covariate shift: rows near the boundary are drawn more often
    cur = rng.choice(held, 1500, replace=False, p=w / w.sum())
    res = det.test(pd.DataFrame({"score": s[cur]}))
    realised = float(np.mean((s[cur] >= 0.5) == (y[cur] == 1)))
    raw = float(np.mean(np.maximum(s[cur], 1 - s[cur])))  # the uncalibrated confidence is far off
    assert abs(raw - realised) > 0.05
    assert abs(res.details["estimated_accuracy"] - realised) < 0.025
    assert res.details["accuracy_lower"] <= realised <= res.details["accuracy_upper"]
    assert det.reference_accuracy_ - realised > 0.05 and res.drift


def test_cbpe_interval_coverage_with_known_probabilities() -> None:
    """The realised accuracy falls inside the stated 95 % interval in about 95 % of windows."""
    rng = np.random.default_rng(12)
    x = rng.normal(size=60_000)
    p_true = 1 / (1 + np.exp(-2.5 * x))  # the score is the true probability: a calibrated model
    y = (rng.random(60_000) < p_true).astype(int)
    det = CBPE(n_bootstrap=60).fit(pd.DataFrame({"score": p_true[:4000], "label": y[:4000]}))
    pool = np.arange(4000, 60_000)
    inside, errors, widths = [], [], []
    for i in range(200):
        k = (-1.5, 0.0, 1.0, 2.0)[i % 4]  # covariate shifts of different directions and strengths
        w = np.exp(k * x[pool] - 0.5 * x[pool] ** 2 * (i % 2))
        cur = rng.choice(pool, 300, replace=False, p=w / w.sum())
        d = det.test(pd.DataFrame({"score": p_true[cur]})).details
        realised = float(np.mean((p_true[cur] >= 0.5) == (y[cur] == 1)))
        inside.append(d["accuracy_lower"] <= realised <= d["accuracy_upper"])
        errors.append(d["estimated_accuracy"] - realised)
        widths.append(d["accuracy_upper"] - d["accuracy_lower"])
    assert 0.9 <= np.mean(inside) <= 0.99
    assert abs(np.mean(errors)) < 0.005  # unbiased
    assert np.mean(widths) < 0.1


def test_cbpe_multiclass_and_other_threshold() -> None:
    rng = np.random.default_rng(13)
    n = 6000
    logits = rng.normal(size=(n, 3)) * 1.5
    probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    labels = np.array([rng.choice(3, p=row) for row in probs])
    frame = pd.DataFrame(probs, columns=["cat", "dog", "fox"])
    frame["label"] = np.array(["cat", "dog", "fox"])[labels]
    det = CBPE(scores=["cat", "dog", "fox"]).fit(frame.iloc[:3000])
    cur = frame.iloc[3000:]
    res = det.test(cur[["cat", "dog", "fox"]])
    realised = float(np.mean(np.array(["cat", "dog", "fox"])[probs[3000:].argmax(axis=1)] == cur["label"]))
    assert abs(res.details["estimated_accuracy"] - realised) < 0.03
    as_positions = frame.assign(label=labels)  # labels may also be the class's position
    by_position = CBPE(scores=["cat", "dog", "fox"]).fit(as_positions.iloc[:3000])
    assert by_position.reference_accuracy_ == det.reference_accuracy_
    with pytest.raises(DetectorError, match="fox"):
        det.test(cur[["cat", "dog"]])
    # a binary model used at another threshold: one calibrator per predicted class
    s = probs[:, 0] / (probs[:, 0] + probs[:, 1])
    y = (labels == 0).astype(int)
    binary = CBPE(threshold=0.3).fit(pd.DataFrame({"score": s[:3000], "label": y[:3000]}))
    est = binary.test(pd.DataFrame({"score": s[3000:]})).details["estimated_accuracy"]
    assert abs(est - float(np.mean((s[3000:] >= 0.3) == (y[3000:] == 1)))) < 0.03
