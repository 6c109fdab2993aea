"""Evidence across windows: a change-point scan per column statistic, with a stream-level false-alarm level.

One window of 500 rows cannot show a binary rate moving by 3-5 points or a column moving by 0.1 sd; the
3 000 rows after such a shift can. :class:`ShiftScan` keeps, per statistic (the mean reference placement of
a numeric column's values, the share of each category of a categorical column), the count and sum of every
window since the fit, and after each window asks: *is there a start window j such that windows j..now differ
from everything before them?* That is the generalised likelihood ratio scan for a persistent change of a
mean (Siegmund & Venkatraman 1995), in Gaussian form:

    z(j) = (mean of windows j..now - mean before j) / sqrt(v (1/M + 1/N))

where "before j" pools the reference rows with the stream's own rows before j (under no drift both are
draws of the same distribution, so the pooled baseline is the sharpest one there is) and ``v`` is the per-row
variance of the statistic in the reference. The reference is a finite sample: it enters as ``N`` rows of
that pool, so its own sampling error is in the denominator (a two-sample z) and a small reference bias
cannot add up, window after window, into an alarm. The start ``j`` ranges over the last
:data:`LOOKBACK` windows and the start of the stream, so the memory is bounded and a slow trend away from
the reference is still tested against the reference alone.

False alarms. Under no drift the z's are Gaussian; the largest |z(j)| over every start and every end within
:data:`LOOKBACK` windows has a distribution that does not depend on the window or reference sizes (checked
by simulation from an exact reference to one four times smaller than a window: a finite reference lowers
the quantiles by at most 0.05, so the table, simulated with an exact one, is on the safe side). Its upper quantiles were
simulated once (4 million streams, :func:`simulate_null_max`) and are :data:`_TABLE`; a statistic alarms when
its |z| passes the quantile for ``alpha / (number of statistics)``, so the probability that a clean stream
of :data:`LOOKBACK` windows alarms at all is at most ``alpha`` (Bonferroni over the statistics; longer
streams: about ``alpha`` per :data:`LOOKBACK` windows). Everything is vectorised over the statistics.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from statistics import NormalDist
from typing import Any

import numpy as np

from ._stats import normal_sf

LOOKBACK = 20  # windows a segment may start back from the current one (besides the stream's start)
MIN_SEGMENT_ROWS = 30  # a segment of fewer values is too small for the Gaussian form: not tested
_Z95 = 1.959963984540054
_POSITIVE = {"1.0", "1", "true", "yes"}

# log10(P) -> the (1 - P) quantile of max |z| over every segment of a clean stream of LOOKBACK windows;
# simulated: simulate_null_max(4_000_000, seed=20261205, chunk=250_000) (see docs/drift.md, "Small persistent shifts")
_TABLE_LOG10_P = np.arange(-1.0, -5.01, -0.25)[::-1]
_TABLE_Z = np.array(
    [
        3.1025,
        3.3001,
        3.4832,
        3.6533,
        3.8151,
        3.9669,
        4.1136,
        4.2538,
        4.3888,
        4.5213,
        4.6430,
        4.7644,
        4.8931,
        5.0123,
        5.1323,
        5.2448,
        5.3647,
    ]
)[::-1]
# beyond the table: P(max > z) ~ 2 (1 - Phi(z)) exp(a) z^b, fitted to the table (within 0.012 in z there)
_TAIL_A, _TAIL_B = 2.35889148, 1.43087558


def scan_threshold(p: float) -> float:
    """The |z| that the scan's maximum over a clean stream of :data:`LOOKBACK` windows passes with prob. ``p``."""
    if not 0.0 < p < 1.0:
        raise ValueError(f"p must be in (0, 1), got {p}")
    lp = math.log10(p)
    if lp >= _TABLE_LOG10_P[0]:
        return float(np.interp(lp, _TABLE_LOG10_P, _TABLE_Z))  # (p above 0.1: the 0.1 value, conservative)
    z = float(_TABLE_Z[0])
    for _ in range(60):  # fixed point of z = Phi^-1(1 - p / (2 exp(a) z^b)): a contraction for z > 1
        z = -NormalDist().inv_cdf(p / (2.0 * math.exp(_TAIL_A) * z**_TAIL_B))
    return z


