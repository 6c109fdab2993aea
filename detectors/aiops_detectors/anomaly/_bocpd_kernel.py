"""The ``bocpd`` detector's per-point update as one compiled function over one flat state array.

Why a kernel: in numpy each point of ``bocpd`` cost ~65 µs, a dozen array operations over the R = 500 run
lengths plus the Python of the likelihood and the debounce. Compiled with numba (no fast-math, so results
are IEEE-exact and the same on every machine) the same recursion costs a few µs, and the batch path
(``score``) and a daemon tick over many series (``step_rows``) run entirely inside the kernel. Streaming,
batch and tick call the same compiled ``_step``, so their scores are identical by construction.

Three rewrites of the arithmetic make a hypothesis cost one ``log`` and at most one ``exp`` instead of
four transcendental calls:

- The run-length posterior is kept as log-probabilities (no ``log`` of it at each point). A hypothesis
  whose probability underflows to 0 is set to ``-inf``, as it would be in linear probabilities.
- With ``q = 2 (kappa + 1) / kappa`` the Student-t predictive's scale satisfies ``df * s2 = q beta`` and
  ``df * s2 + d^2 = q beta'``, where ``beta'`` is the posterior's next ``beta``; so its log density is
  ``c_r + alpha log(beta) - (alpha + 1/2) log(beta')`` with ``c_r = lgamma(alpha + 1/2) - lgamma(alpha) -
  log(q pi) / 2`` a table, and ``log(beta')`` is the next point's ``log(beta)`` (stored alongside ``beta``).
- A joint more than e^50 below the largest is not added to the evidence (all of them together weigh less
  than 1e-19 against an evidence of at least 1): on a quiet series that skips ~70 % of the ``exp``.

Scores agree with the numpy implementation (kept as a plain-Python reference in the tests) to ~1e-13.

Layout. Parameters: ``N_PARAMS`` scalars, then the tables ``c_r``, ``kgain_r = kappa / (2 (kappa + 1))`` and
``1 / (kappa + 1)`` (r = 0 .. R-1), built once per parameter set. State: a header of scalars, then the
log-probability, mean, beta and log-beta of the R run lengths (index r = run length r; only the first
``S_M`` are live), the ring of the likelihood's ``short`` last surprises, and the ring of its ``history``
last averages.
"""

from __future__ import annotations

import functools
import math
from typing import TYPE_CHECKING

import numpy as np

from aiops_detectors.anomaly._jit import njit
from aiops_detectors.anomaly._kernel_parts import NEVER as _NEVER
from aiops_detectors.anomaly._kernel_parts import debounce

if TYPE_CHECKING:  # the parameters' class imports this kernel
    from aiops_detectors.anomaly.bocpd import BocpdParams

# parameters
P_HAZARD, P_R, P_KAPPA0, P_ALPHA0, P_SALPHA, P_MAXSUR, P_LOGH, P_LOG1MH = range(8)
P_SHORT, P_HIST, P_MINSTD, P_LEARN, P_WARMUP, P_REST, P_LEVEL, P_COOLDOWN, P_COOLLEVEL, P_DECADES = range(8, 18)
N_PARAMS = 18

# scalar state: run-length model, likelihood (short ring, history ring), debounce
S_N, S_LEVEL, S_DEV, S_M, S_RAW = range(5)
S_SEEN, S_SSUM, S_SN, S_SPOS, S_HN, S_HPOS, S_S1, S_S2, S_SINCE = range(5, 14)
HEADER = 16

MEANAD_TO_SIGMA = 1.2533
SHORT_RUN = 5  # runs this short mean "a change just happened" (the changepoint probability in the evidence)
_LOG_PI = math.log(math.pi)
_SQRT2 = math.sqrt(2.0)
_NEGLIGIBLE = -50.0  # log of a joint, relative to the largest, below which it is not added to the evidence
# exp(x) is 0 for x <= this (the joint of a hypothesis underflows). Tested as a comparison, not as
# exp(x) == 0: LLVM speculates a call to exp out of a rarely taken branch, and exp is what costs here.
_UNDERFLOW = -745.1332191019412


@functools.lru_cache(maxsize=16)
def _tables(max_run: int, kappa0: float, alpha0: float) -> np.ndarray:
    """``c_r``, ``kgain_r`` and ``1 / (kappa_r + 1)`` for r = 0 .. R-1."""
    r = np.arange(max_run, dtype=float)
    kappa = kappa0 + r
    alpha = alpha0 + 0.5 * r
    lgam = np.array([math.lgamma(a + 0.5) - math.lgamma(a) for a in alpha.tolist()])
    const = lgam - 0.5 * np.log(2.0 * (kappa + 1.0) / kappa) - 0.5 * _LOG_PI
    kgain = kappa / (2.0 * (kappa + 1.0))
    out = np.concatenate([const, kgain, 1.0 / (kappa + 1.0)])
    out.flags.writeable = False
    return out


