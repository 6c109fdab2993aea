"""Building blocks shared by the metric scorers: a scorer base with the batch path and NaN guard, a
JSON-safe ring buffer, the robust scale and the expected band of their evidence, and the anomaly-likelihood
normaliser that turns any raw score into a calibrated surprise in [0, 1].
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from aiops.detection import Scorer

_SQRT2 = math.sqrt(2.0)
MEANAD_TO_SIGMA = 1.2533  # mean absolute deviation of a normal distribution times this is its standard deviation


def robust_scale(mean_abs_dev: float, level: float) -> float:
    """The standard deviation a running mean absolute deviation stands for, floored so that a flat series
    (deviation 0) needs a real step, relative to its ``level``, before anything is unusual."""
    return max(MEANAD_TO_SIGMA * mean_abs_dev, 1e-6 * abs(level), 1e-9)


def band(expected: float, half_width: float, **more: Any) -> dict[str, Any]:
    """A scorer's evidence: what it expected, the band a point may stay in (``lower``, ``upper``: what plots
    and messages draw) and whatever else it can tell about the last point."""
    return {"expected": expected, "lower": expected - half_width, "upper": expected + half_width, **more}


def tail_probability(z: float) -> float:
    """P(Z > z) for a standard normal Z."""
    return 0.5 * math.erfc(z / _SQRT2)


def _f(x: Any) -> float:
    """A float from JSON, where None stands for NaN."""
    return math.nan if x is None else float(x)


def _j(x: float) -> float | None:
    """A JSON-safe float (NaN and infinities become None)."""
    return x if math.isfinite(x) else None


class Ring:
    """Fixed-capacity FIFO of floats with O(1) append, its running sum, and a JSON-safe state."""

    __slots__ = ("buf", "cap", "n", "pos")

    def __init__(self, capacity: int) -> None:
        self.cap = int(capacity)
        self.buf = [0.0] * self.cap
        self.pos = 0
        self.n = 0

    def append(self, x: float) -> float | None:
        """Add x; return the value evicted (None while not full)."""
        old = self.buf[self.pos] if self.n == self.cap else None
        self.buf[self.pos] = x
        self.pos = (self.pos + 1) % self.cap
        if self.n < self.cap:
            self.n += 1
        return old

    def values(self) -> list[float]:
        """Oldest first."""
        if self.n < self.cap:
            return self.buf[: self.n]
        return self.buf[self.pos :] + self.buf[: self.pos]

    def last(self, k: int = 1) -> float:
        return self.buf[(self.pos - k) % self.cap]

    def __len__(self) -> int:
        return self.n

    def state_dict(self) -> dict[str, Any]:
        return {"cap": self.cap, "values": [_j(v) for v in self.values()]}

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> Ring:
        ring = cls(int(state["cap"]))
        for v in state["values"]:
            ring.append(_f(v))
        return ring


class ScorerBase(Scorer):
    """Common plumbing: non-finite input scores 0 and leaves the state untouched.

    Subclasses implement ``_update(t, x)`` and the state methods. The batch path (``score``) is the
    inherited point-by-point loop, so it equals feeding ``update`` point by point by construction.
    """

    def update(self, timestamp: float, value: float) -> float:
        t, x = float(timestamp), float(value)
        if not (math.isfinite(x) and math.isfinite(t)):
            return 0.0
        return self._update(t, x)

    def _update(self, t: float, x: float) -> float:
        raise NotImplementedError


class Likelihood:
    """HTM-style anomaly likelihood: how unusual the recent average of a raw score is, given its history.

    The raw scores of one detector have no common scale across series (a z-score on a noisy series is not
    comparable to one on a smooth series); the tail probability of their short-term average against the
    long-run distribution of that average is. We keep the long-run mean and variance over a ring of the last
    ``history`` short averages (running sums, O(1)), and report ``1 - P(tail)`` on a log scale so that
    0.5 means a 1-in-``10**(decades/2)`` event. The first ``learn`` raw scores are a model's learning
    transient (a near-empty memory finds everything novel): they are dropped, not learnt from, or they
    would inflate the deviation and blind the likelihood for the next ``history`` points.
    """

    __slots__ = ("decades", "hist", "learn", "min_std", "n_seen", "s1", "s2", "short", "short_sum", "warmup")

    def __init__(
        self,
        short: int = 5,
        history: int = 2000,
        warmup: int = 150,
        decades: float = 6.0,
        min_std: float = 0.0,
        learn: int = 0,
    ) -> None:
        self.short = Ring(short)
        self.short_sum = 0.0
        self.hist = Ring(history)
        self.s1 = 0.0
        self.s2 = 0.0
        self.n_seen = 0
        self.warmup = warmup
        self.decades = decades
        self.min_std = min_std  # raw scores this close together are one behaviour, not a distribution
        self.learn = int(learn)

    def update(self, raw: float) -> float:
        if self.n_seen < self.learn:
            self.n_seen += 1
            return 0.0
        old = self.short.append(raw)
        self.short_sum += raw - (old if old is not None else 0.0)
        avg = self.short_sum / len(self.short)
        score = 0.0
        n = len(self.hist)
        if self.n_seen >= self.learn + self.warmup and n > 1:
            mean = self.s1 / n
            var = max(self.s2 / n - mean * mean, 0.0)
            std = max(math.sqrt(var) + 1e-4 * abs(mean), self.min_std) + 1e-12
            tail = tail_probability((avg - mean) / std)
            score = min(1.0, -math.log10(tail + 1e-300) / self.decades) if tail < 1.0 else 0.0
        ev = self.hist.append(avg)
        self.s1 += avg
        self.s2 += avg * avg
        if ev is not None:
            self.s1 -= ev
            self.s2 -= ev * ev
        self.n_seen += 1
        return score

    def state_dict(self) -> dict[str, Any]:
        return {
            "short": self.short.state_dict(),
            "short_sum": self.short_sum,
            "hist": self.hist.state_dict(),
            "s1": self.s1,
            "s2": self.s2,
            "n_seen": self.n_seen,
            "warmup": self.warmup,
            "decades": self.decades,
            "min_std": self.min_std,
            "learn": self.learn,
        }

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> Likelihood:
        lik = cls.__new__(cls)
        lik.short = Ring.from_state(state["short"])
        lik.short_sum = float(state["short_sum"])
        lik.hist = Ring.from_state(state["hist"])
        lik.s1 = float(state["s1"])
        lik.s2 = float(state["s2"])
        lik.n_seen = int(state["n_seen"])
        lik.warmup = int(state["warmup"])
        lik.decades = float(state["decades"])
        lik.min_std = float(state["min_std"])
        lik.learn = int(state["learn"])
        return lik


@dataclass(slots=True)
class Debounce:
    """Alert debouncing: one event pages once, and a series that just paged needs more to page again.

    After a score at or above ``level``, the next ``rest`` points report 0: the points right after a
    detection carry no new information for a person (CAD OSE's "rest period", ARTime's masking). Until
    ``cooldown`` points after the alert, a new alert then needs ``cooldown_level``; weaker scores are
    reported just under ``level``. Noisy series raise their alerts in clusters, quiet series rarely alert
    twice in a row: the raised bar removes most of the first without costing the second.
    """

    rest: int = 100
    level: float = 0.6
    cooldown: int = 0
    cooldown_level: float = 1.0
    since: int = 1 << 30  # points since the last alert, saturating: a series that never alerted is not resting

    def __call__(self, score: float) -> float:
        resting = self.since < self.rest
        if resting:
            out = 0.0
        elif self.since >= self.cooldown or score >= self.cooldown_level:
            out = score
        else:
            out = min(score, 0.99 * self.level)
        if out >= self.level or (resting and score >= self.level):
            self.since = 0
        elif self.since < (1 << 30):
            self.since += 1
        return out

    def state_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> Debounce:
        return cls(
            int(state["rest"]),
            float(state["level"]),
            int(state["cooldown"]),
            float(state["cooldown_level"]),
            int(state["since"]),
        )
