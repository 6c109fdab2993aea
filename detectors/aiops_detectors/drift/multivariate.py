"""Multivariate two-sample tests: kernel MMD with a permutation test, and a domain classifier.

Both answer "is the joint distribution different?", which per-column tests cannot when only correlations
change. Both are calibrated without magic thresholds: MMD by permuting the pooled sample (exact p-value up to
the permutation count), the classifier by a train/held-out split (each score comes from a model that never saw
the row) and a rank-sum test of the held-out scores, whose null distribution is known.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import numpy as np
import pandas as pd
from pydantic import Field

from aiops.detection import DriftResult
from aiops.errors import DetectorError

from . import _stats as st
from .base import DriftDetector, DriftParams, fmt_p, numeric_matrix


def _numeric_columns(frame: pd.DataFrame) -> list[str]:
    cols = []
    for c in frame.columns:
        s = frame[c]
        if s.dtype == bool:
            cols.append(str(c))
            continue
        num = pd.to_numeric(s, errors="coerce")
        if s.notna().sum() and num.notna().sum() >= 0.99 * s.notna().sum():
            cols.append(str(c))
    return cols


class MultivariateDriftParams(DriftParams):
    """What the tests of the joint distribution share: one decision per window, so one false-alarm rate."""

    alpha: float = Field(0.01, gt=0.0, lt=1.0, description="false-alarm probability per window")


class _MultivariateDrift(DriftDetector):
    """A test of the joint distribution of the columns: its findings are ``multivariate_drift``."""

    check_part: ClassVar[str] = "multivariate_drift"


class MMDDriftParams(MultivariateDriftParams):
    """Parameters of :class:`MMDDrift`."""

    n_permutations: int = Field(499, ge=19, le=100_000, description="permutations of the pooled sample")
    n_features: int = Field(128, ge=8, le=4096, description="random Fourier features approximating the kernel")
    max_test_reference_rows: int = Field(1000, ge=50, description="reference rows in each permutation test")
    min_mmd: float = Field(0.0, ge=0.0, description="floor on the MMD^2 estimate (effect size)")


class MMDDrift(_MultivariateDrift):
    """Maximum mean discrepancy (Gaussian kernel, median bandwidth) with a permutation test.

    The kernel is approximated by random Fourier features so a permutation costs one matrix product and
    the whole test O(permutations x rows x features); numeric columns only (standardised with the reference
    scale, missing values imputed with the reference median).

    >>> import numpy as np, pandas as pd
    >>> rng = np.random.default_rng(3)
    >>> cov = [[1, 0.9], [0.9, 1]]
    >>> det = MMDDrift().fit(pd.DataFrame(rng.multivariate_normal([0, 0], cov, 1000), columns=["a", "b"]))
    >>> det.test(pd.DataFrame(rng.multivariate_normal([0, 0], cov, 400), columns=["a", "b"])).drift
    False
    >>> flipped = [[1, -0.9], [-0.9, 1]]  # same marginals, opposite correlation
    >>> det.test(pd.DataFrame(rng.multivariate_normal([0, 0], flipped, 400), columns=["a", "b"])).drift
    True
    """

    Params = MMDDriftParams
    name: ClassVar[str] = "mmd"

    def _fit(self, reference: pd.DataFrame) -> None:
        p: Any = self.params
        self.numeric_columns_ = _numeric_columns(reference)
        if not self.numeric_columns_:
            raise DetectorError("MMDDrift: the reference has no numeric column")
        x = numeric_matrix(reference, self.numeric_columns_)
        fill = np.nanmedian(np.where(np.isnan(x).all(axis=0), 0.0, x), axis=0)
        self.fill_ = np.where(np.isfinite(fill), fill, 0.0)
        x = np.where(np.isnan(x), self.fill_, x)
        self.mean_ = x.mean(axis=0)
        sd = x.std(axis=0)
        self.scale_ = np.where(sd > 0, sd, 1.0)
        z = (x - self.mean_) / self.scale_
        rng = np.random.default_rng(self._seed())
        sub = z[rng.choice(len(z), min(len(z), 500), replace=False)]
        d2 = np.sum((sub[:, None, :] - sub[None, :, :]) ** 2, axis=-1)
        med = float(np.median(d2[np.triu_indices(len(sub), 1)])) if len(sub) > 1 else 1.0
        self.bandwidth_ = math.sqrt(med / 2.0) if med > 0 else 1.0
        self.omega_ = rng.normal(scale=1.0 / self.bandwidth_, size=(z.shape[1], p.n_features))
        self.phase_ = rng.uniform(0, 2 * math.pi, size=p.n_features)
        keep = rng.choice(len(z), min(len(z), p.max_test_reference_rows), replace=False)
        self.phi_ref_ = self._features(z[np.sort(keep)])

    def _features(self, z: np.ndarray) -> np.ndarray:
        return np.asarray(np.sqrt(2.0 / self.omega_.shape[1]) * np.cos(z @ self.omega_ + self.phase_), dtype=float)

    def _test(self, current: pd.DataFrame) -> DriftResult:
        p: Any = self.params
        x = numeric_matrix(current, self.numeric_columns_)
        x = np.where(np.isnan(x), self.fill_, x)
        phi_cur = self._features((x - self.mean_) / self.scale_)
        pooled = np.vstack([self.phi_ref_, phi_cur])
        n, m = len(self.phi_ref_), len(phi_cur)
        w = np.concatenate([np.full(n, -1.0 / n), np.full(m, 1.0 / m)])
        stat = float(np.sum((w @ pooled) ** 2))
        rng = np.random.default_rng(self._seed() + 1)
        exceed = 0
        for start in range(0, p.n_permutations, 256):  # batches bound the memory of the weight matrix
            k = min(256, p.n_permutations - start)
            perm_w = rng.permuted(np.tile(w, (k, 1)), axis=1)
            exceed += int(np.sum(np.sum((perm_w @ pooled) ** 2, axis=1) >= stat))
        pv = (1 + exceed) / (1 + p.n_permutations)
        drift = bool(pv <= p.alpha and stat >= p.min_mmd)
        verdict = "drift" if drift else "no drift"
        summary = (
            f"{verdict}: MMD^2={stat:.3g} over {len(self.numeric_columns_)} numeric columns, "
            f"permutation p={fmt_p(pv)} ({p.n_permutations} permutations, alpha={p.alpha:g})"
        )
        return DriftResult(
            drift,
            summary,
            {},
            pv,
            {"test": "mmd-permutation", "mmd2": stat, "bandwidth": self.bandwidth_, "n_current": m},
        )


class ClassifierDriftParams(MultivariateDriftParams):
    """Parameters of :class:`ClassifierDrift`."""

    max_test_reference_rows: int = Field(2000, ge=50, description="reference rows used against each window")
    max_iter: int = Field(100, ge=10, le=1000, description="boosting iterations of the domain classifier")
    min_auc_change: float = Field(0.02, ge=0.0, le=0.5, description="floor on AUC - 0.5")


class ClassifierDrift(_MultivariateDrift):
    """Domain classifier: can gradient boosting tell current rows from reference rows? (held-out AUC).

    A model trained on half of the reference sample and half of the window scores the other halves; their
    scores are compared by a one-sided rank-sum test, exact under no drift (the held-out labels are then a
    random permutation), so the p-value needs no permutation loop. Missing values are features of their
    own (the booster splits on them), categorical columns are ordinal-coded with unseen values as their own code.

    >>> import numpy as np, pandas as pd
    >>> rng = np.random.default_rng(4)
    >>> ref = pd.DataFrame({"a": rng.normal(size=1000), "b": rng.normal(size=1000)})
    >>> det = ClassifierDrift(max_iter=30).fit(ref)
    >>> det.test(pd.DataFrame({"a": rng.normal(size=400), "b": rng.normal(size=400)})).drift
    False
    >>> det.test(pd.DataFrame({"a": rng.normal(1.0, 1.0, size=400), "b": rng.normal(size=400)})).drift
    True
    """

    Params = ClassifierDriftParams
    name: ClassVar[str] = "classifier"

    def _fit(self, reference: pd.DataFrame) -> None:
        p: Any = self.params
        numeric = set(_numeric_columns(reference))
        self.numeric_columns_ = [c for c in self.columns_ if c in numeric]
        self.categories_ = {
            c: {str(v): i for i, v in enumerate(pd.unique(reference[c].dropna().astype(str)))}
            for c in self.columns_
            if c not in numeric
        }
        rng = np.random.default_rng(self._seed())
        keep = np.sort(rng.choice(len(reference), min(len(reference), p.max_test_reference_rows), replace=False))
        self.x_ref_ = self._encode(reference.iloc[keep])

    def _encode(self, frame: pd.DataFrame) -> np.ndarray:
        parts = [numeric_matrix(frame, self.numeric_columns_)]
        for c, mapping in self.categories_.items():
            col = frame[c] if c in frame.columns else pd.Series([np.nan] * len(frame))
            codes = [np.nan if pd.isna(v) else float(mapping.get(str(v), len(mapping))) for v in col.tolist()]
            parts.append(np.asarray(codes, dtype=float)[:, None])
        return np.hstack(parts)

    def _test(self, current: pd.DataFrame) -> DriftResult:
        from sklearn.ensemble import HistGradientBoostingClassifier

        p: Any = self.params
        x_cur = self._encode(current)
        if len(x_cur) < 20:
            return DriftResult(
                False,
                f"window of {len(x_cur)} rows is too small for a classifier test",
                {},
                None,
                {"n_current": len(x_cur)},
            )
        rng = np.random.default_rng(self._seed())
        # one random half of each sample trains, the other half is scored: conditional on the training half,
        # the held-out labels are a random permutation under no drift, so the rank-sum p-value is exact
        ref_idx, cur_idx = rng.permutation(len(self.x_ref_)), rng.permutation(len(x_cur))
        hr, hc = len(ref_idx) // 2, len(cur_idx) // 2
        x_train = np.vstack([self.x_ref_[ref_idx[:hr]], x_cur[cur_idx[:hc]]])
        y_train = np.concatenate([np.zeros(hr), np.ones(hc)])
        n_cat = len(self.categories_)
        cat_mask = [False] * len(self.numeric_columns_) + [True] * n_cat
        model = HistGradientBoostingClassifier(
            max_iter=p.max_iter,
            learning_rate=0.1,
            max_leaf_nodes=15,
            early_stopping=False,
            random_state=self._seed(),  # no class weights: AUC is rank-based, and weights cost 20x
            categorical_features=cat_mask if n_cat else None,
        )
        model.fit(x_train, y_train)
        ref_s = model.predict_proba(self.x_ref_[ref_idx[hr:]])[:, 1]
        cur_s = model.predict_proba(x_cur[cur_idx[hc:]])[:, 1]
        auc, pv = st.one_sided_rank_sum(ref_s, cur_s)
        drift = bool(pv <= p.alpha and auc - 0.5 >= p.min_auc_change)
        summary = (
            f"{'drift' if drift else 'no drift'}: domain classifier held-out AUC={auc:.3f} "
            f"(p={fmt_p(pv)}, alpha={p.alpha:g})"
        )
        return DriftResult(drift, summary, {}, pv, {"test": "domain-classifier", "auc": auc, "n_current": len(x_cur)})
