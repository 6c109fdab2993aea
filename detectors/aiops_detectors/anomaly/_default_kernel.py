"""The ``default`` detector's per-point update as one compiled function over one flat state array.

Why a kernel: in Python, each point of ``default`` cost ~120 µs, mostly interpreter overhead around two
small k-NN searches (deques, lists, a numpy call per scale) and four likelihood updates. Compiled with numba
the same arithmetic costs a few µs, so a daemon tick over 10 000 series fits in ~100 ms and the batch path
(``score``) runs the whole series inside the kernel. Streaming and batch call the same compiled ``_step``,
so their scores are identical by construction, not by tolerance.

Why one flat ``float64`` array: a numba call pays a type check per argument, so the whole state (scalars,
the value history the shape windows are cut from, the sorted value memory, every likelihood's ring) lives
in one array with a fixed layout computed from the parameters; saving and restoring a scorer is one
``tolist()`` and one ``np.asarray``.

Memory layout. The shape banks of the Python version (``memory x lags`` copies of windows per scale) are
not stored: every past shape is a window of the series itself, so one history of the last
``memory + 2 * max(lags) + 1`` values serves both scales (written twice, ``H`` apart, so that every window is
contiguous). That cuts a series' state from ~0.5 MB to ~0.2 MB, most of it the likelihood histories.

The arithmetic follows the Python classes it replaces (``KnnShape``, ``Likelihood``, ``Debounce``,
``EwmaScorer``, and ``ValueNovelty`` in ``tests/kernel_refs``) operation by operation; only the order of
the additions inside one squared distance differs, so scores agree with them to ~1e-12 (checked in the
tests).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

from aiops_detectors.anomaly._jit import njit, prefetch
from aiops_detectors.anomaly._kernel_parts import NEVER as _NEVER
from aiops_detectors.anomaly._kernel_parts import debounce
from aiops_detectors.anomaly._tail_kernel import (
    T_B,
    T_BINS,
    TAIL_BINS,
    TAIL_LEN,
    new_block,
    tail_add,
    tail_probability,
    tail_rebalance,
)

if TYPE_CHECKING:  # the parameters' class imports this kernel
    from aiops_detectors.anomaly.ensemble import DefaultParams

# parameters (one float64 vector, built by :func:`make_params`)
P_LAGS, P_LONG, P_MEM, P_ALPHA, P_VMEM, P_HIST, P_WARMUP, P_MINSTD, P_VMINSTD, P_LEARN = range(10)
P_REST, P_LEVEL, P_COOLDOWN, P_COOLLEVEL, P_EXT, P_DECADES, P_TAIL = range(10, 17)
N_PARAMS = 17

# scalar state
S_N, S_STEP, S_PREV, S_LO, S_HI, S_VPEND, S_VCOUNT, S_VPOS, S_SINCE = range(9)
S_BMEAN, S_BDEV, S_BN, S_BZ, S_NCOMP = range(9, 14)
COMP0 = 16  # first component block
C_RAW, C_SUR, C_SEEN, C_S1, C_S2, C_SSUM, C_HN, C_HPOS = range(8)
COMP_FIELDS = 8
MAX_COMP = 4
HEADER = COMP0 + MAX_COMP * COMP_FIELDS

_SQRT2 = math.sqrt(2.0)
_PERIOD = 64  # points between exact recomputations of the sliding distances
_BAND_ALPHA, _BAND_BETA, _BAND_Z, _BAND_MIN_POINTS, _MEANAD_TO_SIGMA = 0.05, 0.02, 5.0, 30, 1.2533


def make_params(params: DefaultParams) -> np.ndarray:
    """The parameter vector of a detector's parameters (``seasonal``: a Holt-Winters residual comes in).

    ``tail`` > 0: each likelihood reads a peaks-over-threshold tail above its top ``tail`` fraction
    (``_tail_kernel``) instead of a Gaussian; ``decades``: the tail probability ``10**-decades`` scores 1."""
    q = params
    p = np.zeros(N_PARAMS)
    p[P_LAGS], p[P_LONG], p[P_MEM], p[P_ALPHA] = q.lags, q.long_lags, q.memory, q.step_alpha
    p[P_VMEM], p[P_HIST], p[P_WARMUP], p[P_MINSTD] = q.value_memory, q.history, q.warmup, q.min_std
    p[P_VMINSTD], p[P_LEARN], p[P_REST], p[P_LEVEL] = q.value_min_std, q.learn, q.rest, q.alert_level
    p[P_COOLDOWN], p[P_COOLLEVEL], p[P_EXT] = q.cooldown, q.cooldown_level, float(q.seasonal)
    p[P_DECADES], p[P_TAIL] = q.decades, q.tail
    return p


def history_len(p: np.ndarray) -> int:
    """Values kept for the shape windows: the oldest candidate window of the longest scale starts there."""
    return int(p[P_MEM]) + 2 * max(int(p[P_LAGS]), int(p[P_LONG])) + 1


def n_components(p: np.ndarray) -> int:
    return 1 + int(p[P_LONG] > 0) + int(p[P_VMEM] > 0) + int(p[P_EXT] > 0)


def state_len(p: np.ndarray) -> int:
    n_scales = 1 + int(p[P_LONG] > 0)
    return (
        HEADER
        + 2 * history_len(p)
        + n_scales * int(p[P_MEM])
        + 2 * int(p[P_VMEM])
        + n_components(p) * (int(p[P_HIST]) + tail_len(p))
    )


def tail_len(p: np.ndarray) -> int:
    """Floats of one component's tail histogram (none with the Gaussian likelihood)."""
    return TAIL_LEN if p[P_TAIL] > 0 else 0


