"""Beyond data drift: model outputs, model performance with and without labels, fairness gaps.

* :class:`PredictionDrift` — drift of a model's output column (scores or classes): the earliest sign a model
  behaves differently, available before any label.
* :class:`PerformanceDrift` — when labels arrive: accuracy / F1 / AUC / RMSE / MAE of the window against the
  reference, with a bootstrap confidence interval of the drop, so a noisy small window does not alert.
* :class:`CBPE` — label-free accuracy estimate for probabilistic classifiers, binary or multiclass (in the
  spirit of NannyML's confidence-based performance estimation): calibrate the model's confidence to the
  probability of being right on the labelled reference (isotonic), then the expected accuracy of a window is
  the mean of those probabilities, with an interval for the accuracy the window's labels will show.
* :class:`SegmentGap` — performance or positive rate per value of a sensitive or business column; alerts when
  the gap between the best and worst segment widens beyond the reference gap.
* :class:`PageHinkley` — a streaming change detector for a per-event error or loss series (O(1) per point,
  state serialisable), plugged into the daemon through :class:`aiops.detection.SeriesDetector`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, ClassVar, Literal

import numpy as np
import pandas as pd
from pydantic import Field
from scipy import special

from aiops.detection import ColumnDrift, DriftResult, Scorer, SeriesDetector, SeriesDetectorParams
from aiops.errors import DetectorError

from .base import DriftDetector, DriftParams, fmt_p
from .tabular import TabularDrift, TabularDriftParams

Metric = Literal["accuracy", "f1", "auc", "rmse", "mae"]
_LOWER_IS_BETTER = {"rmse", "mae"}


# ---- prediction drift -------------------------------------------------------------------------------------
class PredictionDriftParams(TabularDriftParams):
    """Parameters of :class:`PredictionDrift` (``column`` is the model output)."""

    column: str = Field("prediction", description="the model output column: a score or a class")
    multivariate: bool = False


class PredictionDrift(TabularDrift):
    """Drift of a model's output distribution (scores: rank tests; classes: chi-square), label-free.

    >>> import numpy as np, pandas as pd
    >>> rng = np.random.default_rng(0)
    >>> det = PredictionDrift(column="score").fit(pd.DataFrame({"score": rng.beta(2, 5, 2000)}))
    >>> det.test(pd.DataFrame({"score": rng.beta(2, 5, 500)})).drift
    False
    >>> det.test(pd.DataFrame({"score": rng.beta(3, 4, 500)})).drift
    True
    """

    Params = PredictionDriftParams
    params: PredictionDriftParams
    name: ClassVar[str] = "prediction_drift"
    check_part: ClassVar[str] = "prediction_drift"

    def _select(self, frame: pd.DataFrame, what: str) -> pd.DataFrame:
        col = self.params.column
        if col not in [str(c) for c in frame.columns]:
            raise DetectorError(f"PredictionDrift: the {what} has no column {col!r}")
        frame = frame.copy(deep=False)  # only the column labels change: no data copy
        frame.columns = [str(c) for c in frame.columns]
        return frame[[col]]


# ---- performance with labels -------------------------------------------------------------------------------
def _metric(metric: str, y: np.ndarray, pred: np.ndarray, positive: float) -> float:
    if len(y) == 0:
        return math.nan
    if metric == "accuracy":
        return float(np.mean(y == pred))
    if metric == "f1":
        tp = float(np.sum((pred == positive) & (y == positive)))
        fp = float(np.sum((pred == positive) & (y != positive)))
        fn = float(np.sum((pred != positive) & (y == positive)))
        return 2 * tp / (2 * tp + fp + fn) if tp + fp + fn > 0 else 1.0
    if metric == "auc":
        pos, neg = pred[y == positive], np.sort(pred[y != positive])
        if len(pos) == 0 or len(neg) == 0:
            return math.nan
        lo = np.searchsorted(neg, pos, side="left")
        hi = np.searchsorted(neg, pos, side="right")
        return float(np.sum(lo + 0.5 * (hi - lo)) / (len(pos) * len(neg)))
    if metric == "rmse":
        return float(np.sqrt(np.mean((y - pred) ** 2)))
    return float(np.mean(np.abs(y - pred)))


class PerformanceDriftParams(DriftParams):
    """Parameters of :class:`PerformanceDrift`."""

    label: str = Field("label", description="column with the true label / target")
    prediction: str = Field("prediction", description="column with the prediction (a score for auc)")
    metric: Metric = "accuracy"
    positive: float = Field(1.0, description="positive class for f1 and auc")
    min_drop: float = Field(0.02, ge=0.0, description="smallest worsening of the metric worth an alert")
    confidence: float = Field(0.95, gt=0.5, lt=1.0, description="bootstrap confidence of the drop")
    n_bootstrap: int = Field(500, ge=50, le=20_000, description="bootstrap resamples")


class PerformanceDrift(DriftDetector):
    """Model performance against the reference, with a bootstrap confidence interval of the drop.

    Alerts when the drop is at least ``min_drop`` **and** the lower confidence bound of the drop is above
    zero, i.e. the window is confidently worse, not just noisy.

    >>> import numpy as np, pandas as pd
    >>> rng = np.random.default_rng(1)
    >>> y = rng.integers(0, 2, 3000)
    >>> good = np.where(rng.random(3000) < 0.9, y, 1 - y)
    >>> det = PerformanceDrift().fit(pd.DataFrame({"label": y[:2000], "prediction": good[:2000]}))
    >>> det.test(pd.DataFrame({"label": y[2000:], "prediction": good[2000:]})).drift
    False
    >>> bad = np.where(rng.random(1000) < 0.75, y[2000:], 1 - y[2000:])
    >>> det.test(pd.DataFrame({"label": y[2000:], "prediction": bad})).drift
    True
    """

    Params = PerformanceDriftParams
    name: ClassVar[str] = "performance"
    check_part: ClassVar[str] = "performance_drift"

    def _xy(self, frame: pd.DataFrame, what: str) -> tuple[np.ndarray, np.ndarray]:
        p: Any = self.params
        for c in (p.label, p.prediction):
            if c not in frame.columns:
                raise DetectorError(f"PerformanceDrift: the {what} has no column {c!r}")
        y = pd.to_numeric(frame[p.label], errors="coerce").to_numpy(dtype=float, na_value=np.nan)
        pred = pd.to_numeric(frame[p.prediction], errors="coerce").to_numpy(dtype=float, na_value=np.nan)
        ok = np.isfinite(y) & np.isfinite(pred)
        return y[ok], pred[ok]

    def _select(self, frame: pd.DataFrame, what: str) -> pd.DataFrame:
        frame = frame.copy(deep=False)  # only the column labels change: no data copy
        frame.columns = [str(c) for c in frame.columns]
        return frame

    def _fit(self, reference: pd.DataFrame) -> None:
        p: Any = self.params
        self.y_ref_, self.pred_ref_ = self._xy(reference, "reference")
        if len(self.y_ref_) == 0:
            raise DetectorError("PerformanceDrift: the reference has no labelled row")
        self.reference_metric_ = _metric(p.metric, self.y_ref_, self.pred_ref_, p.positive)

    def _test(self, current: pd.DataFrame) -> DriftResult:
        p: Any = self.params
        y, pred = self._xy(current, "current")
        if len(y) == 0:
            return DriftResult(False, "no labelled rows in the window: nothing to test", {}, None, {"n_current": 0})
        cur = _metric(p.metric, y, pred, p.positive)
        sign = -1.0 if p.metric in _LOWER_IS_BETTER else 1.0
        drop = sign * (self.reference_metric_ - cur)
        rng = np.random.default_rng(self._seed())
        n, m = len(self.y_ref_), len(y)
        drops = np.empty(p.n_bootstrap)
        for b in range(p.n_bootstrap):
            ir, ic = rng.integers(0, n, n), rng.integers(0, m, m)
            ref_b = _metric(p.metric, self.y_ref_[ir], self.pred_ref_[ir], p.positive)
            drops[b] = sign * (ref_b - _metric(p.metric, y[ic], pred[ic], p.positive))
        drops = drops[np.isfinite(drops)]
        lo, hi = np.quantile(drops, [1 - p.confidence, p.confidence]) if len(drops) else (math.nan, math.nan)
        p_value = float((1 + np.sum(drops <= 0)) / (1 + len(drops))) if len(drops) else None
        drift = bool(math.isfinite(drop) and drop >= p.min_drop and lo > 0)
        col = ColumnDrift(
            p.metric,
            "bootstrap",
            cur,
            p_value,
            drop,
            drift,
            {
                "reference": self.reference_metric_,
                "current": cur,
                "drop_lower": float(lo),
                "drop_upper": float(hi),
                "confidence": p.confidence,
                "n_current": m,
            },
        )
        verdict = "performance drop" if drift else "no performance drop"
        summary = (
            f"{verdict}: {p.metric} {cur:.4g} vs reference {self.reference_metric_:.4g} "
            f"(drop {drop:+.4g}, {int(p.confidence * 100)}% lower bound {float(lo):+.4g})"
        )
        return DriftResult(drift, summary, {p.metric: col}, p_value, {"n_current": m})


# ---- label-free performance estimation --------------------------------------------------------------------
class CBPEParams(DriftParams):
    """Parameters of :class:`CBPE`."""

    score: str = Field("score", description="predicted probability of the positive class (binary classifier)")
    scores: list[str] | None = Field(
        None,
        description="multiclass: one predicted-probability column per class (the label is the class's column "
        "name or position); the prediction is the most probable class; replaces `score` and `threshold`",
    )
    label: str = Field("label", description="true label, needed in the reference only")
    threshold: float = Field(0.5, gt=0.0, lt=1.0, description="decision threshold of the classifier")
    min_drop: float = Field(0.03, ge=0.0, le=1.0, description="estimated accuracy drop worth an alert")
    confidence: float = Field(0.95, gt=0.5, lt=1.0, description="level of the interval of the estimated accuracy")
    n_bootstrap: int = Field(
        100, ge=0, le=2_000, description="reference resamples measuring the calibration's own uncertainty (0: off)"
    )


_Calibrator = tuple[np.ndarray, np.ndarray]  # isotonic step function: x and y thresholds, for np.interp


def _isotonic(x: np.ndarray, y: np.ndarray) -> _Calibrator:
    from sklearn.isotonic import IsotonicRegression

    iso = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(x, y)
    return np.asarray(iso.X_thresholds_, dtype=float), np.asarray(iso.y_thresholds_, dtype=float)


def _label_keys(values: pd.Series) -> np.ndarray:
    """Labels as strings, integral numbers without a decimal part (so 2, 2.0 and "2" are the same class)."""
    keys: np.ndarray = values.astype(str).to_numpy(dtype=object)
    num = pd.to_numeric(values, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    whole = np.isfinite(num) & (num == np.round(num))
    keys[whole] = [str(int(v)) for v in num[whole]]
    keys[values.isna().to_numpy()] = None
    return keys


class CBPE(DriftDetector):
    """Label-free accuracy estimate of a probabilistic classifier (confidence-based), with an interval.

    The labelled reference calibrates the model's *confidence* (the probability of the predicted class) to
    the probability that the prediction is right, by isotonic regression of "correct" (0/1) on the confidence:
    one calibrator for both predicted classes of a binary model at threshold 0.5 (and for all classes of a
    multiclass model, ``scores``), one per predicted class at another threshold. In a window without labels,
    prediction *i* is right with its calibrated probability q_i, so the expected accuracy is mean(q_i).

    The interval (``accuracy_lower`` .. ``accuracy_upper`` at ``confidence``) is where the accuracy realised
    on the window's rows should fall: the Poisson-binomial sampling sd sqrt(sum q_i (1 - q_i)) / n plus the
    calibration's own uncertainty (the spread of the estimate over ``n_bootstrap`` calibrators refitted on
    resamples of the reference), added in quadrature. ``reference_estimate`` is the cross-fitted (5-fold)
    estimate on the reference rows, to compare with their realised accuracy.

    Valid under covariate shift when the confidence-to-correctness map stays right (the model's confidence
    means the same thing in the shifted region), not under concept drift: that needs labels
    (:class:`PerformanceDrift`). The drop alert compares the estimate with the reference's realised accuracy,
    significant against the sampling sd.

    >>> import numpy as np, pandas as pd
    >>> rng = np.random.default_rng(2)
    >>> s = rng.random(3000); y = (rng.random(3000) < s).astype(int)
    >>> det = CBPE().fit(pd.DataFrame({"score": s[:2000], "label": y[:2000]}))
    >>> res = det.test(pd.DataFrame({"score": s[2000:]}))
    >>> bool(abs(res.details["estimated_accuracy"] - np.mean((s[2000:] >= 0.5) == y[2000:])) < 0.03)
    True
    >>> bool(res.details["accuracy_lower"] < res.details["estimated_accuracy"] < res.details["accuracy_upper"])
    True
    """

    Params = CBPEParams
    name: ClassVar[str] = "cbpe"
    check_part: ClassVar[str] = "estimated_performance"
    _FOLDS: ClassVar[int] = 5

    def _select(self, frame: pd.DataFrame, what: str) -> pd.DataFrame:
        frame = frame.copy(deep=False)  # only the column labels change: no data copy
        frame.columns = [str(c) for c in frame.columns]
        return frame

    def _pooled(self) -> bool:
        p: Any = self.params
        return bool(p.scores) or p.threshold == 0.5

    def _confidence(self, frame: pd.DataFrame, what: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per row: confidence, calibration group (0 pooled; else the predicted class), predicted class."""
        p: Any = self.params
        missing = [c for c in (p.scores or [p.score]) if c not in frame.columns]
        if missing:
            raise DetectorError(f"CBPE: the {what} has no column(s) {', '.join(map(repr, missing))}")
        if p.scores:
            cols = [pd.to_numeric(frame[c], errors="coerce").to_numpy(dtype=float, na_value=np.nan) for c in p.scores]
            probs = np.column_stack(cols)
            ok = np.all(np.isfinite(probs), axis=1)
            pred = np.full(len(frame), -1)
            pred[ok] = np.argmax(probs[ok], axis=1)
            conf = np.where(ok, np.max(np.where(np.isfinite(probs), probs, -np.inf), axis=1), np.nan)
            return conf, np.zeros(len(frame), dtype=int), pred
        s = pd.to_numeric(frame[p.score], errors="coerce").to_numpy(dtype=float, na_value=np.nan)
        pred = (s >= p.threshold).astype(int)
        conf = np.where(pred == 1, s, 1.0 - s)
        group = np.zeros(len(s), dtype=int) if self._pooled() else pred
        return conf, group, pred

    def _correct(self, frame: pd.DataFrame, pred: np.ndarray) -> np.ndarray:
        """1.0 where the prediction matches the label, 0.0 where not, NaN without a label."""
        p: Any = self.params
        if p.scores:
            keys = _label_keys(frame[p.label])
            hit = np.array(
                [k is not None and k in (str(j), p.scores[j]) for k, j in zip(keys, pred, strict=True)], dtype=float
            )
            return np.where(pd.isna(keys), np.nan, hit)
        y = pd.to_numeric(frame[p.label], errors="coerce").to_numpy(dtype=float, na_value=np.nan)
        return np.where(np.isfinite(y), (pred == 1) == (y == 1), np.nan)

    @staticmethod
    def _fit_groups(conf: np.ndarray, group: np.ndarray, correct: np.ndarray) -> dict[int, _Calibrator]:
        fitted = {-1: _isotonic(conf, correct)}  # -1: every row, for a group too small to calibrate alone
        for g in np.unique(group):
            rows = group == g
            if rows.all():
                fitted[int(g)] = fitted[-1]
            elif rows.sum() >= 10 and len(np.unique(correct[rows])) > 1:
                fitted[int(g)] = _isotonic(conf[rows], correct[rows])
            elif rows.sum() >= 10:
                fitted[int(g)] = (np.array([0.0, 1.0]), np.full(2, float(correct[rows][0])))
        return fitted

    @staticmethod
    def _apply(cal: dict[int, _Calibrator], conf: np.ndarray, group: np.ndarray) -> np.ndarray:
        q = np.empty(len(conf))
        for g in np.unique(group):
            rows = group == g
            xs, ys = cal.get(int(g), cal[-1])
            q[rows] = np.interp(conf[rows], xs, ys)
        return q

    def _fit(self, reference: pd.DataFrame) -> None:
        p: Any = self.params
        if p.label not in reference.columns:
            raise DetectorError(f"CBPE: the reference needs the label column {p.label!r}")
        conf, group, pred = self._confidence(reference, "reference")
        correct = self._correct(reference, pred)
        ok = np.isfinite(conf) & np.isfinite(correct)
        if ok.sum() < 10:
            raise DetectorError("CBPE: the reference needs at least 10 rows with a score and a label")
        conf, group, correct = conf[ok], group[ok], correct[ok]
        self.calibrators_ = self._fit_groups(conf, group, correct)
        self.reference_accuracy_ = float(np.mean(correct))
        rng = np.random.default_rng(self._seed())
        n = len(conf)
        # cross-fitted estimate on the reference: every row calibrated by a fit that never saw it
        folds = rng.permutation(n) % self._FOLDS
        held = np.empty(n)
        for f in range(self._FOLDS):
            out = folds == f
            held[out] = self._apply(self._fit_groups(conf[~out], group[~out], correct[~out]), conf[out], group[out])
        self.reference_estimate_ = float(np.mean(held))
        self.bootstrap_calibrators_ = []
        for _ in range(p.n_bootstrap):
            i = rng.integers(0, n, n)
            self.bootstrap_calibrators_.append(self._fit_groups(conf[i], group[i], correct[i]))

    def _estimate(self, conf: np.ndarray, group: np.ndarray) -> tuple[float, float, float]:
        """Estimated accuracy, its sampling sd (Poisson-binomial) and the calibration's sd."""
        q = self._apply(self.calibrators_, conf, group)
        sampling = float(math.sqrt(np.sum(q * (1 - q))) / len(q))
        boot = [float(np.mean(self._apply(c, conf, group))) for c in self.bootstrap_calibrators_]
        calibration = float(np.std(boot, ddof=1)) if len(boot) > 1 else 0.0
        return float(np.mean(q)), sampling, calibration

    def _test(self, current: pd.DataFrame) -> DriftResult:
        p: Any = self.params
        conf, group, _ = self._confidence(current, "current")
        ok = np.isfinite(conf)
        if not ok.any():
            return DriftResult(False, "no scores in the window: nothing to estimate", {}, None, {"n_current": 0})
        est, sampling, calibration = self._estimate(conf[ok], group[ok])
        se = math.sqrt(sampling**2 + calibration**2)
        half = float(special.ndtri(0.5 + p.confidence / 2)) * se
        lower, upper = max(0.0, est - half), min(1.0, est + half)
        drop = self.reference_accuracy_ - est
        z = drop / sampling if sampling > 0 else (math.inf if drop > 0 else 0.0)
        p_value = float(special.ndtr(-z)) if math.isfinite(z) else 0.0
        drift = bool(drop >= p.min_drop and p_value < p.alpha)
        stats = {
            "estimated_accuracy": est,
            "accuracy_lower": lower,
            "accuracy_upper": upper,
            "confidence": p.confidence,
            "standard_error": se,
            "sampling_standard_error": sampling,
            "calibration_standard_error": calibration,
            "n_current": int(ok.sum()),
        }
        col = ColumnDrift(
            "accuracy",
            "cbpe",
            est,
            p_value,
            drop,
            drift,
            {
                "reference_accuracy": self.reference_accuracy_,
                "reference_estimate": self.reference_estimate_,
                **stats,
            },
        )
        summary = (
            f"{'estimated accuracy drop' if drift else 'no estimated drop'}: accuracy ~{est:.3f} "
            f"({round(p.confidence * 100)}% interval {lower:.3f}-{upper:.3f}) vs reference "
            f"{self.reference_accuracy_:.3f}, without labels"
        )
        return DriftResult(drift, summary, {"accuracy": col}, p_value, stats)


