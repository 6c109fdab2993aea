"""Two-sample statistics that work from a *stored* reference profile.

Every function takes what :meth:`fit` kept about the reference (sorted values, distinct values and their
counts, tie sums) plus the raw current window, so that a check never re-reads or re-sorts the reference. They
return plain floats; NaN never reaches them (callers split missing values off first: missingness is a signal
of its own).

The p-values are either exact permutation distributions (hypergeometric: missingness, novelty) or the usual
large-sample approximations that are conservative under ties (Kolmogorov-Smirnov) or tie-corrected
(rank-sum), so that the family-wise error the detectors promise holds on rounded and resampled data too.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence

import numpy as np

_TINY = 1e-300

try:  # the linear merge behind count_at_or_below
    from pandas._libs.algos import pad as _pad
except ImportError:  # pragma: no cover - a pandas without it: the binary search serves
    _pad = None


def sorted_abs_dev(sorted_values: np.ndarray, center: float) -> np.ndarray:
    """|x - center| sorted, from sorted x (two monotone runs, sorted in place)."""
    k = int(np.searchsorted(sorted_values, center))
    out = np.empty(len(sorted_values))
    np.subtract(center, sorted_values[:k][::-1], out=out[:k])
    np.subtract(sorted_values[k:], center, out=out[k:])
    out.sort()  # NumPy's vectorised sort beats a run-aware merge of the two runs (0.6 against 0.9 ms per 100 000)
    return out


def tie_sum(counts: np.ndarray) -> float:
    """sum(t^3 - t) over tie groups: the rank-sum variance correction."""
    t = counts[counts > 1].astype(float)  # groups of one add nothing
    if len(t) == 0:
        return 0.0  # continuous data: no ties
    return float(np.sum(t * t * t - t))  # exact integers: any summation order gives the same float


def ks_from_sorted(
    ref_sorted: np.ndarray, ref_unique: np.ndarray, cur: np.ndarray, presorted: bool = False
) -> tuple[float, float]:
    """Two-sample Kolmogorov-Smirnov (statistic, p-value) against a pre-sorted reference.

    The p-value is the asymptotic one scipy's ``ks_2samp(method="asymp")`` uses; with ties it is
    conservative, which is the safe side for a false-alarm budget. Binary searches run with sorted keys,
    which is several times faster than with keys in arbitrary order.
    """
    n, m = len(ref_sorted), len(cur)
    if n == 0 or m == 0:
        return 0.0, 1.0
    cur_sorted = cur if presorted else np.sort(cur)
    # the ECDF difference peaks at a data point: check every distinct reference and current value
    d_ref = np.abs(
        np.searchsorted(ref_sorted, ref_unique, side="right") / n
        - np.searchsorted(cur_sorted, ref_unique, side="right") / m
    )
    cur_unique, cur_counts = np.unique(cur_sorted, return_counts=True)
    d_cur = np.abs(np.searchsorted(ref_sorted, cur_unique, side="right") / n - np.cumsum(cur_counts) / m)
    d = float(max(np.max(d_ref), np.max(d_cur)))
    return d, ks_pvalue(d, max(round(n * m / (n + m)), 1))


def rank_sum_from_sorted(ref_sorted: np.ndarray, ref_ties: float, cur: np.ndarray) -> tuple[float, float]:
    """Mann-Whitney rank-sum test of ``cur`` vs the reference: (AUC, two-sided p), tie-corrected.

    AUC = P(current > reference) + P(tie)/2; 0.5 when nothing moved. Computed with two binary searches per
    current value instead of a pooled sort.
    """
    n, m = len(ref_sorted), len(cur)
    if n == 0 or m == 0:
        return 0.5, 1.0
    uv, cc = np.unique(cur, return_counts=True)  # sorted keys: the binary searches below run several times faster
    lo = np.searchsorted(ref_sorted, uv, side="left")
    hi = np.searchsorted(ref_sorted, uv, side="right")
    u = float(np.sum(cc * (lo + 0.5 * (hi - lo))))
    r = (hi - lo).astype(float)
    t = r + cc
    ties = ref_ties + float(np.sum(t**3 - t) - np.sum(r**3 - r))
    return rank_sum_u(n, m, u, ties)


def one_sided_rank_sum(calib: np.ndarray, cur: np.ndarray) -> tuple[float, float]:
    """One-sided rank-sum test that ``cur`` is stochastically larger than ``calib``: (AUC, p)."""
    calib_sorted = np.sort(calib)
    _, counts = np.unique(calib_sorted, return_counts=True)
    auc, p_two = rank_sum_from_sorted(calib_sorted, tie_sum(counts), cur)
    p = p_two / 2.0 if auc >= 0.5 else 1.0 - p_two / 2.0
    return auc, min(max(p, 0.0), 1.0)


def locate(
    ref_unique: np.ndarray, ref_counts: np.ndarray, ref_cum0: np.ndarray, keys: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """For sorted distinct ``keys``: how many reference values are below each key, and how many equal it.

    One binary search into the reference's distinct values (``ref_cum0`` = 0 followed by the cumulative
    counts) serves the rank-sum, Kolmogorov-Smirnov and novelty tests at once.
    """
    idx = np.searchsorted(ref_unique, keys, side="left")
    below = ref_cum0[idx]
    if len(ref_unique) == 0:
        return below, np.zeros(len(keys))
    safe = np.minimum(idx, len(ref_unique) - 1)
    equal = np.where((idx < len(ref_unique)) & (ref_unique[safe] == keys), ref_counts[safe], 0)
    return below, equal


def ks_located(
    n: int,
    ref_unique: np.ndarray,
    ref_cum0: np.ndarray,
    cur_sorted: np.ndarray,
    cur_counts: np.ndarray,
    below: np.ndarray,
    equal: np.ndarray,
) -> tuple[float, float]:
    """Kolmogorov-Smirnov from :func:`locate`'s output (same statistic and p-value as :func:`ks_from_sorted`)."""
    m = len(cur_sorted)
    if n == 0 or m == 0:
        return 0.0, 1.0
    d_cur = np.abs((below + equal) / n - np.cumsum(cur_counts) / m)
    d_ref = np.abs(ref_cum0[1:] / n - np.searchsorted(cur_sorted, ref_unique, side="right") / m)
    d = float(max(np.max(d_cur), np.max(d_ref) if len(d_ref) else 0.0))
    return d, ks_pvalue(d, max(round(n * m / (n + m)), 1))