def new_state(p: np.ndarray) -> np.ndarray:
    st = np.zeros(state_len(p))
    st[S_SINCE] = _NEVER
    st[S_NCOMP] = n_components(p)
    if p[P_TAIL] > 0:  # the tail blocks follow the likelihood histories
        t0 = len(st) - n_components(p) * TAIL_LEN
        for c in range(n_components(p)):
            st[t0 + c * TAIL_LEN : t0 + (c + 1) * TAIL_LEN] = new_block()
    return st


@njit
def _likelihood(
    st: np.ndarray, c: int, hist_off: int, tail_off: int, p: np.ndarray, min_std: float, raw: float
) -> float:
    """HTM-style anomaly likelihood with a short average of one point (``Likelihood(short=1)``); with
    ``p[P_TAIL]`` > 0 the tail probability comes from the block at ``tail_off`` (``_tail_kernel``)."""
    b = COMP0 + c * COMP_FIELDS
    history = int(p[P_HIST])
    seen = st[b + C_SEEN]
    learn = p[P_LEARN]
    if seen < learn:
        st[b + C_SEEN] = seen + 1.0
        return 0.0
    # the one-point short ring, with the running-sum arithmetic of the Python ring
    old = st[b + C_RAW] if seen > learn else 0.0
    st[b + C_SSUM] += raw - old
    avg = st[b + C_SSUM]
    score = 0.0
    n = st[b + C_HN]
    m_tail = p[P_TAIL]
    if m_tail > 0:
        if seen >= learn + p[P_WARMUP]:
            tail = tail_probability(st, tail_off, n, m_tail, min_std, avg)
            if tail < 1.0:
                score = min(1.0, -math.log10(tail + 1e-300) / p[P_DECADES])
    elif seen >= learn + p[P_WARMUP] and n > 1:
        mean = st[b + C_S1] / n
        var = max(st[b + C_S2] / n - mean * mean, 0.0)
        std = max(math.sqrt(var) + 1e-4 * abs(mean), min_std) + 1e-12
        tail = 0.5 * math.erfc(((avg - mean) / std) / _SQRT2)
        if tail < 1.0:
            score = min(1.0, -math.log10(tail + 1e-300) / p[P_DECADES])
    hpos = int(st[b + C_HPOS])
    full = n == history
    ev = st[hist_off + hpos]
    st[hist_off + hpos] = avg
    st[b + C_HPOS] = (hpos + 1) % history
    if not full:
        st[b + C_HN] = n + 1.0
    if m_tail > 0:
        tail_add(st, tail_off, avg, 1.0)
        if full:
            tail_add(st, tail_off, ev, -1.0)
        tail_rebalance(st, tail_off, st[b + C_HN], m_tail)
    else:
        st[b + C_S1] += avg
        st[b + C_S2] += avg * avg
        if full:
            st[b + C_S1] -= ev
            st[b + C_S2] -= ev * ev
    st[b + C_SEEN] = seen + 1.0
    return score