def make_params(params: BocpdParams) -> np.ndarray:
    """The parameter vector (scalars, then the tables) of a detector's parameters."""
    q = params
    p = np.zeros(N_PARAMS)
    hazard = 1.0 / float(q.hazard_lambda)
    p[P_HAZARD], p[P_R], p[P_KAPPA0], p[P_ALPHA0] = hazard, q.max_run, q.kappa0, q.alpha0
    p[P_SALPHA], p[P_MAXSUR], p[P_LOGH], p[P_LOG1MH] = (
        q.scale_alpha,
        q.max_surprise,
        math.log(hazard),
        math.log1p(-hazard),
    )
    p[P_SHORT], p[P_HIST], p[P_MINSTD], p[P_LEARN] = q.short, q.history, q.min_std, q.learn
    p[P_WARMUP], p[P_REST], p[P_LEVEL], p[P_COOLDOWN] = q.warmup, q.rest, q.alert_level, q.cooldown
    p[P_COOLLEVEL], p[P_DECADES] = q.cooldown_level, 6.0
    return with_tables(p)


def with_tables(scalars: np.ndarray) -> np.ndarray:
    """The full parameter vector (scalars, then the tables) from its ``N_PARAMS`` scalars."""
    p = np.asarray(scalars, dtype=float)[:N_PARAMS]
    return np.concatenate([p, _tables(int(p[P_R]), float(p[P_KAPPA0]), float(p[P_ALPHA0]))])


def offsets(p: np.ndarray) -> tuple[int, int, int, int, int, int]:
    """Start of log-probability, mean, beta, log-beta, short ring, history ring in the state."""
    big_r = int(p[P_R])
    lp = HEADER
    return lp, lp + big_r, lp + 2 * big_r, lp + 3 * big_r, lp + 4 * big_r, lp + 4 * big_r + int(p[P_SHORT])


def state_len(p: np.ndarray) -> int:
    return HEADER + 4 * int(p[P_R]) + int(p[P_SHORT]) + int(p[P_HIST])


def new_state(p: np.ndarray) -> np.ndarray:
    st = np.zeros(state_len(p))
    lp, _, be, _, _, _ = offsets(p)
    st[S_M] = 1.0  # one hypothesis of probability 1 (log 0), its prior set by the first point
    st[lp] = 0.0
    st[be] = 1.0
    st[S_SINCE] = _NEVER
    return st


@njit
def _scale(level: float, dev: float) -> float:
    return max(MEANAD_TO_SIGMA * dev, 1e-6 * abs(level), 1e-9)


@njit
def _runs(st: np.ndarray, p: np.ndarray, x: float) -> float:
    """Feed x to the run-length posterior; return the capped surprise -log p(x | past) / scale, in nats."""
    big_r = int(p[P_R])
    lp = HEADER
    mu = lp + big_r
    be = mu + big_r
    lb = be + big_r
    cst = N_PARAMS
    kg = N_PARAMS + big_r
    kinv = N_PARAMS + 2 * big_r
    alpha0 = p[P_ALPHA0]
    n = st[S_N]
    if n == 0.0:
        st[S_LEVEL] = x
        s = _scale(x, st[S_DEV])
        st[mu] = x
        st[be] = alpha0 * s * s
        st[lb] = math.log(st[be])
    m = int(st[S_M])
    # pass 1, from the longest run down: predictive log density + log prior -> log joint; the grown
    # hypothesis r + 1 is written over r + 1 (already read); the run that leaves at R is kept aside
    top = -math.inf
    last = -math.inf
    for r in range(m - 1, -1, -1):
        d = x - st[mu + r]
        bn = st[be + r] + p[kg + r] * d * d
        lbn = math.log(bn)
        a = alpha0 + 0.5 * r
        lj = p[cst + r] + a * st[lb + r] - (a + 0.5) * lbn + st[lp + r]
        if lj > top:
            top = lj
        if r + 1 < big_r:
            st[lp + r + 1] = lj
            st[mu + r + 1] = st[mu + r] + d * p[kinv + r]
            st[be + r + 1] = bn
            st[lb + r + 1] = lbn
        else:
            last = lj
    # pass 2: the evidence. A joint below e^-50 of the largest adds less than 1e-19 to it (under one ulp):
    # only the others are listed (without a branch, which LLVM would turn into an exp for every one)
    top_new = min(m, big_r - 1)
    listed = np.empty(top_new, np.int64)
    k = 0
    for r in range(1, top_new + 1):
        listed[k] = r
        k += st[lp + r] - top > _NEGLIGIBLE
    evidence = 0.0
    for j in range(k):
        evidence += math.exp(st[lp + listed[j]] - top)
    if m == big_r:
        evidence += math.exp(last - top)
        # runs of R - 1 and more are one hypothesis, described by the last R - 1 points
        if last - top <= _UNDERFLOW:
            last = -math.inf
        a, b = st[lp + big_r - 1], last
        if a == -math.inf:
            st[lp + big_r - 1] = b
        elif b != -math.inf:
            st[lp + big_r - 1] = max(a, b) + math.log1p(math.exp(-abs(a - b)))
    level, dev = st[S_LEVEL], st[S_DEV]
    log_ev = math.log(evidence)
    surprise = float(min(-(log_ev + top) - math.log(_scale(level, dev)), p[P_MAXSUR]))
    # pass 3: normalise the grown hypotheses (times 1 - H, over the evidence)
    # a hypothesis whose joint underflows is dead (-inf), as it would be with probabilities
    shift = top + log_ev - p[P_LOG1MH]
    for r in range(1, top_new + 1):
        v = st[lp + r]
        if v - top <= _UNDERFLOW:
            st[lp + r] = -math.inf
        else:
            st[lp + r] = v - shift
    # the robust level and scale, then the prior of the newborn hypothesis r = 0
    res = x - level
    if n >= 30.0:  # a point far out moves level and scale only as much as one at 5 scales
        lim = 5.0 * _scale(level, dev)
        res = max(-lim, min(lim, res))
    rate = max(p[P_SALPHA], 1.0 / (n + 1.0))
    level += rate * res
    if n > 0.0:
        dev += rate * (abs(res) - dev)
    st[S_LEVEL], st[S_DEV] = level, dev
    s = _scale(level, dev)
    st[lp] = p[P_LOGH]
    st[mu] = level
    st[be] = alpha0 * s * s
    st[lb] = math.log(st[be])
    st[S_M] = top_new + 1.0
    st[S_N] = n + 1.0
    return surprise