def rank_sum_located(
    n: int, ref_ties: float, cur_counts: np.ndarray, below: np.ndarray, equal: np.ndarray
) -> tuple[float, float]:
    """Tie-corrected Mann-Whitney (AUC, two-sided p) from :func:`locate`'s output."""
    m = float(np.sum(cur_counts))
    if n == 0 or m == 0:
        return 0.5, 1.0
    u = float(np.sum(cur_counts * (below + 0.5 * equal)))
    r = equal.astype(float)
    t = r + cur_counts
    ties = ref_ties + float(np.sum(t**3 - t) - np.sum(r**3 - r))
    return rank_sum_u(n, m, u, ties)


def rank_sum_u(n: int, m: float, u: float, ties: float) -> tuple[float, float]:
    """(AUC, two-sided p) of the Mann-Whitney U of ``m`` current values against ``n`` reference values.

    ``ties`` is sum(t^3 - t) over the tie groups of the pooled sample; normal approximation with continuity
    and tie correction (scipy's ``mannwhitneyu(method="asymptotic")``).
    """
    big_n = n + m
    var = n * m / 12.0 * ((big_n + 1) - ties / (big_n * (big_n - 1)))
    auc = u / (n * m)
    if var <= 0:
        return auc, 1.0
    z = (abs(u - n * m / 2.0) - 0.5) / math.sqrt(var)
    return auc, min(2.0 * normal_sf(max(z, 0.0)), 1.0)


def is_distinct(sorted_values: np.ndarray) -> bool:
    """No two equal values in a sorted array (continuous data): the tie-free fast paths apply."""
    return not bool(np.any(sorted_values[1:] == sorted_values[:-1]))


def tie_free_ranks(ref_sorted: np.ndarray, cur_sorted: np.ndarray) -> np.ndarray | None:
    """How many reference values lie below each sorted current value; None if a current value is tied.

    When no current value occurs twice or equals a reference value (continuous data; the reference may
    have ties of its own) this is ``searchsorted(ref_sorted, cur_sorted)``, computed by one merge of the two
    sorted arrays (:func:`count_at_or_below`). With such ties the caller takes the tie-corrected path instead.
    """
    n = len(ref_sorted)
    if not is_distinct(cur_sorted):
        return None
    le = count_at_or_below(ref_sorted, cur_sorted)
    # the largest reference value <= each current value (the first one where none is: it is larger)
    if n and bool(np.any(np.take(ref_sorted, le - 1, mode="clip") == cur_sorted)):
        return None  # a current value equals a reference value
    return le