@njit
def _shape_raw(st: np.ndarray, xb: int, big_h: int, i: int, lags: int, memory: int, unit: float, doff: int) -> float:
    """log1p of the distance from the newest window to the nearest non-overlapping past window.

    ``st[doff : doff + memory]`` holds the squared distance to every candidate window, indexed by the
    candidate's end ``i - lags - memory + r``. A point later each distance changes by one term in and one
    out (the sliding sum along a diagonal of the matrix profile, as in STOMP): O(memory) a point instead
    of O(memory * lags). The sums of differences never cancel catastrophically (no ``a*a + b*b - 2ab``),
    and they are recomputed exactly every ``_PERIOD`` points so rounding cannot accumulate.

    Speed: every loop indexes views from 0 with its own counter (``ends[r]``, not ``h[r + lags]``): numba
    wraps a negative index around, and an offset it cannot prove non-negative costs a branch per element
    that keeps LLVM from vectorising the loop (4x slower here). The arithmetic and its order are unchanged.
    """
    if i + 1 < lags:
        return 0.0
    r0 = max(0, 2 * lags + memory - i - 1)  # candidates before r0 do not exist yet
    if memory - r0 < 10:  # a near-empty memory says nothing yet
        return 0.0
    top = xb + (i % big_h) + big_h  # position of index i; index t sits at top - (i - t)
    pa = top - lags - memory  # position of the end of candidate r = 0
    dist = st[doff : doff + memory]
    if i >= 2 * lags + memory and i % max(_PERIOD, lags) != 0:
        xi, xo = st[top], st[top - lags]
        ends = st[pa : pa + memory]  # candidate r's end, which enters its window
        starts = st[pa - lags : pa - lags + memory]  # the value lags before it, which leaves
        for r in range(memory):
            a = xi - ends[r]
            b = xo - starts[r]
            dist[r] = dist[r] + a * a - b * b
    else:
        m = memory - r0
        dist[:] = 0.0
        live = dist[r0:]
        for k in range(lags):
            qk = st[top - lags + 1 + k]
            elements = st[pa - lags + 1 + r0 + k : pa - lags + 1 + r0 + k + m]  # element k of each candidate
            for r in range(m):
                d = elements[r] - qk
                live[r] += d * d
    return math.log1p(math.sqrt(max(smallest(dist, r0), 0.0)) / (unit * math.sqrt(lags)))


@njit
def smallest(values: np.ndarray, start: int) -> float:
    """``min(values[start:])`` as the sequential ``if v < best: best = v`` scan gives it, NaN included.

    Why eight running minima: one minimum is a chain of dependent compare-and-selects (a cycle or more an
    element), and LLVM does not vectorise a float min reduction without fast-math. Eight independent
    lanes, each started at ``values[start]``, are packed into vector compares and give the same value: a
    minimum does not depend on the order it is taken in (and a NaN at ``start`` stays in every lane, as it
    stays in the sequential scan; later NaNs are skipped by both).
    """
    rest = values[start:]
    b0 = b1 = b2 = b3 = b4 = b5 = b6 = b7 = rest[0]
    n8 = (len(rest) - 1) // 8
    for j in range(n8):
        w = rest[1 + 8 * j : 9 + 8 * j]
        b0 = w[0] if w[0] < b0 else b0
        b1 = w[1] if w[1] < b1 else b1
        b2 = w[2] if w[2] < b2 else b2
        b3 = w[3] if w[3] < b3 else b3
        b4 = w[4] if w[4] < b4 else b4
        b5 = w[5] if w[5] < b5 else b5
        b6 = w[6] if w[6] < b6 else b6
        b7 = w[7] if w[7] < b7 else b7
    for v in (b1, b2, b3, b4, b5, b6, b7):
        b0 = v if v < b0 else b0
    for k in range(1 + 8 * n8, len(rest)):
        b0 = rest[k] if rest[k] < b0 else b0
    return float(b0)


