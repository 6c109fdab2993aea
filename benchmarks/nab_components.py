"""Per-component raw scores of ``default`` on the NAB public part, for trying other likelihoods and
combinations under the leave-one-group-out CV without rerunning the kernel.

Each series goes through the shipped kernel with the debounce off; after every point the three components'
raw scores (short shape, long shape, value novelty) and their surprises under the Gaussian likelihood (``tail``
0) are read from the state.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping
from pathlib import Path

import numpy as np
from aiops_detectors.anomaly import _default_kernel as K
from aiops_detectors.anomaly._jit import njit
from aiops_detectors.anomaly.ensemble import DefaultParams

REPO = Path(__file__).resolve().parent.parent
CACHE = REPO / "benchmarks" / "out" / "nab_components"


@njit
def _trace(st: np.ndarray, p: np.ndarray, xs: np.ndarray, feed: np.ndarray, raw: np.ndarray, sur: np.ndarray) -> None:
    nc = raw.shape[1]
    for k in range(len(xs)):
        if not feed[k]:
            continue
        K.step(st, p, xs[k], math.nan)
        for c in range(nc):
            raw[k, c] = st[K.COMP0 + c * K.COMP_FIELDS + K.C_RAW]
            sur[k, c] = st[K.COMP0 + c * K.COMP_FIELDS + K.C_SUR]


def _params() -> np.ndarray:
    # the shipped knobs with the Gaussian likelihood (tail 0, decades 6) and the debounce off (rest = cooldown = 0)
    gaussian = DefaultParams(tail=0.0, decades=6.0, threshold=0.6, alert_level=0.6, cooldown_level=0.9)
    return K.make_params(gaussian.model_copy(update={"rest": 0, "cooldown": 0}))


def feed_mask(ts: np.ndarray, values: np.ndarray) -> np.ndarray:
    """What ``score_series`` feeds: finite rows whose time is after the previous fed one."""
    out = np.zeros(len(values), dtype=np.bool_)
    last = -math.inf
    for i in range(len(values)):
        t, v = float(ts[i]), float(values[i])
        if math.isfinite(t) and math.isfinite(v) and t > last:
            out[i] = True
            last = t
    return out


def components(series: Mapping[str, tuple[np.ndarray, np.ndarray]]) -> dict[str, tuple[np.ndarray, ...]]:
    """rel -> (raw [n, 3], shipped surprise [n, 3], fed mask), cached on disk by the kernel's source."""
    digest = hashlib.sha1((REPO / "detectors/aiops_detectors/anomaly/_default_kernel.py").read_bytes()).hexdigest()
    folder = CACHE / digest[:12]
    folder.mkdir(parents=True, exist_ok=True)
    out = {}
    for rel, (ts, values) in series.items():
        path = folder / (rel.replace("/", "__") + ".npz")
        if path.exists():
            z = np.load(path)
            out[rel] = (z["raw"], z["sur"], z["feed"])
            continue
        p = _params()
        st = K.new_state(p)
        feed = feed_mask(ts, values)
        raw = np.zeros((len(values), 3))
        sur = np.zeros((len(values), 3))
        _trace(st, p, np.asarray(values, dtype=float), feed, raw, sur)
        np.savez(path, raw=raw, sur=sur, feed=feed)
        out[rel] = (raw, sur, feed)
    return out