def count_at_or_below(ref_sorted: np.ndarray, keys_sorted: np.ndarray) -> np.ndarray:
    """``np.searchsorted(ref_sorted, keys_sorted, side="right")`` for sorted keys, by one linear merge.

    Even with sorted keys each binary search costs ~17 steps into 100 000 values; pandas' forward-fill
    indexer (the position of the last reference value <= each key, ties included) walks both arrays once,
    in half the time. It is an internal of pandas, so any other pandas or input falls back to the search;
    ``tests/unit/test_drift.py`` checks the two agree.
    """
    if _pad is not None and ref_sorted.dtype == keys_sorted.dtype == np.float64 and len(ref_sorted):
        le: np.ndarray = _pad(ref_sorted, keys_sorted)
        le += 1
        return le
    return np.searchsorted(ref_sorted, keys_sorted, side="right")


def tie_group_sizes(sorted_values: np.ndarray) -> np.ndarray:
    """Sizes of the groups of equal values that have two or more members, in order, of a sorted array.

    The counts above 1 of :func:`sorted_unique`, from the positions where a value equals its predecessor
    alone: a reference with a handful of ties (|x - median| has one at the median whenever the two middle
    values straddle it evenly) costs one comparison pass, not a pass that builds every distinct value.
    """
    same = np.flatnonzero(sorted_values[1:] == sorted_values[:-1])
    if len(same) == 0:
        return np.zeros(0, dtype=np.int64)
    # a group of t equal values is a run of t - 1 consecutive positions in ``same``
    starts = np.flatnonzero(np.diff(same) != 1) + 1
    return np.diff(np.concatenate([[0], starts, [len(same)]])) + 1