# ---- segment / fairness gap -------------------------------------------------------------------------------
class SegmentGapParams(DriftParams):
    """Parameters of :class:`SegmentGap`."""

    segment: str = Field("segment", description="sensitive or business column whose values are the segments")
    prediction: str = Field("prediction", description="predicted class (0/1)")
    label: str | None = Field(None, description="true label; with it the metric is accuracy, else positive rate")
    min_rows: int = Field(30, ge=5, description="segments with fewer rows in a window are not compared")
    min_widening: float = Field(0.05, ge=0.0, le=1.0, description="widening of the gap worth an alert")


class SegmentGap(DriftDetector):
    """Gap between the best and worst segment (positive rate, or accuracy with labels) widening.

    Alerts when the current gap exceeds the reference gap by ``min_widening`` and a two-proportion test
    says the two extreme segments really differ at ``alpha``.

    >>> import numpy as np, pandas as pd
    >>> rng = np.random.default_rng(3)
    >>> seg = rng.choice(["a", "b"], 4000)
    >>> fair = (rng.random(4000) < 0.4).astype(int)
    >>> det = SegmentGap().fit(pd.DataFrame({"segment": seg[:2000], "prediction": fair[:2000]}))
    >>> det.test(pd.DataFrame({"segment": seg[2000:], "prediction": fair[2000:]})).drift
    False
    >>> biased = np.where(seg[2000:] == "a", rng.random(2000) < 0.55, rng.random(2000) < 0.3).astype(int)
    >>> det.test(pd.DataFrame({"segment": seg[2000:], "prediction": biased})).drift
    True
    """

    Params = SegmentGapParams
    name: ClassVar[str] = "segment_gap"
    check_part: ClassVar[str] = "segment_gap"

    def _select(self, frame: pd.DataFrame, what: str) -> pd.DataFrame:
        p: Any = self.params
        frame = frame.copy(deep=False)  # only the column labels change: no data copy
        frame.columns = [str(c) for c in frame.columns]
        need = [p.segment, p.prediction] + ([p.label] if p.label else [])
        missing = [c for c in need if c not in frame.columns]
        if missing:
            raise DetectorError(f"SegmentGap: the {what} lacks column(s) {', '.join(missing)}")
        return frame[need]

    def _rates(self, frame: pd.DataFrame) -> dict[str, tuple[float, int]]:
        p: Any = self.params
        pred = pd.to_numeric(frame[p.prediction], errors="coerce")
        hit = (pred == pd.to_numeric(frame[p.label], errors="coerce")) if p.label else (pred == 1)
        ok = pred.notna()
        groups = pd.DataFrame({"seg": frame[p.segment].astype(str), "hit": hit.astype(float)})[ok.to_numpy()]
        agg = groups.groupby("seg")["hit"].agg(["mean", "size"])
        return {str(k): (float(r["mean"]), int(r["size"])) for k, r in agg.iterrows() if r["size"] >= p.min_rows}

    @staticmethod
    def _gap(rates: Mapping[str, tuple[float, int]]) -> tuple[float, str | None, str | None]:
        if len(rates) < 2:
            return 0.0, None, None
        hi = max(rates, key=lambda k: rates[k][0])
        lo = min(rates, key=lambda k: rates[k][0])
        return rates[hi][0] - rates[lo][0], hi, lo

    def _fit(self, reference: pd.DataFrame) -> None:
        self.reference_rates_ = self._rates(reference)
        self.reference_gap_ = self._gap(self.reference_rates_)[0]

    def _test(self, current: pd.DataFrame) -> DriftResult:
        p: Any = self.params
        rates = self._rates(current)
        gap, hi, lo = self._gap(rates)
        what = "accuracy" if p.label else "positive rate"
        if hi is None or lo is None:
            return DriftResult(
                False,
                f"fewer than two segments with {p.min_rows} rows: nothing to compare",
                {},
                None,
                {"segments": {k: v[0] for k, v in rates.items()}},
            )
        (r1, n1), (r2, n2) = rates[hi], rates[lo]
        pooled = (r1 * n1 + r2 * n2) / (n1 + n2)
        se = math.sqrt(max(pooled * (1 - pooled) * (1 / n1 + 1 / n2), 1e-300))
        p_value = float(special.ndtr(-(r1 - r2) / se))
        widening = gap - self.reference_gap_
        drift = bool(widening >= p.min_widening and p_value < p.alpha)
        col = ColumnDrift(
            p.segment,
            "two-proportion",
            gap,
            p_value,
            widening,
            drift,
            {
                "best": hi,
                "worst": lo,
                "reference_gap": self.reference_gap_,
                "segments": {k: {"rate": v[0], "rows": v[1]} for k, v in rates.items()},
            },
        )
        summary = (
            f"{'gap widened' if drift else 'gap stable'}: {what} {hi}={r1:.3f} vs {lo}={r2:.3f} "
            f"(gap {gap:.3f}, reference {self.reference_gap_:.3f}, p={fmt_p(p_value)})"
        )
        return DriftResult(drift, summary, {p.segment: col}, p_value, {"metric": what})


