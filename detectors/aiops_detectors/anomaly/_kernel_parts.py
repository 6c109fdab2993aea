"""Compiled pieces every metric kernel shares (each kernel keeps them in its own state slots)."""

from __future__ import annotations

import numpy as np

from aiops_detectors.anomaly._jit import njit

NEVER = float(1 << 30)  # "no alert yet" for the debounce counter


@njit
def debounce(st: np.ndarray, since_at: int, p: np.ndarray, rest_at: int, score: float) -> float:
    """``_base.Debounce`` on a kernel's arrays: returns the reported score.

    ``st[since_at]`` counts points since the last alert; ``p[rest_at : rest_at + 4]`` hold ``rest``,
    ``level``, ``cooldown`` and ``cooldown_level``. 0 is reported for ``rest`` points, then until
    ``cooldown`` a new alert needs ``cooldown_level`` and weaker scores are reported just under ``level``.
    """
    since = st[since_at]
    rest, level, cooldown, cooldown_level = p[rest_at], p[rest_at + 1], p[rest_at + 2], p[rest_at + 3]
    resting = since < rest
    if resting:
        out = 0.0
    elif since >= cooldown or score >= cooldown_level:
        out = score
    else:
        out = min(score, 0.99 * level)
    if out >= level or (resting and score >= level):
        st[since_at] = 0.0
    elif since < NEVER:
        st[since_at] = since + 1.0
    return float(out)