def sorted_unique(srt: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``np.unique(srt, return_counts=True)`` for an already sorted array (no second sort)."""
    if len(srt) == 0:
        return srt.copy(), np.zeros(0, dtype=np.int64)
    first = np.flatnonzero(np.concatenate([[True], srt[1:] != srt[:-1]]))
    return srt[first], np.diff(np.append(first, len(srt)))


def ks_merged(n: int, le: np.ndarray) -> tuple[float, float]:
    """Kolmogorov-Smirnov from :func:`tie_free_ranks` (no current value tied).

    ``le[i]`` reference values lie below the i-th smallest of ``m`` distinct current values, none of which
    equals a reference value (the reference may have ties of its own). F_ref - F_cur is most negative at a
    current value (le/n against (i+1)/m) and most positive just before it (at the largest reference value
    below it: le/n against i/m), so these differences, computed with the same arithmetic as scipy's
    ``ks_2samp``, give its statistic exactly.
    """
    m = len(le)
    if n == 0 or m == 0:
        return 0.0, 1.0
    f_ref = le / n
    steps = _steps(m)
    d = float(max(np.max(f_ref - steps[:-1]), np.max(steps[1:] - f_ref)))
    return d, ks_pvalue(d, max(round(n * m / (n + m)), 1))


@functools.lru_cache(maxsize=4)
def _steps(m: int) -> np.ndarray:
    """0/m, 1/m, ..., m/m (read-only: cached, since every column of a window has the same m)."""
    steps = np.arange(m + 1) / m
    steps.flags.writeable = False
    return steps


def normal_sf(z: float) -> float:
    """P(Z > z) of a standard normal (``scipy.special.ndtr(-z)``), from the standard library.

    The common paths of a drift test need only this and :func:`kolmogorov_sf`; importing scipy.special
    for them costs a CLI call about 0.2 s of CPU, as much as testing a window of 100 000 rows.
    """
    return 0.5 * math.erfc(z / math.sqrt(2.0))


def kolmogorov_sf(x: float) -> float:
    """P(K > x) of the limiting Kolmogorov distribution (``scipy.special.kolmogorov``).

    Two series, each used where it converges in a few terms: the alternating one in exp(-2 k^2 x^2) for
    x >= 1, Jacobi's dual in exp(-(2k-1)^2 pi^2 / (8 x^2)) below (the same split scipy makes).
    """
    if x <= 0.0:
        return 1.0
    if x >= 1.0:
        return min(2.0 * sum((1.0 if k % 2 else -1.0) * math.exp(-2.0 * k * k * x * x) for k in range(1, 20)), 1.0)
    cdf = math.sqrt(2.0 * math.pi) / x * sum(
        math.exp(-((2 * k - 1) ** 2) * math.pi**2 / (8.0 * x * x)) for k in range(1, 20)
    )
    return max(1.0 - cdf, 0.0)


def smirnov_sf(n: int, d: float) -> float:
    """P(D+_n >= d), the exact one-sided Kolmogorov-Smirnov tail (scipy.special.smirnov), vectorised.

    Birnbaum-Tingey's sum d * sum_j C(n, j) (d + j/n)^(j-1) (1 - d - j/n)^(n-j), j = 0..floor(n(1-d)),
    evaluated in logs in one NumPy pass instead of scipy's term-by-term loop (tens of ms at n = 25 000).
    """
    if d <= 0.0:
        return 1.0
    if d >= 1.0:
        return 0.0
    top_j = math.floor(n * (1.0 - d))
    j = np.arange(top_j + 1, dtype=float)
    log_fact = _log_factorials(n)
    evn = d + j / n
    with np.errstate(divide="ignore", invalid="ignore"):
        log_terms = (
            log_fact[n] - log_fact[: top_j + 1] - log_fact[n - top_j :][::-1]  # log C(n, j)
            + (j - 1.0) * np.log(evn)
            + (n - j) * np.log1p(-evn)
        )
    log_terms = log_terms[np.isfinite(log_terms)]
    if len(log_terms) == 0:
        return 0.0
    top = float(np.max(log_terms))
    return float(d * math.exp(top) * np.sum(np.exp(log_terms - top)))


@functools.lru_cache(maxsize=4)
def _log_factorials(n: int) -> np.ndarray:
    """log k! for k = 0..n, each from ``math.lgamma`` (not a running sum, whose rounding would add up).

    Cached: every column of a window has the same effective sample size. Replaces ``scipy.special.betaln``
    so that a shifted column does not cost a CLI call the import of scipy (~0.2 s of CPU).
    """
    out = np.array([math.lgamma(k + 1.0) for k in range(n + 1)])
    out.flags.writeable = False
    return out


def ks_pvalue(d: float, en: int) -> float:
    """Two-sided Kolmogorov-Smirnov p-value ``scipy.stats.kstwo.sf(d, en)`` (ks_2samp's asymptotic one).

    scipy answers the tail n d^2 in [2.2, 370) with 2 * smirnov(n, d), an O(n) loop that costs ~70 ms at
    en = 25 000; that branch is computed here by :func:`smirnov_sf` (same sum, vectorised). Below it (n d^2 <
    2.2: p above ~0.02, never near a decision) the limiting Kolmogorov tail is used: it is never below the
    exact one (by at most 0.022 at en = 150, 0.0013 at 50 000), so it is conservative, and it spares a CLI
    call the import of scipy.stats. The remaining cases (small samples) are scipy's own.
    """
    t = en * d
    if en > 140 and 1.0 < t < en - 1:  # the branches of scipy's _kolmogn(cdf=False), in its order
        nxsquared = t * d
        if d >= 0.5 or 2.2 <= nxsquared < 370.0:
            return min(max(2.0 * smirnov_sf(en, d), 0.0), 1.0)
        if nxsquared >= 370.0:
            return 0.0
        return min(max(kolmogorov_sf(math.sqrt(en) * d), 0.0), 1.0)
    from scipy import stats

    return min(max(float(stats.kstwo.sf(d, en)), 0.0), 1.0)


def wasserstein_quantiles(ref_sorted: np.ndarray, cur_sorted: np.ndarray, grid: int = 4096) -> float:
    """Wasserstein-1 distance as the mean gap between the two quantile functions (midpoint rule).

    Exact up to the grid (min(n + m, ``grid``) points), with no pooled sort: W1 is only an effect size here.
    """
    n, m = len(ref_sorted), len(cur_sorted)
    if n == 0 or m == 0:
        return 0.0
    g = min(n + m, grid)
    u = (np.arange(g) + 0.5) / g
    qr = ref_sorted[np.minimum((u * n).astype(np.int64), n - 1)]
    qc = cur_sorted[np.minimum((u * m).astype(np.int64), m - 1)]
    return float(np.mean(np.abs(qr - qc)))


def wasserstein_from_sorted(
    ref_sorted: np.ndarray, ref_unique: np.ndarray, cur: np.ndarray, presorted: bool = False
) -> float:
    """Wasserstein-1 distance between the reference and current empirical distributions."""
    n, m = len(ref_sorted), len(cur)
    if n == 0 or m == 0:
        return 0.0
    cur_sorted = cur if presorted else np.sort(cur)
    pts = np.union1d(ref_unique, cur_sorted)
    if len(pts) < 2:
        return 0.0
    f_ref = np.searchsorted(ref_sorted, pts[:-1], side="right") / n
    f_cur = np.searchsorted(cur_sorted, pts[:-1], side="right") / m
    return float(np.sum(np.abs(f_ref - f_cur) * np.diff(pts)))


def psi(ref_props: np.ndarray, cur_props: np.ndarray, floor: float = 1e-4) -> float:
    """Population stability index over matching bins (proportions clipped at ``floor``)."""
    a = np.clip(ref_props, floor, None)
    b = np.clip(cur_props, floor, None)
    return float(np.sum((b - a) * np.log(b / a)))


def js_distance(ref_props: np.ndarray, cur_props: np.ndarray) -> float:
    """Jensen-Shannon distance (base 2, in [0, 1]) between two discrete distributions."""
    p = ref_props / max(float(ref_props.sum()), _TINY)
    q = cur_props / max(float(cur_props.sum()), _TINY)
    mid = 0.5 * (p + q)

    def _kl(a: np.ndarray) -> float:
        mask = a > 0
        return float(np.sum(a[mask] * np.log2(a[mask] / mid[mask])))

    return math.sqrt(max(0.5 * _kl(p) + 0.5 * _kl(q), 0.0))


def chi2_two_sample(ref_counts: np.ndarray, cur_counts: np.ndarray, min_expected: float = 5.0) -> tuple[float, float]:
    """Chi-square test of homogeneity on a 2 x K table: (statistic, p-value).

    Categories whose expected count in the smaller sample is below ``min_expected`` are pooled, so the
    chi-square approximation holds (Cochran's rule) and a rare category cannot on its own raise an alarm.
    """
    ref_counts = ref_counts.astype(float)
    cur_counts = cur_counts.astype(float)
    n, m = ref_counts.sum(), cur_counts.sum()
    if n == 0 or m == 0:
        return 0.0, 1.0
    pooled = ref_counts + cur_counts
    expected_small = pooled * min(n, m) / (n + m)
    rare = expected_small < min_expected
    if rare.any():
        ref_counts = np.append(ref_counts[~rare], ref_counts[rare].sum())
        cur_counts = np.append(cur_counts[~rare], cur_counts[rare].sum())
        pooled = ref_counts + cur_counts
        keep = pooled > 0
        ref_counts, cur_counts, pooled = ref_counts[keep], cur_counts[keep], pooled[keep]
    k = len(pooled)
    if k < 2:
        return 0.0, 1.0
    big = n + m
    e_ref = pooled * n / big
    e_cur = pooled * m / big
    chi2 = float(np.sum((ref_counts - e_ref) ** 2 / e_ref) + np.sum((cur_counts - e_cur) ** 2 / e_cur))
    from scipy import special  # only here: see normal_sf

    return chi2, float(special.chdtrc(k - 1, chi2))


def fisher_two_sided(k_cur: int, m: int, k_ref: int, n: int) -> float:
    """Exact two-sided p of ``k_cur`` events in ``m`` current rows given ``k_ref`` in ``n`` reference rows.

    The permutation (hypergeometric) null: under no drift, the pooled events fall into the current window
    like a random draw of ``m`` rows from ``n + m``.
    """
    total = k_cur + k_ref
    if total == 0 or m == 0 or n == 0:
        return 1.0
    from scipy import stats

    big = n + m
    lo, hi = max(0, total - n), min(total, m)
    ks = np.arange(lo, hi + 1)
    pmf = stats.hypergeom.pmf(ks, big, total, m)
    p_obs = stats.hypergeom.pmf(k_cur, big, total, m)
    return float(min(1.0, np.sum(pmf[pmf <= p_obs * (1 + 1e-7)])))


def fisher_min_p(m: int, total: int, n: int) -> float:
    """Smallest two-sided p the missingness test can reach given the pooled count (for Tarone's rule)."""
    if total == 0 or m == 0 or n == 0:
        return 1.0
    lo, hi = max(0, total - n), min(total, m)
    return min(fisher_two_sided(lo, m, total - lo, n), fisher_two_sided(hi, m, total - hi, n))


def hypergeom_upper(k: int, population: int, successes: int, draws: int) -> float:
    """P(X >= k) for X ~ Hypergeometric(population, successes, draws)."""
    if k <= 0:
        return 1.0
    if successes >= population:  # every row is a success: X = draws (continuous columns' novelty test)
        return 1.0 if k <= draws else 0.0
    from scipy import stats

    return float(min(1.0, max(stats.hypergeom.sf(k - 1, population, successes, draws), 0.0)))


def bin_counts(edges: np.ndarray, sorted_values: np.ndarray) -> np.ndarray:
    """``bincount(searchsorted(edges, x, "right"), minlength=len(edges) + 1)`` for sorted x: len(edges) searches."""
    cuts = np.searchsorted(sorted_values, edges, side="left")
    return np.diff(np.concatenate([[0], cuts, [len(sorted_values)]]))


def ledoit_wolf(x: np.ndarray) -> np.ndarray:
    """Ledoit & Wolf (2004) shrunk covariance of the rows of ``x``: (1 - s) S + s mu I.

    S is the empirical covariance, mu its mean variance, and s the estimated optimal shrinkage
    min(beta, delta) / delta with delta = ||S - mu I||^2 / p and beta = (mean of ||x_k x_k' - S||^2) / (n p),
    the estimator scikit-learn's ``ledoit_wolf`` computes; written with numpy so that a CLI call does not
    import scikit-learn (about 0.2 s of CPU) for one covariance.
    """
    n, p = x.shape
    xc = x - x.mean(axis=0)
    emp = xc.T @ xc / n
    mu = float(np.trace(emp)) / p
    x2 = xc * xc
    delta_ = float(np.sum(emp * emp))
    beta = (float(np.sum(x2.T @ x2)) / n - delta_) / (p * n)
    delta = (delta_ - 2.0 * mu * float(np.trace(emp)) + p * mu * mu) / p
    beta = min(beta, delta)
    shrinkage = 0.0 if beta == 0 else beta / delta
    shrunk: np.ndarray = (1.0 - shrinkage) * emp
    shrunk.flat[:: p + 1] += shrinkage * mu
    return shrunk


def cauchy_combine(pvalues: Sequence[float]) -> float:
    """Cauchy combination (Liu & Xie 2020) of possibly dependent p-values into one valid p-value.

    Its tail is insensitive to the dependence between the inputs, so several tests of one column (location,
    shape, spread) cost one test in the family-wise correction, not three.
    """
    ps = np.clip(np.asarray([p for p in pvalues if p is not None and math.isfinite(p)], dtype=float), 1e-300, 1.0)
    if len(ps) == 0:
        return 1.0
    if len(ps) == 1:
        return float(ps[0])
    small = ps < 1e-15
    terms = np.where(small, 1.0 / (ps * math.pi), np.tan((0.5 - ps) * math.pi))
    t = float(np.mean(terms))
    if t > 1.0:  # atan(1/t)/pi keeps full relative precision in the far tail
        return float(math.atan(1.0 / t) / math.pi)
    return float(min(1.0, max(0.5 - math.atan(t) / math.pi, 0.0)))


def tarone_bonferroni(pvalues: Sequence[float], min_pvalues: Sequence[float], alpha: float) -> int:
    """Number of tests to correct for under Tarone's (1990) rule for discrete tests.

    A test whose smallest *achievable* p-value is above alpha / K can never reject and so need not be
    counted: a column with no missing value anywhere, or a continuous column for the novelty test, costs
    nothing. Returns the smallest K with #{tests whose min p <= alpha / K} <= K.
    """
    mins = np.asarray(min_pvalues, dtype=float)
    total = len(mins)
    for k in range(1, total + 1):
        if int(np.sum(mins <= alpha / k)) <= k:
            return k
    return max(total, 1)
