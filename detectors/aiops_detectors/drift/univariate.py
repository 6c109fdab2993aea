"""Classic per-column detectors: Kolmogorov-Smirnov with Bonferroni, and the industry PSI rule.

They are here as simple, well-known baselines that share aiops's column typing and stored reference
profiles; :class:`~aiops_detectors.drift.tabular.TabularDrift` (entry point ``drift``) is the one to use,
because neither of these sees missing values, added noise or multivariate shifts.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import pandas as pd
from pydantic import Field

from aiops.detection import ColumnDrift, DriftResult

from . import _stats as st
from .base import DriftDetector, DriftParams
from .tabular import TabularDrift, _Categorical, _key, _Numeric, _Signal


class KSDriftParams(DriftParams):
    """Parameters of :class:`KSDrift`."""

    alpha: float = Field(0.01, gt=0.0, lt=1.0, description="family-wise false-alarm probability per window")
    min_shift: float = Field(0.0, ge=0.0, description="Wasserstein-1 floor, in reference standard deviations")
    min_js: float = Field(0.0, ge=0.0, le=1.0, description="Jensen-Shannon distance floor (categorical)")
    max_categories: int = Field(2, ge=2, description="numeric columns with at most this many values are categorical")


class KSDrift(TabularDrift):
    """Two-sample Kolmogorov-Smirnov per numeric column, chi-square per categorical one, Bonferroni.

    The textbook detector (what alibi-detect's TabularDrift does), kept as a baseline: missing values are
    dropped, so it cannot see a column going empty.

    >>> import numpy as np, pandas as pd
    >>> rng = np.random.default_rng(1)
    >>> det = KSDrift().fit(pd.DataFrame({"x": rng.normal(size=1000)}))
    >>> det.test(pd.DataFrame({"x": rng.normal(size=300)})).drift
    False
    >>> det.test(pd.DataFrame({"x": rng.normal(1.0, 1.0, size=300)})).drifted_columns
    ['x']
    """

    Params = KSDriftParams
    name: ClassVar[str] = "ks"

    def _fit_multivariate(self, reference: pd.DataFrame) -> None:
        self.mv_columns_ = []
        self.mv_calib_ = None

    def _column_signals(self, c: str, s: pd.Series) -> list[_Signal]:
        p: Any = self.params
        if c in self.numeric_:
            prof = self.numeric_[c]
            x = self._finite_sorted(c, s)[0]
            if len(x) == 0:
                return []
            d, pv = st.ks_from_sorted(prof.sorted, prof.unique, x, presorted=True)
            w1 = st.wasserstein_from_sorted(prof.sorted, prof.unique, x, presorted=True)
            shift = w1 / prof.std if prof.std > 0 else float(w1 > 0)
            return [_Signal(c, "distribution", "ks", d, pv, 0.0, shift, p.min_shift, {"wasserstein": w1})]
        cat = self.categorical_[c]
        counts = _category_counts(cat, s)
        if counts is None:
            return []
        ref_counts = np.append(cat.counts, 0.0)
        chi2, pv = st.chi2_two_sample(ref_counts, counts)
        js = st.js_distance(ref_counts, counts)
        return [_Signal(c, "distribution", "chi-square", chi2, pv, 0.0, js, p.min_js, {"js": js})]


def _category_counts(prof: _Categorical, s: pd.Series) -> np.ndarray | None:
    """Current counts per reference category, unseen categories in a last extra cell."""
    if prof.numeric:
        num = pd.to_numeric(s, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
        vals = [_key(x) for x in num[np.isfinite(num)]]
    else:
        vals = [_key(x) for x in s[s.notna()].tolist()]
    if not vals:
        return None
    counts = np.zeros(len(prof.categories) + 1)
    for k, cnt in pd.Series(vals, dtype=object).value_counts().items():
        counts[prof.index.get(str(k), len(prof.categories))] += cnt
    return counts


class PSIDriftParams(DriftParams):
    """Parameters of :class:`PSIDrift`."""

    threshold: float = Field(0.2, gt=0.0, description="PSI above which a column has drifted (0.1 minor, 0.2 major)")
    max_missing_change: float = Field(0.05, ge=0.0, le=1.0, description="rise of missing share that is drift")


class PSIDrift(DriftDetector):
    """Population Stability Index per column (reference deciles or categories) above a threshold.

    The credit-scoring rule of thumb (PSI > 0.2: major shift), plus a rise of the missing share. It has no
    p-value, so on small windows its false-alarm rate depends on the window size; it is a baseline.

    >>> import numpy as np, pandas as pd
    >>> rng = np.random.default_rng(2)
    >>> det = PSIDrift().fit(pd.DataFrame({"x": rng.normal(size=2000)}))
    >>> det.test(pd.DataFrame({"x": rng.normal(size=1000)})).drift
    False
    >>> det.test(pd.DataFrame({"x": rng.normal(1.0, 1.0, size=1000)})).drift
    True
    """

    Params = PSIDriftParams
    name: ClassVar[str] = "psi"

    def _fit(self, reference: pd.DataFrame) -> None:
        profiler = TabularDrift(multivariate=False, max_reference_rows=max(len(reference), 10))
        profiler.fit(reference)
        self.numeric_: dict[str, _Numeric] = profiler.numeric_
        self.categorical_: dict[str, _Categorical] = profiler.categorical_

    def _test(self, current: pd.DataFrame) -> DriftResult:
        p: Any = self.params
        columns: dict[str, ColumnDrift] = {}
        for c in self.columns_:
            if c not in current.columns:
                columns[c] = ColumnDrift(c, "schema", 1.0, None, 1.0, True, {"reason": "column absent from current"})
                continue
            s = current[c]
            miss_cur = float(s.isna().mean()) if len(s) else 0.0
            if c in self.numeric_:
                prof = self.numeric_[c]
                v = pd.to_numeric(s, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
                x = v[np.isfinite(v)]
                miss_cur = 1.0 - len(x) / max(len(v), 1)
                miss_ref = prof.n_missing / max(prof.n_rows, 1)
                props = np.bincount(
                    np.searchsorted(prof.psi_edges, x, side="right"), minlength=len(prof.psi_edges) + 1
                ) / max(len(x), 1)
                value = st.psi(prof.psi_props, props) if len(x) else 0.0
            else:
                cat = self.categorical_[c]
                miss_ref = cat.n_missing / max(cat.n_rows, 1)
                counts = _category_counts(cat, s)
                ref_counts = np.append(cat.counts, 0.0)
                value = 0.0 if counts is None else st.psi(ref_counts / ref_counts.sum(), counts / counts.sum())
            change = miss_cur - miss_ref
            drifted = value > p.threshold or change > p.max_missing_change
            columns[c] = ColumnDrift(
                c, "psi", value, None, value, drifted, {"missing_reference": miss_ref, "missing_current": miss_cur}
            )
        drifted_cols = [col for col in columns.values() if col.drift]
        if drifted_cols:
            parts = ", ".join(f"{c.column} (PSI={c.statistic:.3g})" for c in drifted_cols[:5])
            summary = f"drift in {len(drifted_cols)} of {len(columns)} columns: {parts}"
        else:
            worst = max(columns.values(), key=lambda c: c.statistic, default=None)
            summary = f"no drift: largest PSI {worst.statistic:.3g} ({worst.column})" if worst else "no drift"
        return DriftResult(bool(drifted_cols), summary, columns, None, {"threshold": p.threshold})