# ---- streaming error-rate change detector -----------------------------------------------------------------
class PageHinkleyScorer(Scorer):
    """Page-Hinkley test for an increase of the mean of a stream (e.g. per-event error 0/1, or a loss).

    ``m_t = sum(x_i - mean_i - delta)``; alarm when ``m_t - min(m) > lambda``. O(1) per point; the score is
    ``(m_t - min m) / lambda`` clipped to [0, 1], so 1 means "changed". After an alarm the test restarts, so
    a persistent change alarms once per ``lambda`` of evidence, not on every point.
    """

    def __init__(self, delta: float = 0.005, threshold: float = 50.0, min_points: int = 30) -> None:
        self.delta, self.threshold, self.min_points = delta, threshold, min_points
        self.n = 0
        self.mean = 0.0
        self.cum = 0.0
        self.cum_min = 0.0

    def update(self, timestamp: float, value: float) -> float:
        self.n += 1
        self.mean += (value - self.mean) / self.n
        self.cum += value - self.mean - self.delta
        self.cum_min = min(self.cum_min, self.cum)
        stat = self.cum - self.cum_min
        if self.n < self.min_points:
            return 0.0
        score = min(1.0, stat / self.threshold)
        if score >= 1.0:
            self.n, self.mean, self.cum, self.cum_min = 0, 0.0, 0.0, 0.0
        return score

    def state_dict(self) -> dict[str, Any]:
        return {"n": self.n, "mean": self.mean, "cum": self.cum, "cum_min": self.cum_min}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.n = int(state.get("n", 0))
        self.mean = float(state.get("mean", 0.0))
        self.cum = float(state.get("cum", 0.0))
        self.cum_min = float(state.get("cum_min", 0.0))


