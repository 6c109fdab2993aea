"""alibi-detect drift detectors behind aiops's drift contract (optional extra ``aiops[alibi]``).

alibi-detect is imported lazily inside ``fit``: without it, ``aiops plugins`` still lists these detectors
and only using one raises :class:`~aiops.errors.DetectorError` with the install hint. Licence: alibi-detect
0.11.5 and later are under the Business Source License 1.1 (see docs/drift.md), which is why the extra is
never installed by default. alibi-detect pins numpy<2, so the extra lives in its own environment
(``scripts/alibi-env.sh`` creates ``.alibi-venv``).

Only alibi's numpy/scipy detectors work without a deep-learning framework; ``alibi_mmd`` needs alibi's
PyTorch or TensorFlow backend and says so when neither is installed.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

import numpy as np
import pandas as pd
from pydantic import Field

from aiops.detection import ColumnDrift, DriftResult
from aiops.errors import DetectorError

from .base import DriftDetector, DriftParams, fmt_p, numeric_matrix

INSTALL_HINT = (
    "alibi-detect is not installed: run scripts/alibi-env.sh (creates .alibi-venv with pip install -e "
    "'.[alibi]'); note alibi-detect >= 0.11.5 is under the Business Source License 1.1"
)


def import_alibi_cd() -> Any:
    """``alibi_detect.cd``, or DetectorError with the install hint."""
    try:
        import alibi_detect.cd as cd
    except ImportError as exc:
        raise DetectorError(f"{INSTALL_HINT} ({exc})") from exc
    return cd


class AlibiParams(DriftParams):
    """Parameters shared by the alibi-detect wrappers (alibi's own defaults)."""

    alpha: float = Field(0.05, gt=0.0, lt=1.0, description="alibi's p_val: significance of the (corrected) test")
    correction: Literal["bonferroni", "fdr"] = Field("bonferroni", description="alibi's multivariate correction")


class _AlibiDetector(DriftDetector):
    """Common wrapper: encode the table as alibi expects, predict, map p-values back to columns."""

    Params: ClassVar[type[DriftParams]] = AlibiParams
    alibi_class: ClassVar[str] = ""
    test_name: ClassVar[str] = ""
    all_categorical: ClassVar[bool] = False

    def _fit(self, reference: pd.DataFrame) -> None:
        cd = import_alibi_cd()
        self.categorical_: dict[str, dict[str, int]] = {}
        for c in self.columns_:
            s = reference[c]
            num = pd.to_numeric(s, errors="coerce")
            if self.all_categorical or num.notna().sum() < 0.99 * max(int(s.notna().sum()), 1):
                self.categorical_[c] = {str(v): i for i, v in enumerate(pd.unique(s.dropna().astype(str)))}
        x = self._encode(reference, fit=True)
        self.detector_ = self._make(cd, x)

    def _encode(self, frame: pd.DataFrame, fit: bool = False) -> np.ndarray:
        num_cols = [c for c in self.columns_ if c not in self.categorical_]
        out = np.zeros((len(frame), len(self.columns_)), dtype=np.float32)
        x = numeric_matrix(frame, num_cols)
        if fit:
            mean = np.nanmean(np.where(np.isnan(x).all(axis=0), 0.0, x), axis=0)
            self.fill_ = np.where(np.isfinite(mean), mean, 0.0)
        x = np.where(np.isnan(x), self.fill_, x)  # alibi's tests reject NaN: fill with the reference mean
        j = 0
        for i, c in enumerate(self.columns_):
            if c in self.categorical_:
                mapping = self.categorical_[c]
                col = frame[c] if c in frame.columns else pd.Series([None] * len(frame))
                out[:, i] = [len(mapping) if pd.isna(v) else mapping.get(str(v), len(mapping) + 1) for v in col]
            else:
                out[:, i] = x[:, j]
                j += 1
        return out

    def _make(self, cd: Any, x: np.ndarray) -> Any:
        p: Any = self.params
        cls = getattr(cd, self.alibi_class)
        return cls(x, p_val=p.alpha, correction=p.correction)

    def _test(self, current: pd.DataFrame) -> DriftResult:
        p: Any = self.params
        out = self.detector_.predict(
            self._encode(current), drift_type="batch", return_p_val=True, return_distance=True
        )["data"]
        pvals = np.atleast_1d(np.asarray(out["p_val"], dtype=float))
        dist = np.atleast_1d(np.asarray(out["distance"], dtype=float))
        threshold = float(out.get("threshold", p.alpha))
        columns = {}
        for i, c in enumerate(self.columns_):
            pv = float(pvals[i]) if i < len(pvals) else 1.0
            stat = float(dist[i]) if i < len(dist) else 0.0
            test = "chi-square" if c in self.categorical_ else self.test_name
            columns[c] = ColumnDrift(c, test, stat, pv, None, bool(pv < threshold), {"threshold": threshold})
        drift = bool(out["is_drift"])
        drifted = [c for c, col in columns.items() if col.drift]
        summary = (
            f"alibi {self.alibi_class}: drift in {', '.join(drifted[:5]) or 'the batch'}"
            if drift
            else f"alibi {self.alibi_class}: no drift (threshold p<{fmt_p(threshold)})"
        )
        return DriftResult(
            drift,
            summary,
            columns,
            float(np.min(pvals)) if len(pvals) else None,
            {"backend": "alibi-detect", "threshold": threshold},
        )


class AlibiKSDrift(_AlibiDetector):
    """alibi-detect KSDrift: feature-wise Kolmogorov-Smirnov with a Bonferroni/FDR correction.

    >>> import numpy as np, pandas as pd
    >>> det = AlibiKSDrift()
    >>> det.params.alpha
    0.05
    """

    alibi_class = "KSDrift"
    test_name = "ks"
    name: ClassVar[str] = "alibi_ks"


class AlibiCVMDrift(_AlibiDetector):
    """alibi-detect CVMDrift: feature-wise Cramér-von Mises with a Bonferroni/FDR correction.

    >>> AlibiCVMDrift(alpha=0.01).params.alpha
    0.01
    """

    alibi_class = "CVMDrift"
    test_name = "cvm"
    name: ClassVar[str] = "alibi_cvm"


class AlibiTabularDrift(_AlibiDetector):
    """alibi-detect TabularDrift: KS for numeric, chi-square for categorical columns, corrected.

    >>> AlibiTabularDrift().params.correction
    'bonferroni'
    """

    alibi_class = "TabularDrift"
    test_name = "ks"
    name: ClassVar[str] = "alibi_tabular"

    def _make(self, cd: Any, x: np.ndarray) -> Any:
        p: Any = self.params
        cats = {i: None for i, c in enumerate(self.columns_) if c in self.categorical_}
        return cd.TabularDrift(x, p_val=p.alpha, correction=p.correction, categories_per_feature=cats or None)


class AlibiChiSquareDrift(_AlibiDetector):
    """alibi-detect ChiSquareDrift: every column treated as categorical, chi-square per column.

    >>> AlibiChiSquareDrift().name
    'alibi_chisquare'
    """

    alibi_class = "ChiSquareDrift"
    test_name = "chi-square"
    all_categorical = True
    name: ClassVar[str] = "alibi_chisquare"

    def _make(self, cd: Any, x: np.ndarray) -> Any:
        p: Any = self.params
        return cd.ChiSquareDrift(x, p_val=p.alpha, correction=p.correction)


class AlibiMMDParams(DriftParams):
    """Parameters of :class:`AlibiMMDDrift`."""

    alpha: float = Field(0.05, gt=0.0, lt=1.0, description="alibi's p_val")
    backend: Literal["pytorch", "tensorflow", "keops"] = Field("pytorch", description="alibi's MMD backend")
    n_permutations: int = Field(100, ge=10, description="alibi's permutation count")


class AlibiMMDDrift(_AlibiDetector):
    """alibi-detect MMDDrift (needs alibi's PyTorch or TensorFlow backend, not installed by the extra).

    >>> AlibiMMDDrift().params.backend
    'pytorch'
    """

    Params = AlibiMMDParams
    alibi_class = "MMDDrift"
    test_name = "mmd"
    name: ClassVar[str] = "alibi_mmd"

    def _make(self, cd: Any, x: np.ndarray) -> Any:
        p: Any = self.params
        try:
            return cd.MMDDrift(x, backend=p.backend, p_val=p.alpha, n_permutations=p.n_permutations)
        except (ImportError, NotImplementedError) as exc:
            raise DetectorError(
                f"alibi MMDDrift needs the {p.backend} backend (pip install torch, or tensorflow): {exc}"
            ) from exc

    def _test(self, current: pd.DataFrame) -> DriftResult:
        out = self.detector_.predict(self._encode(current), return_p_val=True, return_distance=True)["data"]
        pv = float(out["p_val"])
        drift = bool(out["is_drift"])
        verdict = "drift" if drift else "no drift"
        summary = f"alibi MMDDrift: {verdict} (MMD^2={float(out['distance']):.3g}, p={fmt_p(pv)})"
        return DriftResult(drift, summary, {}, pv, {"backend": "alibi-detect", "mmd2": float(out["distance"])})
