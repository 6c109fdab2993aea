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
* **Evidence across windows** (``sequential``): a change-point scan per column over the windows tested since
  the fit (``_sequential.py``) finds small persistent shifts no single window shows, with its own false-alarm
  level for a whole stream of 20 windows (``sequential_alpha``); a window drifts if either part fires. A
  column the others predict well is also scanned given them (``sequential_given``, ``_conditional.py``):
  its residual from that prediction shows a shift of it alone several times more clearly.
* **Effect floors**: a test only alerts when its effect is also above a floor (Wasserstein distance in
  reference standard deviations, Jensen-Shannon distance, change of missing or novel share, AUC change), so a
  window of a million rows does not alert on a difference nobody would act on.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, ClassVar

import numpy as np
import pandas as pd
from pydantic import Field

from aiops.detection import ColumnDrift, DriftResult

from . import _conditional as cond
from . import _stats as st
from ._conditional import ConditionalModel
from ._sequential import Baseline, ShiftAlarm, ShiftScan, StatRow, rate_baseline_rows, scan_pvalue
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
    sequential: bool = Field(
        True, description="also accumulate evidence across windows (small persistent shifts; see docs/drift.md)"
    )
    sequential_alpha: float = Field(
        0.01, gt=0.0, lt=1.0, description="probability that a clean stream of 20 windows raises a sequential alarm"
    )
    sequential_given: bool = Field(
        True, description="the scan also follows each column the others predict, given them (see docs/drift.md)"
    )


