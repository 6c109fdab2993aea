"""Each column given the others: regression-adjusted statistics for the scan across windows.

A column's own share or mean carries all of its sampling noise: a binary column at 32 % has a per-row
variance of 0.22, and a 4-point move of it over 3 000 rows is about 3.5 standard errors, too few for a test
that watches a whole stream. But columns of a real table predict each other, and a shift that touches one
column alone (a label set to 1 whatever the features say, a sensor reading 0.1 sd high) breaks that: the
column moves while its prediction from the others does not. Its *residual* given the others,

    r = z_c - E[z_c | the other columns],

has the variance of the column times ``1 - R^2`` (R^2: how much of the column the others explain), so the same
shift is ``1 / sqrt(1 - R^2)`` more standard errors away (2.4x at R^2 = 0.82). This is regression adjustment
(the control variates behind CUPED, Deng et al. 2013; the residuals of MSET/PCA fault monitors), used here as
one more statistic per column for :class:`~._sequential.ShiftScan`: its per-window count and sum are
accumulated and scanned like the column's own share or placement, with the same false-alarm control.

How. Each column is mapped to a score: a numeric column to the normal score of its reference placement
(``Phi^-1`` of its mid-rank, interpolated between :data:`KNOTS` reference quantiles, so skewed and
heavy-tailed columns become Gaussian-like and monotone relations such as area ~ radius^2 become linear);
a binary one to its 0/1 indicator. A missing value scores the reference mean (so it adds nothing to the
other columns' predictions; a column's own missing rows are left out of its residual). One linear regression
of every column on all the others comes from the precision matrix ``P`` of the scores (``r_c = (P z)_c /
P_cc``; a tiny ridge keeps exactly collinear columns invertible), fitted on up to :data:`MAX_ROWS`
reference rows spread evenly over it.

Why the false-alarm level still holds. Under no drift a window's rows come from the reference's
distribution, and ``r`` is a fixed function of a row once fitted, so a segment's mean residual against the
reference's is an ordinary two-sample mean. Two corrections for the fit: the in-sample residual variance
is scaled by ``n / (n - q)`` (``q`` coefficients fitted) and by ``1 + q / n`` (the coefficients' own error
moves every later residual mean a little). The scan's effect floor stays on the column's *own* scale, so a
tiny residual variance does not turn a trivial shift into an alarm.

A column gets a residual statistic only when the others explain at least :data:`MIN_R2` of it: below that
its residual is less than 1.41x as sensitive as its own statistic, while each statistic added to the scan
raises every statistic's threshold (Bonferroni), and a shift that moves columns together (label shift:
the features follow the label) moves the residual little. Both the column's own statistic and its residual
stay in the scan, so neither kind of shift is given up.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np

from ._sequential import StatRow

MAX_ROWS = 5_000  # rows of the reference and of a window the residuals are computed on (see evenly_spaced)
KNOTS = 257  # reference quantiles a numeric column's normal score is interpolated between
MIN_R2 = 0.5  # share of a column's variance the others must explain for it to get a residual statistic
LINK_BINS = 20  # bins of a binary column's linear prediction its rate is read from (at least 100 rows each)
_RIDGE = 1e-6  # relative to each score's variance: keeps exactly collinear columns invertible


def evenly_spaced(n: int, cap: int = MAX_ROWS) -> slice | np.ndarray:
    """Rows used of ``n``: all of them, or ``cap`` spread evenly (a window of 100 000 rows is decided by its own
    tests long before its residual sums would matter, and the residuals cost a pass over every column)."""
    if n <= cap:
        return slice(None)
    return np.linspace(0, n - 1, cap).round().astype(np.intp)


def normal_score_knots(
    sorted_values: np.ndarray, knots: int = KNOTS, seen: dict[bytes, np.ndarray] | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """(values, normal scores of their mid-rank placements) at up to ``knots`` reference quantiles.

    ``seen`` keeps the scores of placements met before: every column without ties among the same rows has
    the same placements, whose inverse normal CDF (one Python call per knot) is then computed once.
    """
    n = len(sorted_values)
    idx = np.unique(np.linspace(0, n - 1, min(knots, n)).round().astype(np.intp))
    xp = np.unique(sorted_values[idx])
    lo = np.searchsorted(sorted_values, xp, "left")
    hi = np.searchsorted(sorted_values, xp, "right")
    placements = (lo + hi) / (2.0 * n)
    key = placements.tobytes()
    scores = None if seen is None else seen.get(key)
    if scores is None:
        inv = NormalDist().inv_cdf
        scores = np.array([inv(float(p)) for p in placements])
        if seen is not None:
            seen[key] = scores
    return xp, scores


@dataclass(frozen=True)
class Scoring:
    """How each column of the model becomes a score: numeric by knots, binary by its positive value."""

    columns: tuple[str, ...]
    knots_x: tuple[np.ndarray, ...]  # empty for a binary column
    knots_z: tuple[np.ndarray, ...]
    positive: np.ndarray  # a binary column's positive value (NaN for a numeric one)

    def scores(self, rows: np.ndarray) -> np.ndarray:
        """(rows, columns) raw values -> scores; a missing value stays NaN."""
        out = np.empty(rows.shape)
        for j in range(rows.shape[1]):
            x = rows[:, j]
            if len(self.knots_x[j]):
                out[:, j] = np.interp(x, self.knots_x[j], self.knots_z[j])  # NaN in, NaN out
            else:
                out[:, j] = np.where(np.isnan(x), np.nan, (x == self.positive[j]).astype(float))
        return out


@dataclass(frozen=True)
class Link:
    """A binary column's rate as a function of its linear prediction: the reference's rate in each of up to
    :data:`LINK_BINS` equal-count bins of the prediction (histogram calibration). A straight line fits a 0/1
    column badly (two classes 2.5 sd apart give a linear R^2 of ~0.55 however separable they are); the rate
    per bin follows the S-shaped curve, so the residual ``y - rate`` is small wherever the others decide."""

    edges: np.ndarray  # inner bin edges of the linear prediction
    rates: np.ndarray  # the reference rate per bin, minus the column's reference mean

    @classmethod
    def fit(cls, y: np.ndarray, pred: np.ndarray) -> Link:
        bins = max(2, min(LINK_BINS, len(y) // 100))
        edges = np.unique(np.quantile(pred, np.linspace(0.0, 1.0, bins + 1)[1:-1]))
        idx = np.searchsorted(edges, pred, "right")
        rates = np.bincount(idx, weights=y, minlength=len(edges) + 1) / np.maximum(
            np.bincount(idx, minlength=len(edges) + 1), 1
        )
        return cls(edges, rates)

    def __call__(self, pred: np.ndarray) -> np.ndarray:
        return np.asarray(self.rates[np.searchsorted(self.edges, pred, "right")], dtype=float)


def _calibrated(
    centred: np.ndarray, weights: np.ndarray, targets: Sequence[int], links: Sequence[Link | None]
) -> np.ndarray:
    """Residuals: the linear ones, with a binary target's prediction passed through its link."""
    resid: np.ndarray = np.asarray(centred @ weights, dtype=float)
    for i, link in enumerate(links):
        if link is not None:
            y = centred[:, targets[i]]
            resid[:, i] = y - link(y - resid[:, i])  # y - resid: the linear prediction
    return resid