@njit
def _value_raw(st: np.ndarray, vs: int, x: float, unit: float) -> float:
    cnt = int(st[S_VCOUNT])
    if cnt < 10:
        return 0.0
    i = np.searchsorted(st[vs : vs + cnt], x)
    dist = math.inf
    if i < cnt:
        dist = abs(x - st[vs + i])
    if i > 0:
        dist = min(dist, abs(x - st[vs + i - 1]))
    return math.log1p(dist / unit)


@njit
def _remember_value(st: np.ndarray, vr: int, vs: int, vmem: int, v: float) -> None:
    """Add ``v`` to the value memory; once full, the oldest value leaves. The sorted copy is updated by one
    shift of the values between the leaving and the arriving position (what ``del`` at ``bisect_left`` of
    the old value followed by ``insort`` of the new one produce, in a third of the moves)."""
    cnt = int(st[S_VCOUNT])
    if cnt < vmem:
        st[vr + cnt] = v
        j = np.searchsorted(st[vs : vs + cnt], v, side="right")
        _shift_right(st[vs + j : vs + cnt + 1])
        st[vs + j] = v
        st[S_VCOUNT] = cnt + 1
        return
    vpos = int(st[S_VPOS])
    old = st[vr + vpos]
    st[vr + vpos] = v
    st[S_VPOS] = (vpos + 1) % vmem
    d = np.searchsorted(st[vs : vs + cnt], old)  # the copy of ``old`` that leaves
    j = np.searchsorted(st[vs : vs + cnt], v, side="right")  # where ``v`` goes, counted with ``old`` present
    if j > d:  # close the gap left of v's place
        _shift_left(st[vs + d : vs + j])
        st[vs + j - 1] = v
    else:
        _shift_right(st[vs + j : vs + d + 1])
        st[vs + j] = v


@njit
def _shift_left(seg: np.ndarray) -> None:
    """``seg[k] = seg[k + 1]`` for every k but the last, in place. Indexed from 0 in a view so that numba
    has no negative index to wrap around and LLVM turns the loop into a ``memmove`` (about 5x faster)."""
    for k in range(len(seg) - 1):
        seg[k] = seg[k + 1]


@njit
def _shift_right(seg: np.ndarray) -> None:
    """``seg[k] = seg[k - 1]`` for every k but the first, last first (the mirror of :func:`_shift_left`)."""
    for k in range(len(seg) - 1, 0, -1):
        seg[k] = seg[k - 1]


@njit
def _band(st: np.ndarray, x: float) -> None:
    """The EWMA band of the evidence (``EwmaScorer`` with its defaults)."""
    bn = st[S_BN]
    if bn == 0:
        st[S_BMEAN] = x
        st[S_BN] = 1.0
        return
    mean, dev = st[S_BMEAN], st[S_BDEV]
    r = x - mean
    if bn >= _BAND_MIN_POINTS:
        scale = max(_MEANAD_TO_SIGMA * dev, 1e-6 * abs(mean), 1e-9)
        st[S_BZ] = r / scale
        lim = _BAND_Z * scale
        r = max(-lim, min(lim, r))
    st[S_BMEAN] = mean + _BAND_ALPHA * r
    if bn > 1:
        st[S_BDEV] = dev + _BAND_BETA * (abs(r) - dev)
    else:
        st[S_BDEV] = dev + abs(r)
    st[S_BN] = bn + 1.0


