"""aiops's default data-drift detector: per-column tests chosen by type, missingness and novelty as signals
of their own, one multivariate test, a family-wise correction, and effect-size floors.

Why each piece is there:

* **Numeric columns** get three rank tests against the stored, sorted reference: Kolmogorov-Smirnov (any
  change of shape), Mann-Whitney (location) and a rank-sum on absolute deviations from the reference median
  (spread). They are merged per column with the Cauchy combination, whose validity does not depend on how the
  three are correlated, so a column costs one test in the correction, not three.
* **Categorical and binary columns** get a chi-square test of homogeneity (rare categories pooled).
* **Missingness** is tested per column with Fisher's exact test: a column that starts arriving empty is the
  commonest real "drift" and value tests, which drop NaN, cannot see it.
* **Novelty**: the share of current values that occur in neither the reference nor elsewhere in the window.
  Its null distribution is exactly hypergeometric (a permutation test on the pooled sample), so it is
  calibrated on rounded, discrete and resampled data; it sees precision changes, new categories and added
  noise that leave the distribution's shape almost unchanged. On continuous columns it cannot reject and,
  through Tarone's rule, costs nothing.
* **Multivariate**: squared Mahalanobis distances (Ledoit-Wolf covariance fitted on half the reference) of
  the current rows versus the held-out other half, one-sided rank-sum. The two halves make the current and
  calibration scores exchangeable under no drift, so the p-value is exact; it sees broken correlations and
  small shifts spread over many columns that no single column shows.
* **Correction**: Bonferroni over all tests that can reject (Tarone's rule for the discrete ones), so the
  probability of a false alarm in a window is at most ``alpha``.
* **Effect floors**: a test only alerts when its effect is also above a floor (Wasserstein distance in
  reference standard deviations, Jensen-Shannon distance, change of missing or novel share, AUC change), so a
  window of a million rows does not alert on a difference nobody would act on.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import pandas as pd
from pydantic import Field

from aiops.detection import ColumnDrift, DriftResult

from . import _stats as st
from .base import DriftDetector, DriftParams, fmt_p, numeric_matrix


class TabularDriftParams(DriftParams):
    """Parameters of :class:`TabularDrift`."""

    min_shift: float = Field(0.05, ge=0.0, description="Wasserstein-1 floor, in reference standard deviations")
    min_js: float = Field(0.03, ge=0.0, le=1.0, description="Jensen-Shannon distance floor for categorical columns")
    min_missing_change: float = Field(0.01, ge=0.0, le=1.0, description="floor on the change of missing share")
    min_novelty_change: float = Field(0.02, ge=0.0, le=1.0, description="floor on the excess share of unseen values")
    min_auc_change: float = Field(0.02, ge=0.0, le=0.5, description="floor on |AUC - 0.5| of the multivariate test")
    multivariate: bool = Field(True, description="add the Mahalanobis-distance test across numeric columns")
    max_categories: int = Field(2, ge=2, description="numeric columns with at most this many values are categorical")


@dataclass
class _Numeric:
    """What ``fit`` keeps of a numeric column: everything the tests need, so the reference is never re-read."""

    sorted: np.ndarray
    unique: np.ndarray
    counts: np.ndarray
    ties: float
    median: float
    absdev_ties: float
    std: float
    n_missing: int
    n_rows: int
    singletons: int
    psi_edges: np.ndarray
    psi_props: np.ndarray
    cum0: np.ndarray
    absdev_unique: np.ndarray
    absdev_counts: np.ndarray
    absdev_cum0: np.ndarray
    mean: float


@dataclass
class _Categorical:
    """What ``fit`` keeps of a categorical (or binary) column: category counts and the missing count."""

    categories: list[str]
    counts: np.ndarray
    n_missing: int
    n_rows: int
    numeric: bool
    index: dict[str, int] = field(default_factory=dict)


@dataclass
class _Signal:
    """One test of one column (or of all columns, ``column="*"``) before and after the correction."""

    column: str
    signal: str
    test: str
    statistic: float
    p: float
    min_p: float
    effect: float
    floor: float
    details: dict[str, Any] = field(default_factory=dict)
    p_adj: float = 1.0
    drift: bool = False


_MV_HALF_CAP = 5_000


def _key(v: Any) -> str:
    """One spelling per category value, so 1, 1.0 and np.int64(1) are the same category."""
    if isinstance(v, int | float | np.integer | np.floating) and not isinstance(v, bool):
        return repr(float(v))
    return str(v)


class TabularDrift(DriftDetector):
    """Data drift of a table: which columns moved, by how much, how sure; false alarms bounded by ``alpha``.

    >>> import numpy as np, pandas as pd
    >>> rng = np.random.default_rng(0)
    >>> ref = pd.DataFrame({"x": rng.normal(size=2000), "y": rng.choice(["a", "b"], 2000)})
    >>> det = TabularDrift().fit(ref)
    >>> det.test(pd.DataFrame({"x": rng.normal(size=500), "y": rng.choice(["a", "b"], 500)})).drift
    False
    >>> moved = det.test(pd.DataFrame({"x": rng.normal(0.5, 1, 500), "y": rng.choice(["a", "b"], 500)}))
    >>> moved.drift, moved.drifted_columns
    (True, ['x'])
    """

    Params: ClassVar[type[DriftParams]] = TabularDriftParams
    name: ClassVar[str] = "drift"

    # ---- fit ---------------------------------------------------------------------------------------------
    def _fit(self, reference: pd.DataFrame) -> None:
        p: TabularDriftParams = self.params  # type: ignore[assignment]
        self.numeric_: dict[str, _Numeric] = {}
        self.categorical_: dict[str, _Categorical] = {}
        for c in reference.columns:
            s = reference[c]
            num = pd.to_numeric(s, errors="coerce") if s.dtype != bool else None
            non_null = int(s.notna().sum())
            parsed = 0 if num is None else int(num.notna().sum())
            if num is not None and non_null > 0 and parsed >= 0.99 * non_null:
                v = num.to_numpy(dtype=float, na_value=np.nan)
                v = v[np.isfinite(v)]
                if len(np.unique(v)) > p.max_categories:
                    self.numeric_[c] = self._profile_numeric(v, len(s))
                    continue
                self.categorical_[c] = self._profile_categorical([_key(x) for x in v], len(s), numeric=True)
            else:
                vals = [_key(x) for x in s[s.notna()].tolist()]
                self.categorical_[c] = self._profile_categorical(vals, len(s), numeric=False)
        self._fit_multivariate(reference)

    @staticmethod
    def _profile_numeric(v: np.ndarray, n_rows: int) -> _Numeric:
        srt = np.sort(v)
        uniq, counts = np.unique(srt, return_counts=True)
        n = len(srt)
        med = float(0.5 * (srt[(n - 1) // 2] + srt[n // 2])) if n else 0.0  # median of sorted values
        absdev = st.sorted_abs_dev(srt, med)
        ad_unique, ad_counts = np.unique(absdev, return_counts=True)
        edges = np.unique(srt[(np.arange(1, 10) * (len(srt) - 1)) // 10]) if len(srt) else np.array([])
        props = np.bincount(np.searchsorted(edges, srt, side="right"), minlength=len(edges) + 1) / max(len(srt), 1)
        return _Numeric(
            sorted=srt,
            unique=uniq,
            counts=counts,
            ties=st.tie_sum(counts),
            median=med,
            absdev_ties=st.tie_sum(ad_counts),
            std=float(np.std(srt)) if len(srt) else 0.0,
            n_missing=n_rows - len(srt),
            n_rows=n_rows,
            singletons=int(np.sum(counts == 1)),
            psi_edges=edges,
            psi_props=props,
            cum0=np.concatenate([[0], np.cumsum(counts)]),
            absdev_unique=ad_unique,
            absdev_counts=ad_counts,
            absdev_cum0=np.concatenate([[0], np.cumsum(ad_counts)]),
            mean=float(np.mean(srt)) if len(srt) else 0.0,
        )

    @staticmethod
    def _profile_categorical(vals: list[str], n_rows: int, numeric: bool) -> _Categorical:
        counts = pd.Series(vals, dtype=object).value_counts()
        cats = [str(k) for k in counts.index]
        return _Categorical(
            categories=cats,
            counts=counts.to_numpy(dtype=float),
            n_missing=n_rows - len(vals),
            n_rows=n_rows,
            numeric=numeric,
            index={k: i for i, k in enumerate(cats)},
        )

    def _fit_multivariate(self, reference: pd.DataFrame) -> None:
        p: TabularDriftParams = self.params  # type: ignore[assignment]
        cols = list(self.numeric_) + [c for c, prof in self.categorical_.items() if prof.numeric]
        self.mv_columns_: list[str] = cols
        self.mv_calib_: np.ndarray | None = None
        if not p.multivariate or len(cols) < 2 or len(reference) < 100:
            return
        from sklearn.covariance import ledoit_wolf  # heavy import only when used

        x = numeric_matrix(reference, cols)
        self.mv_fill_ = np.nanmedian(np.where(np.isnan(x).all(axis=0), 0.0, x), axis=0)
        self.mv_fill_ = np.where(np.isfinite(self.mv_fill_), self.mv_fill_, 0.0)
        x = np.where(np.isnan(x), self.mv_fill_, x)
        self.mv_mean_ = x.mean(axis=0)
        scale = x.std(axis=0)
        self.mv_scale_ = np.where(scale > 0, scale, 1.0)
        z = (x - self.mv_mean_) / self.mv_scale_
        order = np.random.default_rng(self._seed()).permutation(len(z))
        half = min(len(z) // 2, _MV_HALF_CAP)  # 5 000 rows pin a covariance of <= 100 columns down well
        train, calib = z[order[:half]], z[order[half : 2 * half]]
        cov, _ = ledoit_wolf(train)
        self.mv_center_ = train.mean(axis=0)
        self.mv_precision_ = np.linalg.pinv(cov)
        self.mv_calib_ = self._mahalanobis(calib)

    def _mahalanobis(self, z: np.ndarray) -> np.ndarray:
        d = z - self.mv_center_
        return np.asarray(np.sum((d @ self.mv_precision_) * d, axis=1), dtype=float)

    # ---- test --------------------------------------------------------------------------------------------
    def _test(self, current: pd.DataFrame) -> DriftResult:
        p: TabularDriftParams = self.params  # type: ignore[assignment]
        m = len(current)
        signals: list[_Signal] = []
        schema: dict[str, ColumnDrift] = {}
        for c in self.columns_:
            if c not in current.columns:
                schema[c] = ColumnDrift(c, "schema", 1.0, 0.0, 1.0, True, {"reason": "column absent from current"})
                continue
            signals.extend(self._column_signals(c, current[c]))
        mv = self._multivariate_signal(current, p)
        if mv is not None:
            signals.append(mv)

        k = st.tarone_bonferroni([s.p for s in signals], [s.min_p for s in signals], p.alpha)
        for s in signals:
            s.p_adj = min(1.0, s.p * k)
            s.drift = bool(s.p <= p.alpha / k and s.effect >= s.floor)

        columns: dict[str, ColumnDrift] = {}
        by_col: dict[str, list[_Signal]] = {}
        for s in signals:
            if s.column != "*":
                by_col.setdefault(s.column, []).append(s)
        for c in self.columns_:
            if c in schema:
                columns[c] = schema[c]
                continue
            sigs = by_col.get(c, [])
            if not sigs:
                continue
            drifted = [s for s in sigs if s.drift]
            lead = min(drifted or sigs, key=lambda s: (s.p_adj, -s.effect))
            columns[c] = ColumnDrift(
                column=c,
                test=lead.test,
                statistic=lead.statistic,
                p_value=lead.p_adj,
                effect=lead.effect,
                drift=bool(drifted),
                details={
                    "signal": lead.signal,
                    "reasons": [s.signal for s in drifted],
                    "signals": {
                        s.signal: {
                            "test": s.test,
                            "statistic": s.statistic,
                            "p_value": s.p,
                            "p_adjusted": s.p_adj,
                            "effect": s.effect,
                            "floor": s.floor,
                            "drift": s.drift,
                            **s.details,
                        }
                        for s in sigs
                    },
                },
            )
        drift = any(col.drift for col in columns.values()) or (mv is not None and mv.drift)
        p_min = min([s.p_adj for s in signals], default=1.0)
        if schema:
            p_min = 0.0
        details: dict[str, Any] = {"n_reference": self.n_reference_, "n_current": m, "alpha": p.alpha, "n_tests": k}
        if mv is not None:
            details["multivariate"] = {
                "test": mv.test,
                "statistic": mv.statistic,
                "p_value": mv.p_adj,
                "effect": mv.effect,
                "drift": mv.drift,
                **mv.details,
            }
        return DriftResult(
            drift=drift, summary=self._summary(columns, mv, k, p.alpha), columns=columns, p_value=p_min, details=details
        )

    def _column_signals(self, c: str, s: pd.Series) -> list[_Signal]:
        """Every signal of one column (subclasses narrow this to fewer tests)."""
        p: TabularDriftParams = self.params  # type: ignore[assignment]
        if c in self.numeric_:
            return self._numeric_signals(c, self.numeric_[c], s, p)
        return self._categorical_signals(c, self.categorical_[c], s, p)

    def _numeric_signals(self, c: str, prof: _Numeric, s: pd.Series, p: TabularDriftParams) -> list[_Signal]:
        raw = pd.to_numeric(s, errors="coerce")
        unparseable = int(s.notna().sum() - raw.notna().sum())
        v = raw.to_numpy(dtype=float, na_value=np.nan)
        finite = np.isfinite(v)
        x = v[finite]
        m = len(v)
        out = [self._missing_signal(c, m - len(x), m, prof.n_missing, prof.n_rows, p, unparseable)]
        if len(x) == 0 or len(prof.sorted) == 0:
            return out
        n = len(prof.sorted)
        x = np.sort(x)
        uv, cc = np.unique(x, return_counts=True)  # sorted distinct values: one binary search serves 3 tests
        below, equal = st.locate(prof.unique, prof.counts, prof.cum0, uv)
        d, p_ks = st.ks_located(n, prof.unique, prof.cum0, x, cc, below, equal)
        auc, p_mw = st.rank_sum_located(n, prof.ties, cc, below, equal)
        dev = st.sorted_abs_dev(x, prof.median)
        dv, dc = np.unique(dev, return_counts=True)
        d_below, d_equal = st.locate(prof.absdev_unique, prof.absdev_counts, prof.absdev_cum0, dv)
        sauc, p_sp = st.rank_sum_located(n, prof.absdev_ties, dc, d_below, d_equal)
        w1 = st.wasserstein_quantiles(prof.sorted, x)
        shift = w1 / prof.std if prof.std > 0 else (1.0 if w1 > 0 else 0.0)
        cur_props = np.bincount(
            np.searchsorted(prof.psi_edges, x, side="right"), minlength=len(prof.psi_edges) + 1
        ) / len(x)
        out.append(
            _Signal(
                c,
                "distribution",
                "ks+rank-sum+spread",
                d,
                st.cauchy_combine([p_ks, p_mw, p_sp]),
                0.0,
                shift,
                p.min_shift,
                {
                    "ks": d,
                    "p_ks": p_ks,
                    "auc": auc,
                    "p_location": p_mw,
                    "spread_auc": sauc,
                    "p_spread": p_sp,
                    "wasserstein": w1,
                    "psi": st.psi(prof.psi_props, cur_props),
                    "mean_shift_sd": (float(np.mean(x)) - prof.mean) / prof.std if prof.std > 0 else 0.0,
                },
            )
        )
        out.append(self._novelty_signal(c, cc, equal, prof.singletons, n, p))
        return out

    def _categorical_signals(self, c: str, prof: _Categorical, s: pd.Series, p: TabularDriftParams) -> list[_Signal]:
        m = len(s)
        if prof.numeric:
            num = pd.to_numeric(s, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
            unparseable = int(s.notna().sum() - np.isfinite(num).sum())
            vals = [_key(x) for x in num[np.isfinite(num)]]
        else:
            unparseable = 0
            vals = [_key(x) for x in s[s.notna()].tolist()]
        out = [self._missing_signal(c, m - len(vals), m, prof.n_missing, prof.n_rows, p, unparseable)]
        if not vals or prof.counts.sum() == 0:
            return out
        cur = pd.Series(vals, dtype=object).value_counts()
        cur_counts = np.zeros(len(prof.categories) + 1)
        unseen: dict[str, int] = {}
        for k, cnt in cur.items():
            i = prof.index.get(str(k))
            if i is None:
                cur_counts[-1] += cnt
                unseen[str(k)] = int(cnt)
            else:
                cur_counts[i] += cnt
        ref_counts = np.append(prof.counts, 0.0)
        chi2, p_chi = st.chi2_two_sample(ref_counts, cur_counts)
        js = st.js_distance(ref_counts, cur_counts)
        ref_p, cur_p = ref_counts / ref_counts.sum(), cur_counts / cur_counts.sum()
        top = {
            prof.categories[i]: {"reference": float(ref_p[i]), "current": float(cur_p[i])}
            for i in np.argsort(-np.abs(cur_p - ref_p))[:5]
            if i < len(prof.categories)
        }
        out.append(
            _Signal(
                c,
                "distribution",
                "chi-square",
                chi2,
                p_chi,
                0.0,
                js,
                p.min_js,
                {
                    "js": js,
                    "psi": st.psi(ref_p, cur_p),
                    "categories": top,
                    "unseen": dict(sorted(unseen.items(), key=lambda kv: -kv[1])[:5]),
                },
            )
        )
        cc = cur.to_numpy(dtype=float)
        rc = np.array([prof.counts[prof.index[str(k)]] if str(k) in prof.index else 0.0 for k in cur.index])
        out.append(self._novelty_signal(c, cc, rc, int(np.sum(prof.counts == 1)), int(prof.counts.sum()), p))
        return out

    @staticmethod
    def _missing_signal(
        c: str, k_cur: int, m: int, k_ref: int, n: int, p: TabularDriftParams, unparseable: int
    ) -> _Signal:
        pv = st.fisher_two_sided(k_cur, m, k_ref, n)
        change = k_cur / max(m, 1) - k_ref / max(n, 1)
        return _Signal(
            c,
            "missingness",
            "fisher-exact",
            float(k_cur),
            pv,
            st.fisher_min_p(m, k_cur + k_ref, n),
            abs(change),
            p.min_missing_change,
            {"missing_reference": k_ref / max(n, 1), "missing_current": k_cur / max(m, 1), "unparseable": unparseable},
        )

    @staticmethod
    def _novelty_signal(
        c: str, cur_counts: np.ndarray, ref_counts_of_cur: np.ndarray, singletons: int, n: int, p: TabularDriftParams
    ) -> _Signal:
        """Values unique in the pooled sample that sit in the window: an exact hypergeometric null.

        ``cur_counts[i]`` is how often the i-th distinct current value occurs in the window and
        ``ref_counts_of_cur[i]`` how often in the reference. Under no drift the window is a random subset of
        the pooled rows, so the number of pooled singletons that land in it is hypergeometric.
        """
        m = int(cur_counts.sum())
        novel = int(np.sum((ref_counts_of_cur == 0) & (cur_counts == 1)))
        f1 = novel + singletons - int(np.sum(ref_counts_of_cur == 1))
        big = n + m
        pv = st.hypergeom_upper(novel, big, f1, m)
        min_p = st.hypergeom_upper(min(f1, m), big, f1, m)
        excess = novel / max(m, 1) - f1 / max(big, 1)
        return _Signal(
            c,
            "novelty",
            "pooled-singletons-hypergeometric",
            float(novel),
            pv,
            min_p,
            excess,
            p.min_novelty_change,
            {"novel_share": novel / max(m, 1), "expected_share": f1 / max(big, 1)},
        )

    def _multivariate_signal(self, current: pd.DataFrame, p: TabularDriftParams) -> _Signal | None:
        if self.mv_calib_ is None:
            return None
        x = numeric_matrix(current, self.mv_columns_)
        x = np.where(np.isnan(x), self.mv_fill_, x)
        d2 = self._mahalanobis((x - self.mv_mean_) / self.mv_scale_)
        auc, pv = st.one_sided_rank_sum(self.mv_calib_, d2)
        return _Signal(
            "*",
            "multivariate",
            "mahalanobis-rank-sum",
            auc,
            pv,
            0.0,
            auc - 0.5,
            p.min_auc_change,
            {
                "auc": auc,
                "columns": len(self.mv_columns_),
                "median_d2_reference": float(np.median(self.mv_calib_)),
                "median_d2_current": float(np.median(d2)),
            },
        )

    @staticmethod
    def _summary(columns: dict[str, ColumnDrift], mv: _Signal | None, k: int, alpha: float) -> str:
        drifted = [c for c in columns.values() if c.drift]
        parts = []
        for col in sorted(drifted, key=lambda c: c.p_value or 0.0)[:5]:
            reasons = ", ".join(col.details.get("reasons", [])) or col.test
            parts.append(f"{col.column} ({reasons}; p={fmt_p(col.p_value)}, effect={col.effect:.3g})")
        more = f" and {len(drifted) - 5} more" if len(drifted) > 5 else ""
        head = f"drift in {len(drifted)} of {len(columns)} columns: " + "; ".join(parts) + more if drifted else ""
        if mv is not None and mv.drift:
            tail = f"multivariate shift (Mahalanobis AUC={mv.statistic:.3f}, p={fmt_p(mv.p_adj)})"
            return f"{head}; {tail}" if head else f"drift: {tail}"
        if head:
            return head
        best = min(columns.values(), key=lambda c: c.p_value if c.p_value is not None else 1.0, default=None)
        where = f"; smallest adjusted p={fmt_p(best.p_value)} ({best.column})" if best is not None else ""
        return f"no drift at alpha={alpha:g} over {k} tests{where}"