@dataclass(frozen=True)
class ConditionalModel:
    """The fitted residuals: which columns are targets, their weights, and their reference moments.

    ``residuals(scores)[:, i]`` is target ``i``'s score minus its prediction from the other columns.
    ``mean``/``var`` are the reference's per-row residual mean and (fit-corrected) variance, ``n`` the
    reference rows behind them, ``sd`` the target's own score sd (the unit of its floor and its report),
    ``r2`` the share of it the others explain.
    """

    scoring: Scoring
    center: np.ndarray  # (q,) reference mean score (also what a missing value is imputed with)
    weights: np.ndarray  # (q, t)
    targets: tuple[int, ...]  # positions in scoring.columns
    links: tuple[Link | None, ...]  # per target: a binary one's calibration of its linear prediction
    mean: np.ndarray
    var: np.ndarray
    n: np.ndarray
    sd: np.ndarray
    r2: np.ndarray

    @property
    def columns(self) -> tuple[str, ...]:
        """The target columns, in order."""
        return tuple(self.scoring.columns[i] for i in self.targets)

    def stat_rows(self, labels: Mapping[str, str]) -> list[StatRow]:
        """The scan's statistics: each target's residual; ``labels`` names a binary target's tracked value
        (a target not in it is numeric: a location, reported in its own score sd)."""
        out = []
        for i, c in enumerate(self.columns):
            rate = c in labels
            mean, sd = float(self.mean[i]), float(self.sd[i])
            out.append(
                StatRow(
                    column=c,
                    label=labels.get(c, ""),
                    kind="rate" if rate else "location",
                    mean=mean,
                    var=float(self.var[i]),
                    n=float(self.n[i]),
                    raw_mean=mean,
                    raw_sd=1.0 if rate else sd,
                    given=True,
                    scale=sd,
                )
            )
        return out

    def residuals(self, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(residual per row and target, True where the target itself was observed)."""
        missing = np.isnan(scores)
        centred = np.where(missing, 0.0, scores - self.center)
        return _calibrated(centred, self.weights, self.targets, self.links), ~missing[:, list(self.targets)]

    def window_sums(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Per target: (rows observed, sum of their residuals) of a window's raw (rows, columns) values."""
        resid, seen = self.residuals(self.scoring.scores(rows))
        return seen.sum(axis=0).astype(float), np.where(seen, resid, 0.0).sum(axis=0)


def fit_conditional(scoring: Scoring, rows: np.ndarray, min_r2: float = MIN_R2) -> ConditionalModel | None:
    """Regress every column's score on the others' over the reference ``rows``; None when no column is
    explained by the others to ``min_r2`` (or there are too few rows or columns for a regression)."""
    n, q = rows.shape
    if q < 2 or n < 10 * q:  # fewer rows than ~10 per coefficient: the fit would mostly describe noise
        return None
    z = scoring.scores(rows)
    missing = np.isnan(z)
    seen = (~missing).sum(axis=0)
    center = np.where(seen > 0, np.where(missing, 0.0, z).sum(axis=0) / np.maximum(seen, 1), 0.0)
    centred = np.where(missing, 0.0, z - center)
    cov = centred.T @ centred / n
    diag = np.diag(cov).copy()
    live = diag > 0
    if live.sum() < 2:
        return None
    prec = np.zeros((q, q))
    sub = cov[np.ix_(live, live)] + np.diag(_RIDGE * diag[live])
    prec[np.ix_(live, live)] = np.linalg.inv(sub)
    pd_ = np.diag(prec)
    weights = np.divide(prec, pd_, out=np.zeros_like(prec), where=pd_ > 0)  # column c: z_c - E[z_c | others]
    obs = ~missing
    binary = [not len(x) for x in scoring.knots_x]
    links = tuple(
        Link.fit(centred[obs[:, j], j], (centred @ (np.eye(q)[:, j] - weights[:, j]))[obs[:, j]])
        if binary[j] and live[j]
        else None
        for j in range(q)
    )
    resid = _calibrated(centred, weights, range(q), links)
    cnt = np.maximum(obs.sum(axis=0), 1)
    r_mean = np.where(obs, resid, 0.0).sum(axis=0) / cnt
    r_var = np.where(obs, (resid - r_mean) ** 2, 0.0).sum(axis=0) / cnt
    own_var = np.where(obs, centred**2, 0.0).sum(axis=0) / cnt
    with np.errstate(divide="ignore", invalid="ignore"):
        r2 = np.where(own_var > 0, 1.0 - r_var / own_var, 0.0)
    k = int(live.sum())  # coefficients fitted per regression: k - 1 slopes and an intercept
    targets = tuple(int(i) for i in np.flatnonzero(live & (r2 >= min_r2) & (obs.sum(axis=0) > 2 * k)))
    if not targets:
        return None
    t = list(targets)
    m = obs.sum(axis=0)[t].astype(float)
    fitted = k + np.array([len(lk.rates) if (lk := links[j]) is not None else 0 for j in t])  # bin rates count too
    inflate = m / (m - fitted) * (1.0 + fitted / m)
    return ConditionalModel(
        scoring=scoring,
        center=center,
        weights=weights[:, t],
        targets=targets,
        links=tuple(links[j] for j in t),
        mean=r_mean[t],
        var=r_var[t] * inflate,
        n=m,
        sd=np.sqrt(own_var[t]),
        r2=r2[t],
    )


def scoring_of(
    columns: Sequence[str], sorted_values: Sequence[np.ndarray | None], positives: Sequence[float]
) -> Scoring:
    """The scoring of ``columns``: a numeric one (its finite reference values sorted) or a binary one (its
    positive value; ``sorted_values`` None)."""
    xs, zs = [], []
    seen: dict[bytes, np.ndarray] = {}
    for srt in sorted_values:
        if srt is None:
            xs.append(np.empty(0))
            zs.append(np.empty(0))
        else:
            x, z = normal_score_knots(srt, seen=seen)
            xs.append(x)
            zs.append(z)
    return Scoring(tuple(columns), tuple(xs), tuple(zs), np.asarray(positives, dtype=float))