@njit
def _offsets(p: np.ndarray) -> tuple[int, int, int, int, int]:
    """Where a state's arrays start: ``(big_h, d0, vr, vs, hist0)``, the length of one copy of the value
    history (which starts at ``HEADER``), the sliding distances (the short scale's, then the long one's),
    the value ring, its sorted copy and the likelihoods' histories (the tail blocks follow those)."""
    lags, long_lags, memory, vmem = int(p[P_LAGS]), int(p[P_LONG]), int(p[P_MEM]), int(p[P_VMEM])
    big_h = memory + 2 * max(lags, long_lags) + 1  # = history_len(p)
    d0 = HEADER + 2 * big_h
    vr = d0 + memory * (1 + int(long_lags > 0))
    vs = vr + vmem
    return big_h, d0, vr, vs, vs + vmem


@njit
def _step(st: np.ndarray, p: np.ndarray, x: float, ext_raw: float) -> float:
    lags, long_lags, memory = int(p[P_LAGS]), int(p[P_LONG]), int(p[P_MEM])
    vmem, history = int(p[P_VMEM]), int(p[P_HIST])
    big_h, d0, vr, vs, hist0 = _offsets(p)
    xb = HEADER
    tlen = TAIL_LEN if p[P_TAIL] > 0 else 0
    tail0 = hist0 + int(st[S_NCOMP]) * history
    # shared running statistics: range, typical step
    n = st[S_N] + 1.0
    st[S_N] = n
    if n == 1.0:
        st[S_LO] = x
        st[S_HI] = x
    else:
        st[S_LO] = min(st[S_LO], x)
        st[S_HI] = max(st[S_HI], x)
        st[S_STEP] += max(p[P_ALPHA], 1.0 / (n - 1.0)) * (abs(x - st[S_PREV]) - st[S_STEP])
    st[S_PREV] = x
    i = int(n) - 1
    pos = i % big_h
    st[xb + pos] = x
    st[xb + pos + big_h] = x
    lo, hi = st[S_LO], st[S_HI]
    unit = max(st[S_STEP], 1e-9 * max(abs(lo), abs(hi)), 1e-12)
    c = 0
    best = 0.0
    # short scale, long scale, value, external (Holt-Winters residual), each through its likelihood
    raw = _shape_raw(st, xb, big_h, i, lags, memory, unit, d0)
    sur = _likelihood(st, c, hist0 + c * history, tail0 + c * tlen, p, p[P_MINSTD], raw)
    st[COMP0 + c * COMP_FIELDS + C_RAW] = raw
    st[COMP0 + c * COMP_FIELDS + C_SUR] = sur
    best = sur
    c += 1
    if long_lags > 0:
        raw = _shape_raw(st, xb, big_h, i, long_lags, memory, unit, d0 + memory)
        sur = _likelihood(st, c, hist0 + c * history, tail0 + c * tlen, p, p[P_MINSTD], raw)
        st[COMP0 + c * COMP_FIELDS + C_RAW] = raw
        st[COMP0 + c * COMP_FIELDS + C_SUR] = sur
        best = max(best, sur)
        c += 1
    if vmem > 0:
        raw = _value_raw(st, vs, x, unit)
        if n > 1.0:
            _remember_value(st, vr, vs, vmem, st[S_VPEND])
        st[S_VPEND] = x
        sur = _likelihood(st, c, hist0 + c * history, tail0 + c * tlen, p, p[P_VMINSTD], raw)
        st[COMP0 + c * COMP_FIELDS + C_RAW] = raw
        st[COMP0 + c * COMP_FIELDS + C_SUR] = sur
        best = max(best, sur)
        c += 1
    if p[P_EXT] > 0:
        sur = _likelihood(st, c, hist0 + c * history, tail0 + c * tlen, p, p[P_MINSTD], ext_raw)
        st[COMP0 + c * COMP_FIELDS + C_RAW] = ext_raw
        st[COMP0 + c * COMP_FIELDS + C_SUR] = sur
        best = max(best, sur)
    _band(st, x)
    return debounce(st, S_SINCE, p, P_REST, best)


@njit
def step(st: np.ndarray, p: np.ndarray, x: float, ext_raw: float) -> float:
    """One point (finite by contract: the caller drops NaN/inf without touching the state)."""
    return _step(st, p, x, ext_raw)


