"""Compiled batch paths of the simple scorers (``ewma``, ``cusum``): the Python ``_update`` arithmetic,
operation for operation, in one numba loop over the series.

Only +, -, *, /, abs, min and max are involved, which IEEE 754 makes bit-identical between CPython and
compiled code, so ``score`` equals the point-by-point ``update`` exactly (the tests compare with ``==``).
The state travels as a small float array in and out of the loop.
"""

from __future__ import annotations

import math

import numpy as np

from aiops_detectors.anomaly._jit import njit

_MEANAD_TO_SIGMA = 1.2533


@njit
def ewma_run(
    st: np.ndarray, alpha: float, beta: float, z_threshold: float, min_points: int, ts: np.ndarray, xs: np.ndarray
) -> np.ndarray:
    """``EwmaScorer._update`` over a series; ``st`` = [mean, dev, n, z], updated in place."""
    out = np.zeros(len(xs))
    mean, dev, n, z = st[0], st[1], int(st[2]), st[3]
    for i in range(len(xs)):
        x = xs[i]
        if not (math.isfinite(x) and math.isfinite(ts[i])):
            continue
        if n == 0:
            mean = x
            n = 1
            continue
        r = x - mean
        if n >= min_points:
            scale = max(_MEANAD_TO_SIGMA * dev, 1e-6 * abs(mean), 1e-9)
            z = r / scale
            out[i] = abs(z) / (abs(z) + z_threshold)
            lim = z_threshold * scale
            r = max(-lim, min(lim, r))
        mean += alpha * r
        if n > 1:
            dev += beta * (abs(r) - dev)
        else:
            dev += abs(r)
        n += 1
    st[0], st[1], st[2], st[3] = mean, dev, n, z
    return out


@njit
def cusum_run(
    st: np.ndarray, alpha: float, drift: float, h: float, min_points: int, ts: np.ndarray, xs: np.ndarray
) -> np.ndarray:
    """``CusumScorer._update`` over a series; ``st`` = [mean, dev, pos, neg, n, recent], updated in place."""
    out = np.zeros(len(xs))
    mean, dev, pos, neg, n, recent = st[0], st[1], st[2], st[3], int(st[4]), st[5]
    for i in range(len(xs)):
        x = xs[i]
        if not (math.isfinite(x) and math.isfinite(ts[i])):
            continue
        if n == 0:
            mean = recent = x
            n = 1
            continue
        recent += 0.2 * (x - recent)
        r = x - mean
        if n >= min_points:
            scale = max(_MEANAD_TO_SIGMA * dev, 1e-6 * abs(mean), 1e-9)
            z = max(-10.0, min(10.0, r / scale))
            pos = max(0.0, pos + z - drift)
            neg = max(0.0, neg - z - drift)
            s = max(pos, neg)
            out[i] = s / (s + h)
            if s >= h:
                pos = neg = 0.0
                mean = recent
            elif s == 0.0:
                mean += alpha * r
                dev += alpha * (abs(r) - dev)
        else:
            w = max(alpha, 1.0 / (n + 1))
            mean += w * r
            dev += w * (abs(r) - dev)
        n += 1
    st[0], st[1], st[2], st[3], st[4], st[5] = mean, dev, pos, neg, n, recent
    return out