class PageHinkleyParams(SeriesDetectorParams):
    """Parameters of :class:`PageHinkley` (``threshold`` of the base class is the score threshold)."""

    delta: float = Field(0.005, ge=0.0, description="tolerated increase of the mean before evidence accrues")
    ph_lambda: float = Field(50.0, gt=0.0, description="accumulated evidence that is a change")
    min_points: int = Field(30, ge=1, description="points before the first possible alarm")


class PageHinkley(SeriesDetector):
    """Page-Hinkley change detector on error-rate or loss series (per-event labels as they arrive).

    >>> det = PageHinkley(ph_lambda=20.0)
    >>> scorer = det.new_scorer()
    >>> scores = [scorer.update(float(t), 0.05 if t % 20 else 1.0) for t in range(300)]
    >>> max(scores) < 1.0
    True
    >>> scores = [scorer.update(float(t), 1.0 if t % 2 else 0.0) for t in range(300, 400)]
    >>> max(scores)
    1.0
    """

    Params = PageHinkleyParams
    params: PageHinkleyParams
    name: ClassVar[str] = "page_hinkley"
    kind: ClassVar[str] = "performance"

    def new_scorer(self) -> PageHinkleyScorer:
        p = self.params
        return PageHinkleyScorer(delta=p.delta, threshold=p.ph_lambda, min_points=p.min_points)