@njit
def run(st: np.ndarray, p: np.ndarray, xs: np.ndarray, out: np.ndarray) -> None:
    """A whole series through ``_step``; non-finite values score 0 and are skipped, as in streaming."""
    for k in range(len(xs)):
        x = xs[k]
        if math.isfinite(x):
            out[k] = _step(st, p, x, math.nan)
        else:
            out[k] = 0.0


@njit
def step_rows(bank: np.ndarray, p: np.ndarray, rows: np.ndarray, xs: np.ndarray, out: np.ndarray) -> None:
    """One finite point for each of many series whose states are rows of ``bank`` (a daemon tick).

    Why the prefetches: a tick comes back to a row long after the other series pushed it out of every
    cache, and a cold row cost 2 to 3 times its warm step, mostly waiting on misses the hardware
    prefetcher cannot foresee: the first lines of each array (the prefetcher starts over at every 4 KB
    page, and the rows are 217 KB apart), the scattered ring slots and histogram bins. So while one row
    steps, the lines the next row will touch are requested (:func:`_prefetch_row`), and the header they are
    found from is requested a row earlier still (:func:`_prefetch_header`). A prefetch is a hint: the
    scores and states are the same bits as without it.
    """
    n = len(rows)
    for k in range(n):
        if k + 2 < n:
            _prefetch_header(bank[rows[k + 2]], p)
        if k + 1 < n:
            _prefetch_row(bank[rows[k + 1]], p)
        out[k] = _step(bank[rows[k]], p, xs[k], math.nan)


@njit
def _prefetch_lines(st: np.ndarray, start: int, stop: int) -> None:
    """Every cache line of ``st[start:stop]``."""
    for q in range(start, stop, 8):  # 8 float64 a 64-byte line
        prefetch(st, q)
    prefetch(st, stop - 1)


@njit
def _prefetch_header(st: np.ndarray, p: np.ndarray) -> None:
    """The lines :func:`_prefetch_row` reads to find where a row's next step goes: the scalar header and
    the first line of each tail block (its boundary bin)."""
    _prefetch_lines(st, 0, HEADER)
    if p[P_TAIL] > 0:
        tail0 = _offsets(p)[4] + n_components_of(p) * int(p[P_HIST])
        for c in range(n_components_of(p)):
            prefetch(st, tail0 + c * TAIL_LEN)


@njit
def _prefetch_row(st: np.ndarray, p: np.ndarray) -> None:
    """The lines the next :func:`_step` of this row touches and can be told from its header: the window
    of the value history both shape scales read, the sliding distances, the value ring's slot, each
    likelihood's ring slot and its tail histogram's boundary bin. Not the sorted value memory: where its
    binary searches go depends on the values, and prefetching all of it costs more than it saves."""
    memory, history = int(p[P_MEM]), int(p[P_HIST])
    max_lags = max(int(p[P_LAGS]), int(p[P_LONG]))
    big_h, d0, vr, _, hist0 = _offsets(p)
    i = int(st[S_N])  # the index of the point to come
    top = HEADER + (i % big_h) + big_h
    _prefetch_lines(st, top - 2 * max_lags - memory, top + 1)
    prefetch(st, top - big_h)  # the other copy of the newest value
    _prefetch_lines(st, d0, vr)
    if p[P_VMEM] > 0:
        prefetch(st, vr + int(st[S_VPOS]))
    n_comp = n_components_of(p)
    tail0 = hist0 + n_comp * history
    for c in range(n_comp):
        prefetch(st, hist0 + c * history + int(st[COMP0 + c * COMP_FIELDS + C_HPOS]))
        if p[P_TAIL] > 0:
            bins = tail0 + c * TAIL_LEN + T_BINS
            b = int(st[bins - T_BINS + T_B])
            prefetch(st, bins + b)
            prefetch(st, bins + TAIL_BINS + b)


@njit
def n_components_of(p: np.ndarray) -> int:
    """:func:`n_components` inside compiled code."""
    return 1 + int(p[P_LONG] > 0) + int(p[P_VMEM] > 0) + int(p[P_EXT] > 0)