def scan_pvalue(z: float) -> float:
    """P(the scan's maximum over a clean stream of :data:`LOOKBACK` windows exceeds ``|z|``), the inverse of
    :func:`scan_threshold` (1 below the table's first value: such a z is never an alarm)."""
    z = abs(z)
    if _TABLE_Z[-1] <= z <= _TABLE_Z[0]:
        return float(10 ** np.interp(z, _TABLE_Z[::-1], _TABLE_LOG10_P[::-1]))
    z = max(z, 1.0)
    return min(1.0, 2.0 * normal_sf(z) * math.exp(_TAIL_A) * float(z**_TAIL_B))  # the fitted tail


def simulate_null_max(streams: int, seed: int = 0, windows: int = LOOKBACK, chunk: int = 100_000) -> np.ndarray:
    """Max |z| over every segment of ``streams`` clean Gaussian streams of ``windows`` equal windows.

    The null law of the scan with an exact baseline; with a finite reference pooled into the baseline the
    quantiles are lower by at most 0.05 (reference 4x smaller than a window), so the table is on the safe
    side. Used to build :data:`_TABLE_Z`
    and by the tests.
    """
    rng = np.random.default_rng(seed)
    out = []
    for start in range(0, streams, chunk):
        u = rng.standard_normal((min(chunk, streams - start), windows))
        cs = np.concatenate([np.zeros((len(u), 1)), np.cumsum(u, axis=1)], axis=1)
        best = np.zeros(len(u))
        for k in range(1, windows + 1):
            j = np.arange(k)
            np.maximum(best, (np.abs(cs[:, k : k + 1] - cs[:, j]) / np.sqrt(k - j)).max(axis=1), out=best)
        out.append(best)
    return np.concatenate(out)


@dataclass(frozen=True)
class StatRow:
    """One statistic the scan follows, as the reference shows it (see :class:`Baseline` for the fields)."""

    column: str
    label: str
    kind: str
    mean: float
    var: float
    n: float
    raw_mean: float
    raw_sd: float
    given: bool = False
    scale: float | None = None  # None: sqrt(var)