@dataclass
class _Numeric:
    """What ``fit`` keeps of a numeric column: everything the tests need, so the reference is never re-read.

    The sorted values and sorted absolute deviations from the median serve the tie-free (continuous) path
    directly; distinct values, their counts and cumulative counts, which only the tie-corrected path needs,
    are derived from them on first use.
    """

    sorted: np.ndarray
    absdev: np.ndarray  # |x - median|, sorted
    ties: float
    median: float
    absdev_ties: float
    std: float
    n_missing: int
    n_rows: int
    singletons: int
    psi_edges: np.ndarray
    psi_props: np.ndarray
    mean: float

    @cached_property
    def _values(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return _unique_counts(self.sorted)

    @cached_property
    def _absdevs(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return _unique_counts(self.absdev)

    @property
    def unique(self) -> np.ndarray:
        return self._values[0]

    @property
    def counts(self) -> np.ndarray:
        return self._values[1]

    @property
    def cum0(self) -> np.ndarray:
        return self._values[2]

    @property
    def absdev_unique(self) -> np.ndarray:
        return self._absdevs[0]

    @property
    def absdev_counts(self) -> np.ndarray:
        return self._absdevs[1]

    @property
    def absdev_cum0(self) -> np.ndarray:
        return self._absdevs[2]


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
_MV_CHUNK = 2_048  # rows per Mahalanobis block: its temporaries stay in cache


def _plain_numeric(s: pd.Series) -> bool:
    """Integer or float dtype (not bool): pd.to_numeric would return it unchanged, so it can skip pandas."""
    return s.dtype.kind in "iuf" and not pd.api.types.is_bool_dtype(s.dtype)


@dataclass
class _Block:
    """The plain numeric columns of a frame as float arrays, and each column sorted, in one pass.

    ``values[j]`` is column j with non-finite values as NaN (the frame's own array, read-only, when it is
    float64 and finite: no copy); ``sorted`` is (columns, rows), each row ascending with the NaN last, so
    that the finite values of column j are ``sorted[j, :n_finite[j]]``. One 2-D sort replaces a sort per
    column, and the multivariate test reads ``values`` instead of converting the frame again. The columns
    are not gathered into one (rows, columns) matrix: that copy of the table cost a 100 000 x 50 check
    more than the sorted copy it was made for, and the tests that want rows take only the rows they use.
    """

    index: dict[str, int]
    values: list[np.ndarray]
    sorted: np.ndarray
    n_finite: np.ndarray

    @classmethod
    def of(cls, frame: pd.DataFrame, columns: list[str]) -> _Block | None:
        cols = [c for c in columns if c in frame.columns and _plain_numeric(frame[c])]
        if not cols:
            return None
        values = [frame[c].to_numpy(dtype=float, na_value=np.nan) for c in cols]  # float64: its own array
        n_finite = np.full(len(cols), len(frame))
        srt = np.empty((len(cols), len(frame)))  # a copy: the caller's frame is never sorted in place
        for j, v in enumerate(values):
            srt[j] = v
        srt.sort(axis=1)
        if len(frame):
            # sorted, a column is all finite when its ends are (NaN sorts last): a check per column, not a pass
            for j in np.flatnonzero(~(np.isfinite(srt[:, 0]) & np.isfinite(srt[:, -1]))).tolist():
                finite = np.isfinite(values[j])
                values[j] = np.where(finite, values[j], np.nan)
                n_finite[j] = int(finite.sum())
                srt[j] = values[j]
                srt[j].sort()
        return cls({c: j for j, c in enumerate(cols)}, values, srt, n_finite)

    def finite_sorted(self, c: str) -> np.ndarray:
        j = self.index[c]
        return self.sorted[j, : int(self.n_finite[j])]

    def column(self, c: str) -> np.ndarray:
        return self.values[self.index[c]]

    def columns_of(self, columns: list[str]) -> list[np.ndarray] | None:
        """The values of ``columns``, in that order; None if one of them is not here."""
        if any(c not in self.index for c in columns):
            return None
        return [self.values[self.index[c]] for c in columns]


def _rows(columns: list[np.ndarray], take: slice | np.ndarray, n_rows: int) -> np.ndarray:
    """The (rows, columns) C-ordered matrix of ``columns`` at rows ``take`` (of ``n_rows``)."""
    if not columns:
        taken = len(range(*take.indices(n_rows))) if isinstance(take, slice) else len(take)
        return np.empty((taken, 0))
    return np.stack([v[take] for v in columns], axis=1)


def _matrix_columns(frame: pd.DataFrame, columns: list[str]) -> list[np.ndarray]:
    """:func:`numeric_matrix`'s columns, for a frame (or columns) the block does not hold."""
    x = numeric_matrix(frame, columns)
    return [x[:, j] for j in range(x.shape[1])]


def _mean_std_in_row_order(v: np.ndarray, buf: np.ndarray) -> tuple[float, float]:
    """Mean and standard deviation of one column, each sum taken in row order (``buf``: scratch of its length).

    These are the floats of ``x.mean(axis=0)`` and ``x.std(axis=0)`` over a C-ordered matrix holding the
    column, which NumPy sums row after row rather than in pairwise blocks; the multivariate test has always
    standardised with them. A running sum of the contiguous column gives them without a transposed copy of
    the table and its temporaries (40 MB each on 100 000 x 50).
    """
    n = len(v)
    mean = np.cumsum(v, out=buf)[-1] / n
    np.subtract(v, mean, out=buf)
    np.multiply(buf, buf, out=buf)
    var = np.cumsum(buf, out=buf)[-1] / n
    return float(mean), float(np.sqrt(var))


def _unique_counts(srt: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Distinct values of a sorted array, their counts, and 0 followed by the cumulative counts."""
    uniq, counts = st.sorted_unique(srt)
    return uniq, counts, np.concatenate([[0], np.cumsum(counts)])


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
    _pending_scan: dict[str, Any] | None = None  # a restored scan waiting for the fit on its reference

    # ---- fit ---------------------------------------------------------------------------------------------
    def _fit(self, reference: pd.DataFrame) -> None:
        p: TabularDriftParams = self.params  # type: ignore[assignment]
        self.numeric_: dict[str, _Numeric] = {}
        self.categorical_: dict[str, _Categorical] = {}
        block = self._block = _Block.of(reference, [str(c) for c in reference.columns])
        try:
            for c in reference.columns:
                if block is not None and c in block.index and self._fit_plain(c, block, len(reference), p):
                    continue
                self._fit_column(c, reference[c], p)
            self._fit_multivariate(reference)
            self._fit_conditional(reference, p)
        finally:
            self._block = None
        self._fit_sequential(p)

    def _fit_conditional(self, reference: pd.DataFrame, p: TabularDriftParams) -> None:
        """Each numeric or binary column given the others (``_conditional.py``), for the scan across windows.

        A numeric column enters by its values; a binary one by its tracked (positive) value, a text one as
        the 0/1 indicator of it. Other categorical columns are left out: their categories would each need a
        statistic, and a column of many categories seldom has one rate the others predict well.
        """
        self.cond_: ConditionalModel | None = None
        self._cond_text: dict[str, str] = {}  # a text binary column -> its positive category
        if not (getattr(p, "sequential", False) and getattr(p, "sequential_given", False)):
            return
        cols: list[str] = []
        srts: list[np.ndarray | None] = []
        positives: list[float] = []
        for c in self.columns_:
            num = self.numeric_.get(c)
            if num is not None and len(num.sorted) > 1:
                cols.append(c)
                srts.append(num.sorted)
                positives.append(np.nan)
                continue
            cat = self.categorical_.get(c)
            tracked = rate_baseline_rows(c, cat.categories, cat.counts) if cat and len(cat.categories) == 2 else []
            if cat is not None and tracked and cat.numeric:
                cols.append(c)
                srts.append(None)
                positives.append(float(tracked[0].label))
            elif tracked:
                self._cond_text[c] = tracked[0].label
        cols += list(self._cond_text)  # text columns last: _cond_rows appends their indicators
        srts += [None] * len(self._cond_text)
        positives += [1.0] * len(self._cond_text)
        if len(cols) < 2:
            return
        rows = self._cond_rows(reference, cols, cond.evenly_spaced(len(reference)))
        self.cond_ = cond.fit_conditional(cond.scoring_of(cols, srts, positives), rows)

    def _cond_rows(self, frame: pd.DataFrame, cols: list[str], take: slice | np.ndarray) -> np.ndarray:
        """The (rows, columns) float values of the model's ``cols`` at rows ``take``: numbers from the block when
        there, a text binary column as 1.0 / 0.0 (its positive category or not), missing as NaN."""
        plain = [c for c in cols if c not in self._cond_text]
        block: _Block | None = getattr(self, "_block", None)
        src = block.columns_of(plain) if block is not None else None
        rows = numeric_matrix(frame.iloc[take], plain) if src is None else _rows(src, take, len(frame))
        if not self._cond_text:
            return rows
        text = []
        for c in cols[len(plain) :]:
            s = frame[c].iloc[take]
            seen = s.notna().to_numpy()
            ind = np.full(len(s), np.nan)
            ind[seen] = [float(_key(v) == self._cond_text[c]) for v in s[seen].tolist()]
            text.append(ind)
        return np.column_stack([rows, *text])

    def _fit_sequential(self, p: TabularDriftParams) -> None:
        """The scan across windows: one location statistic per numeric column, one rate per tracked category.

        A numeric value's statistic is its placement in the reference (the share of reference values below
        it, ties counted half): its reference mean is 1/2 and its variance the tie-corrected 1/12, whatever
        the column's scale or skew, so one rank-based z serves every numeric column.
        """
        self.scan_: ShiftScan | None = None
        self._seq_obs: dict[tuple[str, str], tuple[float, float, float]] = {}
        self._seq_rates: dict[str, list[str]] = {}  # categorical column -> the categories the scan tracks
        if not getattr(p, "sequential", False):
            return
        rows: list[StatRow] = []
        for c in self.columns_:
            num = self.numeric_.get(c)
            if num is not None:
                n = len(num.sorted)
                if n > 1:
                    var = ((n * n - 1.0) - num.ties / n) / (12.0 * n * n)
                    rows.append(StatRow(c, "", "location", 0.5, var, float(n), num.mean, num.std))
                continue
            cat = self.categorical_.get(c)
            if cat is not None:
                for row in rate_baseline_rows(c, cat.categories, cat.counts):
                    rows.append(row)
                    self._seq_rates.setdefault(c, []).append(row.label)
        if not rows:
            return
        model: ConditionalModel | None = getattr(self, "cond_", None)
        if model is not None:  # then each well-predicted column given the others: its residual
            rows += model.stat_rows({c: self._seq_rates[c][0] for c in model.columns if c in self._seq_rates})
        baseline = Baseline.of(rows)
        # the same effect floor as a window's distribution test: a shift below min_shift sd is not worth an alarm
        self.scan_ = ShiftScan(baseline, float(getattr(p, "sequential_alpha", 0.01)), p.min_shift)
        pending = getattr(self, "_pending_scan", None)
        if pending:  # a restart: resume the saved scan if it was taken against this same reference
            self.scan_.load_state_dict(pending)
            self._pending_scan = None

    def _fit_plain(self, c: str, block: _Block, n_rows: int, p: TabularDriftParams) -> bool:
        """Profile a plain numeric column from the block (False: leave it to :meth:`_fit_column`)."""
        srt = block.finite_sorted(c)
        if len(srt) == 0:
            return False
        sizes = st.tie_group_sizes(srt)
        n_distinct = len(srt) - int(np.sum(sizes)) + len(sizes)
        if n_distinct > p.max_categories:
            self.numeric_[c] = self._profile_numeric(srt, n_rows, presorted=True, tie_sizes=sizes)
        else:
            v = block.column(c)
            v = v[np.isfinite(v)]
            self.categorical_[c] = self._profile_categorical([_key(x) for x in v], n_rows, numeric=True)
        return True

    def _fit_column(self, c: str, s: pd.Series, p: TabularDriftParams) -> None:
        """Profile any other column: parse it as numbers if 99 % of its values are, else as categories."""
        num = pd.to_numeric(s, errors="coerce") if s.dtype != bool else None
        non_null = int(s.notna().sum())
        parsed = 0 if num is None else int(num.notna().sum())
        if num is not None and non_null > 0 and parsed >= 0.99 * non_null:
            v = num.to_numpy(dtype=float, na_value=np.nan)
            v = v[np.isfinite(v)]
            if len(np.unique(v)) > p.max_categories:
                self.numeric_[c] = self._profile_numeric(v, len(s))
                return
            self.categorical_[c] = self._profile_categorical([_key(x) for x in v], len(s), numeric=True)
        else:
            vals = [_key(x) for x in s[s.notna()].tolist()]
            self.categorical_[c] = self._profile_categorical(vals, len(s), numeric=False)

    @staticmethod
    def _profile_numeric(
        v: np.ndarray, n_rows: int, presorted: bool = False, tie_sizes: np.ndarray | None = None
    ) -> _Numeric:
        """The profile of a numeric column (``tie_sizes``: :func:`st.tie_group_sizes` of the sorted values)."""
        srt = v if presorted else np.sort(v)
        n = len(srt)
        sizes = st.tie_group_sizes(srt) if tie_sizes is None else tie_sizes
        ties, singletons = st.tie_sum(sizes), n - int(np.sum(sizes))
        med = float(0.5 * (srt[(n - 1) // 2] + srt[n // 2])) if n else 0.0  # median of sorted values
        absdev = st.sorted_abs_dev(srt, med)
        edges = np.unique(srt[(np.arange(1, 10) * (n - 1)) // 10]) if n else np.array([])
        return _Numeric(
            sorted=srt,
            absdev=absdev,
            ties=ties,
            median=med,
            absdev_ties=st.tie_sum(st.tie_group_sizes(absdev)),
            std=float(np.std(srt)) if n else 0.0,
            n_missing=n_rows - n,
            n_rows=n_rows,
            singletons=singletons,
            psi_edges=edges,
            psi_props=st.bin_counts(edges, srt) / max(n, 1),
            mean=float(np.mean(srt)) if n else 0.0,
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
        block: _Block | None = getattr(self, "_block", None)
        src = block.columns_of(cols) if block is not None else None
        values = _matrix_columns(reference, cols) if src is None else src
        n = len(reference)
        fill, mean, scale = np.zeros(len(cols)), np.empty(len(cols)), np.empty(len(cols))
        # the median imputing missing values: a numeric column's is in its profile already
        rest = [j for j, c in enumerate(cols) if c not in self.numeric_]
        if rest:
            sub = _rows([values[j] for j in rest], slice(None), n)
            fill[rest] = np.nanmedian(np.where(np.isnan(sub).all(axis=0), 0.0, sub), axis=0)
        for j, c in enumerate(cols):
            if c in self.numeric_:
                fill[j] = self.numeric_[c].median
        fill = np.where(np.isfinite(fill), fill, 0.0)
        buf = np.empty(n)
        for j in range(len(cols)):
            v = values[j]
            missing = np.isnan(v)
            if missing.any():
                v = np.where(missing, fill[j], v)
            mean[j], scale[j] = _mean_std_in_row_order(v, buf)
        self.mv_fill_, self.mv_mean_ = fill, mean
        self.mv_scale_ = np.where(scale > 0, scale, 1.0)
        order = np.random.default_rng(self._seed()).permutation(n)
        half = min(n // 2, _MV_HALF_CAP)  # 5 000 rows pin a covariance of <= 100 columns down well
        x = _rows(values, order[: 2 * half], n)  # only the rows used are standardised
        if np.isnan(x).any():
            x = np.where(np.isnan(x), self.mv_fill_, x)
        z = (x - self.mv_mean_) / self.mv_scale_
        train, calib = z[:half], z[half : 2 * half]
        cov = st.ledoit_wolf(train)
        self.mv_center_ = train.mean(axis=0)
        self.mv_precision_ = np.linalg.pinv(cov)
        self.mv_calib_ = self._mahalanobis(calib)

    def _mahalanobis(self, z: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """Squared distances of the standardised rows ``z``, centred in place (``z`` is the caller's scratch):
        a fresh array's pages cost more to touch than the arithmetic on them."""
        np.subtract(z, self.mv_center_, out=z)
        prod = z @ self.mv_precision_
        np.multiply(prod, z, out=prod)
        return np.sum(prod, axis=1, out=out)

    def _current_mahalanobis(self, current: pd.DataFrame) -> np.ndarray:
        """Squared distances of the current rows, imputed and standardised block by block (cache-sized)."""
        block = getattr(self, "_block", None)
        src = block.columns_of(self.mv_columns_) if block is not None else None
        values = _matrix_columns(current, self.mv_columns_) if src is None else src
        n = len(current)
        d2 = np.empty(n)
        # one block-sized scratch, standardised and centred in place
        buf = np.empty((min(n, _MV_CHUNK), len(values)))
        for start in range(0, n, _MV_CHUNK):
            end = min(start + _MV_CHUNK, n)
            x = buf[: end - start]  # C-ordered rows, as the product below has always been given them
            np.stack([v[start:end] for v in values], axis=1, out=x)
            if np.isnan(x).any():
                x = np.where(np.isnan(x), self.mv_fill_, x)
            np.subtract(x, self.mv_mean_, out=x)
            np.divide(x, self.mv_scale_, out=x)
            self._mahalanobis(x, out=d2[start:end])
        return d2

    # ---- test --------------------------------------------------------------------------------------------
    def _test(self, current: pd.DataFrame) -> DriftResult:
        p: TabularDriftParams = self.params  # type: ignore[assignment]
        m = len(current)
        signals: list[_Signal] = []
        schema: dict[str, ColumnDrift] = {}
        wanted = set(self.numeric_) | set(getattr(self, "mv_columns_", []))
        self._block = _Block.of(current, [c for c in self.columns_ if c in wanted])
        self._seq_obs = {}
        try:
            for c in self.columns_:
                if c not in current.columns:
                    schema[c] = ColumnDrift(c, "schema", 1.0, 0.0, 1.0, True, {"reason": "column absent from current"})
                    continue
                signals.extend(self._column_signals(c, current[c]))
            mv = self._multivariate_signal(current, p)
            self._cond_obs = self._conditional_sums(current)
        finally:
            self._block = None
        if mv is not None:
            signals.append(mv)

        k = st.tarone_bonferroni([s.p for s in signals], [s.min_p for s in signals], p.alpha)
        for s in signals:
            s.p_adj = min(1.0, s.p * k)
            s.drift = bool(s.p <= p.alpha / k and s.effect >= s.floor)
        shifts = self._sequential_update({s.column for s in signals if s.drift} | set(schema))

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
            col = ColumnDrift(
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
            columns[c] = self._with_shift(col, shifts.get(c)) if shifts else col

        drift = any(col.drift for col in columns.values()) or (mv is not None and mv.drift)
        p_cols = [c.p_value for c in columns.values() if c.p_value is not None]  # (a scan alarm's p)
        p_min = min([s.p_adj for s in signals] + p_cols, default=1.0)
        if schema:
            p_min = 0.0
        details: dict[str, Any] = {"n_reference": self.n_reference_, "n_current": m, "alpha": p.alpha, "n_tests": k}
        if self.scan_ is not None:
            details["sequential"] = self._sequential_details(shifts)
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

    # ---- evidence across windows --------------------------------------------------------------------------
    def _sequential_update(self, flagged: set[str]) -> dict[str, ShiftAlarm]:
        """Feed this window to the scan; per column, its strongest statistic (empty without a scan).

        A column the window's own tests flagged sits this window out: that shift is reported already, and
        the scan is for the ones no window shows; accumulated, a large passing shift would keep the scan
        alarmed for many windows after it is over. A residual depends on every column, so the residuals sit
        out any window in which a column was flagged.
        """
        scan = self.scan_
        if scan is None:
            return {}
        b = scan.baseline
        none = (0.0, 0.0, 0.0)
        given = b.given_mask
        own = int(np.sum(~given))
        keys = list(zip(b.columns[:own], b.labels[:own], strict=True))
        obs = np.zeros((len(b.columns), 3))
        obs[:own] = [none if key[0] in flagged else self._seq_obs.get(key, none) for key in keys]
        cond_obs = getattr(self, "_cond_obs", None)
        if cond_obs is not None and not flagged and given.any():
            count, total = cond_obs
            obs[own:] = np.column_stack([count, total, total])
        self._seq_obs = {}
        self._cond_obs = None
        best: dict[str, ShiftAlarm] = {}
        for a in scan.update(obs[:, 0], obs[:, 1], obs[:, 2]):
            old = best.get(a.column)
            if old is None or abs(a.z) - a.threshold > abs(old.z) - old.threshold:
                best[a.column] = a
        return best

    def _conditional_sums(self, current: pd.DataFrame) -> tuple[np.ndarray, np.ndarray] | None:
        """Per residual statistic: (rows, sum of residuals) of this window; None without a model or a column."""
        model: ConditionalModel | None = getattr(self, "cond_", None)
        if model is None or getattr(self, "scan_", None) is None:
            return None
        cols = list(model.scoring.columns)
        if any(c not in current.columns for c in cols):
            return None
        return model.window_sums(self._cond_rows(current, cols, cond.evenly_spaced(len(current))))

    def _with_shift(self, col: ColumnDrift, shift: ShiftAlarm | None) -> ColumnDrift:
        """The column's result with the scan's evidence; a scan alarm makes the column drift."""
        if shift is None:
            return col
        details = {**col.details, "sequential": shift.to_dict()}
        if not shift.drift:
            return ColumnDrift(col.column, col.test, col.statistic, col.p_value, col.effect, col.drift, details)
        n_stats = len(self.scan_.baseline.columns) if self.scan_ is not None else 1
        p_seq = min(1.0, scan_pvalue(shift.z) * n_stats)
        details["reasons"] = [*details.get("reasons", []), "persistent shift"]
        if col.drift:
            return ColumnDrift(col.column, col.test, col.statistic, col.p_value, col.effect, True, details)
        details["signal"] = "persistent shift"
        return ColumnDrift(col.column, "sequential-scan", shift.z, p_seq, shift.shift, True, details)

    def _sequential_details(self, shifts: dict[str, ShiftAlarm]) -> dict[str, Any]:
        scan = self.scan_
        assert scan is not None
        alarms = sorted((a for a in shifts.values() if a.drift), key=lambda a: -abs(a.z))
        return {
            "test": "sequential-scan",
            "alpha": scan.alpha,
            "statistics": len(scan.baseline.columns),
            "threshold": scan.threshold,
            "windows": scan.windows,
            "first_alarm_window": scan.first_alarm,
            "drift": bool(alarms),
            "alarms": {a.column: a.to_dict() for a in alarms},
        }

    # ---- persistence ---------------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """The base state plus the scan's per-window sums, so a restart continues the accumulation."""
        state = super().state_dict()
        scan = getattr(self, "scan_", None)
        if scan is not None and scan.windows:
            state["sequential"] = scan.state_dict()
        return state

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore; the scan resumes at the next fit if that fit is on the same reference (else starts anew)."""
        saved = state.get("sequential")
        self._pending_scan = dict(saved) if isinstance(saved, Mapping) else None
        super().load_state_dict(state)
        scan = getattr(self, "scan_", None)
        if self._pending_scan and scan is not None and self._fitted:
            scan.load_state_dict(self._pending_scan)
            self._pending_scan = None

    def _column_signals(self, c: str, s: pd.Series) -> list[_Signal]:
        """Every signal of one column (subclasses narrow this to fewer tests)."""
        p: TabularDriftParams = self.params  # type: ignore[assignment]
        if c in self.numeric_:
            return self._numeric_signals(c, self.numeric_[c], s, p)
        return self._categorical_signals(c, self.categorical_[c], s, p)

    def _finite_sorted(self, c: str, s: pd.Series) -> tuple[np.ndarray, int, int]:
        """(sorted finite values, rows, unparseable values) of a current column; from the block when there."""
        block: _Block | None = getattr(self, "_block", None)
        if block is not None and c in block.index:
            return block.finite_sorted(c), len(s), 0
        raw = pd.to_numeric(s, errors="coerce")
        unparseable = int(s.notna().sum() - raw.notna().sum())
        v = raw.to_numpy(dtype=float, na_value=np.nan)
        return np.sort(v[np.isfinite(v)]), len(v), unparseable

    def _numeric_signals(self, c: str, prof: _Numeric, s: pd.Series, p: TabularDriftParams) -> list[_Signal]:
        x, m, unparseable = self._finite_sorted(c, s)
        out = [self._missing_signal(c, m - len(x), m, prof.n_missing, prof.n_rows, p, unparseable)]
        if len(x) == 0 or len(prof.sorted) == 0:
            return out
        n = len(prof.sorted)
        # continuous data (no value twice in the pooled sample): one merge gives KS, rank-sum and novelty
        le = st.tie_free_ranks(prof.sorted, x)
        if le is not None:
            d, p_ks = st.ks_merged(n, le)
            auc, p_mw = st.rank_sum_u(n, float(len(x)), float(np.sum(le)), prof.ties)
            novelty = self._novelty_from(c, len(x), len(x) + prof.singletons, len(x), n, p)
        else:
            uv, cc = np.unique(x, return_counts=True)  # sorted distinct values: one binary search serves 3 tests
            below, equal = st.locate(prof.unique, prof.counts, prof.cum0, uv)
            d, p_ks = st.ks_located(n, prof.unique, prof.cum0, x, cc, below, equal)
            auc, p_mw = st.rank_sum_located(n, prof.ties, cc, below, equal)
            novelty = self._novelty_signal(c, cc, equal, prof.singletons, n, p)
        dev = st.sorted_abs_dev(x, prof.median)
        le = st.tie_free_ranks(prof.absdev, dev)
        if le is not None:
            sauc, p_sp = st.rank_sum_u(n, float(len(dev)), float(np.sum(le)), prof.absdev_ties)
        else:
            dv, dc = np.unique(dev, return_counts=True)
            d_below, d_equal = st.locate(prof.absdev_unique, prof.absdev_counts, prof.absdev_cum0, dv)
            sauc, p_sp = st.rank_sum_located(n, prof.absdev_ties, dc, d_below, d_equal)
        sum_x = float(np.sum(x))
        self._seq_obs[(c, "")] = (float(len(x)), auc * len(x), sum_x)
        w1 = st.wasserstein_quantiles(prof.sorted, x)
        shift = w1 / prof.std if prof.std > 0 else (1.0 if w1 > 0 else 0.0)
        cur_props = st.bin_counts(prof.psi_edges, x) / len(x)
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
                    "mean_shift_sd": (sum_x / len(x) - prof.mean) / prof.std if prof.std > 0 else 0.0,
                },
            )
        )
        out.append(novelty)
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
        for label in self._seq_rates.get(c, ()):
            k_cur = float(cur_counts[prof.index[label]])
            self._seq_obs[(c, label)] = (float(cur_counts.sum()), k_cur, k_cur)
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
        return TabularDrift._novelty_from(c, novel, f1, m, n, p)

    @staticmethod
    def _novelty_from(c: str, novel: int, f1: int, m: int, n: int, p: TabularDriftParams) -> _Signal:
        """The novelty signal from its counts: ``novel`` of the ``f1`` pooled singletons are in the window."""
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
        d2 = self._current_mahalanobis(current)
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
            seq = col.details.get("sequential", {})
            if seq.get("drift"):
                unit = " sd" if seq["kind"] == "location" else ""
                what = f" of {seq['category']!r}" if seq.get("category") else ""
                what += " given the other columns" if seq.get("given") else ""
                reasons += (
                    f" since window {seq['start_window']}: shift{what} {seq['shift']:+.3g}{unit}, 95% CI "
                    f"[{seq['ci95'][0]:+.3g}, {seq['ci95'][1]:+.3g}]"
                )
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