@njit
def _likelihood(st: np.ndarray, p: np.ndarray, raw: float) -> float:
    """HTM-style anomaly likelihood of the ``short``-point average of the raw score (``Likelihood``)."""
    seen = st[S_SEEN]
    learn = p[P_LEARN]
    if seen < learn:
        st[S_SEEN] = seen + 1.0
        return 0.0
    short, history = int(p[P_SHORT]), int(p[P_HIST])
    big_r = int(p[P_R])
    sh = HEADER + 4 * big_r
    hi = sh + short
    sn = st[S_SN]
    spos = int(st[S_SPOS])
    old = st[sh + spos] if sn == short else 0.0
    st[sh + spos] = raw
    st[S_SPOS] = (spos + 1) % short
    if sn < short:
        sn += 1.0
        st[S_SN] = sn
    st[S_SSUM] += raw - old
    avg = st[S_SSUM] / sn
    score = 0.0
    n = st[S_HN]
    if seen >= learn + p[P_WARMUP] and n > 1:
        mean = st[S_S1] / n
        var = max(st[S_S2] / n - mean * mean, 0.0)
        std = max(math.sqrt(var) + 1e-4 * abs(mean), p[P_MINSTD]) + 1e-12
        tail = 0.5 * math.erfc(((avg - mean) / std) / _SQRT2)
        if tail < 1.0:
            score = min(1.0, -math.log10(tail + 1e-300) / p[P_DECADES])
    hpos = int(st[S_HPOS])
    full = n == history
    ev = st[hi + hpos]
    st[hi + hpos] = avg
    st[S_HPOS] = (hpos + 1) % history
    if not full:
        st[S_HN] = n + 1.0
    st[S_S1] += avg
    st[S_S2] += avg * avg
    if full:
        st[S_S1] -= ev
        st[S_S2] -= ev * ev
    st[S_SEEN] = seen + 1.0
    return score


@njit
def _step(st: np.ndarray, p: np.ndarray, x: float) -> float:
    raw = _runs(st, p, x)
    st[S_RAW] = raw
    return debounce(st, S_SINCE, p, P_REST, _likelihood(st, p, raw))


@njit
def step(st: np.ndarray, p: np.ndarray, x: float) -> float:
    """One point (finite by contract: the caller drops NaN/inf without touching the state)."""
    return _step(st, p, x)


@njit
def step_runs(st: np.ndarray, p: np.ndarray, x: float) -> float:
    """The run-length posterior alone (``RunLength.update``): the surprise, likelihood and debounce untouched."""
    return _runs(st, p, x)


@njit
def run(st: np.ndarray, p: np.ndarray, xs: np.ndarray, out: np.ndarray) -> None:
    """A whole series through ``_step``; non-finite values score 0 and are skipped, as in streaming."""
    for k in range(len(xs)):
        x = xs[k]
        if math.isfinite(x):
            out[k] = _step(st, p, x)
        else:
            out[k] = 0.0


@njit
def step_rows(bank: np.ndarray, p: np.ndarray, rows: np.ndarray, xs: np.ndarray, out: np.ndarray) -> None:
    """One finite point for each of many series whose states are rows of ``bank`` (a daemon tick)."""
    for k in range(len(rows)):
        out[k] = _step(bank[rows[k]], p, xs[k])