@dataclass(frozen=True)
class Baseline:
    """Per statistic: what the reference says (one row per numeric column, one per tracked category).

    ``mean`` is the statistic's reference value (0.5 for placements, the category's share for rates),
    ``var`` its per-row variance, ``n`` the reference values behind it; ``raw_mean``/``raw_sd`` turn a
    placement shift back into the column's units for the report (rates: 0 and 1).

    A statistic ``given`` the other columns is a column's residual from its prediction by the others
    (``_conditional.py``): its raw values are the residuals themselves (``raw_mean`` = ``mean``, ``raw_sd``
    the column's own score sd). ``scale`` is the per-row sd the effect floor is measured in: the statistic's
    own (``sqrt(var)``) unless given, the column's own for a residual, whose variance is only what the
    others leave unexplained (a floor in that unit would let a trivial shift of a well-predicted column page).
    """

    columns: tuple[str, ...]
    labels: tuple[str, ...]  # "" for a numeric column, the category for a rate
    kinds: tuple[str, ...]  # "location" | "rate"
    mean: np.ndarray
    var: np.ndarray
    n: np.ndarray
    raw_mean: np.ndarray
    raw_sd: np.ndarray
    given: tuple[bool, ...] = ()  # empty: none is
    scale: np.ndarray | None = None  # None: sqrt(var)

    @classmethod
    def of(cls, rows: Sequence[StatRow]) -> Baseline:
        """The baseline of ``rows``, in their order."""

        def arr(name: str) -> np.ndarray:
            return np.array([getattr(r, name) for r in rows], dtype=float)

        return cls(
            columns=tuple(r.column for r in rows),
            labels=tuple(r.label for r in rows),
            kinds=tuple(r.kind for r in rows),
            mean=arr("mean"),
            var=arr("var"),
            n=arr("n"),
            raw_mean=arr("raw_mean"),
            raw_sd=arr("raw_sd"),
            given=tuple(r.given for r in rows),
            scale=np.array([math.sqrt(r.var) if r.scale is None else r.scale for r in rows], dtype=float),
        )

    @property
    def given_mask(self) -> np.ndarray:
        return np.array(self.given or (False,) * len(self.columns), dtype=bool)

    @property
    def floor_scale(self) -> np.ndarray:
        return np.sqrt(self.var) if self.scale is None else self.scale

    def fingerprint(self) -> str:
        """Digest of the reference statistics: a saved scan is only resumed against the same reference."""
        given = [bool(g) for g in self.given_mask]
        blob = json.dumps(
            [self.columns, self.labels, [round(float(x), 12) for x in np.concatenate([self.mean, self.var, self.n])]]
            + ([given] if any(given) else [])
        )
        return hashlib.sha256(blob.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class ShiftAlarm:
    """The strongest segment of one statistic after the latest window."""

    column: str
    label: str
    kind: str
    given: bool  # the column's residual given the other columns (see Baseline)
    z: float
    threshold: float
    drift: bool
    start_window: int  # first window of the segment (0 = the first window after the fit)
    windows: int
    rows: int
    shift: float  # rate: points of share (0..1); location: the column's mean shift in reference sd
    ci_low: float
    ci_high: float
    placement_shift: float  # location: mean reference placement minus its baseline (AUC - 0.5)
    effect: float  # the statistic's shift in its own reference sd (the floor applies to it)

    def to_dict(self) -> dict[str, Any]:
        return {
            "test": "sequential-scan",
            "kind": self.kind,
            **({"category": self.label} if self.label else {}),
            **({"given": "the other columns"} if self.given else {}),
            "z": self.z,
            "threshold": self.threshold,
            "drift": self.drift,
            "start_window": self.start_window,
            "windows": self.windows,
            "rows": self.rows,
            "shift": self.shift,
            "ci95": [self.ci_low, self.ci_high],
            "effect_sd": self.effect,
            **({"auc_shift": self.placement_shift} if self.kind == "location" and not self.given else {}),
        }


class ShiftScan:
    """Accumulates per-window counts and sums of each statistic and scans them (see the module docstring).

    >>> import numpy as np
    >>> base = Baseline(("y",), ("1",), ("rate",), np.array([0.3]), np.array([0.21]), np.array([2000.0]),
    ...                 np.array([0.0]), np.array([1.0]))
    >>> scan = ShiftScan(base, alpha=0.01, min_effect=0.05)
    >>> rng = np.random.default_rng(0)
    >>> [bool(scan.update(np.array([500.0]), np.array([rng.binomial(500, 0.3 + 0.06 * (w >= 4))]),
    ...                   np.array([0.0]))[0].drift) for w in range(10)]
    [False, False, False, False, True, True, True, True, True, True]
    """

    def __init__(self, baseline: Baseline, alpha: float, min_effect: float = 0.0) -> None:
        self.baseline = baseline
        self.alpha = alpha
        self.min_effect = min_effect
        self.threshold = scan_threshold(alpha / max(len(baseline.columns), 1))
        self.reset()

    def reset(self) -> None:
        s = len(self.baseline.columns)
        self.windows = 0
        self.first_alarm: int | None = None
        self._head = np.zeros((3, s))  # count, sum, raw sum of the windows older than the lookback
        self._recent: list[np.ndarray] = []  # per window: (3, s)

    def update(self, count: np.ndarray, total: np.ndarray, raw_total: np.ndarray) -> list[ShiftAlarm]:
        """Add one window (per statistic: values seen, sum of the statistic, sum of raw values); scan."""
        self._recent.append(np.stack([count, total, raw_total]).astype(float))
        if len(self._recent) > LOOKBACK:
            self._head += self._recent.pop(0)
        self.windows += 1
        alarms = self._scan()
        if self.first_alarm is None and any(a.drift for a in alarms):
            self.first_alarm = self.windows - 1
        return alarms

    def _scan(self) -> list[ShiftAlarm]:
        b = self.baseline
        rec = np.stack(self._recent)  # (r, 3, s)
        r = len(rec)
        before = np.concatenate([np.zeros((1, 3, rec.shape[2])), np.cumsum(rec, axis=0)[:-1]])  # (r, 3, s)
        total = self._head + rec.sum(axis=0)  # (3, s): everything since the fit
        post = total - self._head - before  # segments starting at each recent window
        pre = self._head + before
        starts = self.windows - r + np.arange(r)
        if self._head[0].any():  # the stream's start, against the reference alone
            post = np.concatenate([total[None], post])
            pre = np.concatenate([np.zeros((1, 3, rec.shape[2])), pre])
            starts = np.concatenate([[0], starts])
        pre_n = b.n + pre[:, 0]
        pre_mean = (b.n * b.mean + pre[:, 1]) / pre_n
        post_n = np.maximum(post[:, 0], 1.0)
        with np.errstate(divide="ignore", invalid="ignore"):
            se_unit = np.sqrt(1.0 / post_n + 1.0 / pre_n)
            z = (post[:, 1] / post_n - pre_mean) / (np.sqrt(b.var) * se_unit)
        z = np.where((post[:, 0] >= MIN_SEGMENT_ROWS) & np.isfinite(z), z, 0.0)
        best = np.argmax(np.abs(z), axis=0)
        cols = np.arange(z.shape[1])
        zb = z[best, cols]
        post_b, pre_b, se_b = post[best, :, cols], pre[best, :, cols], se_unit[best, cols]  # (s, 3), (s, 3), (s,)
        pre_nb = b.n + pre_b[:, 0]
        pn = np.maximum(post_b[:, 0], 1.0)
        raw_post = post_b[:, 2] / pn
        raw_pre = (b.n * b.raw_mean + pre_b[:, 2]) / pre_nb
        rate = np.array([k == "rate" for k in b.kinds])
        given = b.given_mask
        sd = np.where(b.raw_sd > 0, b.raw_sd, 1.0)
        placement = post_b[:, 1] / pn - pre_mean[best, cols]
        shift = np.where(rate, placement, (raw_post - raw_pre) / sd)
        # the interval in the shift's unit: a rate's points, a residual's column sd; a placement's z in sd as is
        half = _Z95 * se_b * np.where(rate, np.sqrt(b.var), np.where(given, np.sqrt(b.var) / sd, 1.0))
        # in sd of the statistic (of the column itself for a residual): about the shift in sd of a normal column
        effect = placement / b.floor_scale
        out = []
        for i in range(len(cols)):
            start = int(starts[best[i]])
            out.append(
                ShiftAlarm(
                    column=b.columns[i],
                    label=b.labels[i],
                    kind=b.kinds[i],
                    given=bool(given[i]),
                    z=float(zb[i]),
                    threshold=self.threshold,
                    drift=bool(abs(zb[i]) > self.threshold and abs(effect[i]) >= self.min_effect),
                    start_window=start,
                    windows=self.windows - start,
                    rows=int(post_b[i, 0]),
                    shift=float(shift[i]),
                    ci_low=float(shift[i] - half[i]),
                    ci_high=float(shift[i] + half[i]),
                    placement_shift=0.0 if rate[i] or given[i] else float(placement[i]),
                    effect=float(effect[i]),
                )
            )
        return out

    # ---- persistence -------------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """JSON-safe: the window count, the first alarm, and the per-window sums still in the lookback."""
        return {
            "fingerprint": self.baseline.fingerprint(),
            "windows": self.windows,
            "first_alarm": self.first_alarm,
            "head": self._head.tolist(),
            "recent": [w.tolist() for w in self._recent],
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> bool:
        """Resume a saved scan; False (and a fresh scan) when it was taken against another reference."""
        if state.get("fingerprint") != self.baseline.fingerprint():
            self.reset()
            return False
        s = len(self.baseline.columns)
        self.windows = int(state["windows"])
        first = state.get("first_alarm")
        self.first_alarm = None if first is None else int(first)
        self._head = np.asarray(state["head"], dtype=float).reshape(3, s)
        self._recent = [np.asarray(w, dtype=float).reshape(3, s) for w in state.get("recent", [])][-LOOKBACK:]
        return True


def rate_baseline_rows(
    column: str, categories: Sequence[str], counts: np.ndarray, max_categories: int = 10
) -> list[StatRow]:
    """The rates of the categories a categorical column's scan tracks (share, its variance, n).

    A binary column needs one rate (the other is its complement: the positive class ``1``/``true``/``yes``
    when there is one, else the rarer); otherwise each of the ``max_categories``
    most frequent categories is a rate of its own (each counts in the Bonferroni split).
    """
    n = float(counts.sum())
    if n == 0 or len(categories) < 2:
        return []
    if len(categories) == 2:  # one rate: the positive class when it is named so, else the rarer one
        positive = [i for i, k in enumerate(categories) if str(k).lower() in _POSITIVE]
        order = np.array(positive[:1] or [int(np.argmin(counts))])
    else:
        order = np.argsort(-counts, kind="stable")[:max_categories]
    rows = []
    for i in order:
        p = float(counts[i]) / n
        if 0.0 < p < 1.0:
            rows.append(StatRow(column, str(categories[i]), "rate", p, p * (1.0 - p), n, p, 1.0))
    return rows
