"""Compiled pieces every metric kernel shares (each kernel keeps them in its own state slots)."""

from __future__ import annotations

from aiops_detectors.anomaly._jit import njit

NEVER = float(1 << 30)  # "no alert yet" for the debounce counter


@njit
def debounce(
    since: float, rest: float, level: float, cooldown: float, cooldown_level: float, score: float
) -> tuple[float, float]:
    """``_base.Debounce`` on plain numbers: returns (reported score, new ``since``).

    ``since`` counts points since the last alert: 0 is reported for ``rest`` points, then until
    ``cooldown`` a new alert needs ``cooldown_level`` and weaker scores are reported just under ``level``.
    """
    resting = since < rest
    if resting:
        out = 0.0
    elif since >= cooldown or score >= cooldown_level:
        out = score
    else:
        out = min(score, 0.99 * level)
    if out >= level or (resting and score >= level):
        since = 0.0
    elif since < NEVER:
        since = since + 1.0
    return out, since
