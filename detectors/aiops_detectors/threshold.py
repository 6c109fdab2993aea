"""Static limits: the detector for what has a known right answer (a process is up, a disk is not full)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, ClassVar

from pydantic import model_validator

from aiops.detection import Scorer, SeriesDetector, SeriesDetectorParams


class ThresholdParams(SeriesDetectorParams):
    above: float | None = None
    below: float | None = None

    @model_validator(mode="after")
    def _one_limit(self) -> ThresholdParams:
        if self.above is None and self.below is None:
            raise ValueError("give 'above', 'below' or both")
        if self.above is not None and self.below is not None and self.below > self.above:
            raise ValueError("'below' is greater than 'above': no value could be normal")
        return self


class ThresholdScorer(Scorer):
    """Score 1 when the value is outside the limits, else 0; stateless."""

    def __init__(self, above: float | None, below: float | None) -> None:
        self.above = above
        self.below = below

    def update(self, timestamp: float, value: float) -> float:
        if not math.isfinite(value):
            return 0.0
        self._last = value  # which limit a finding names; not state: it is re-learnt from the next point
        if self.above is not None and value > self.above:
            return 1.0
        if self.below is not None and value < self.below:
            return 1.0
        return 0.0

    def expected(self) -> dict[str, Any]:
        below = self.below is not None and getattr(self, "_last", math.inf) < self.below
        return {"lower": self.below, "upper": self.above, "limit": self.below if below else self.above}

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        return None


class ThresholdDetector(SeriesDetector):
    """Flags values above ``above`` or below ``below``.

    Why: some limits are facts, not statistics — ``process_up`` below 1, a disk above 90 %. Learning a
    baseline there only delays the alert.

    >>> from aiops.types import Frame, Series
    >>> det = ThresholdDetector(below=1)
    >>> frame = Frame("host", 0.0, series=(Series("process_up", [1.0, 2.0], [1.0, 0.0], {"process": "etl"}),))
    >>> [(f.labels["process"], f.evidence["value"]) for f in det.evaluate(frame)]
    [('etl', 0.0)]
    """

    Params = ThresholdParams
    params: ThresholdParams

    @classmethod
    def test_params(cls) -> list[dict[str, Any]]:
        return [{"above": 0.9}, {"below": 0.1}, {"above": 10, "below": -10}]
    name: ClassVar[str] = "threshold"
    kind: ClassVar[str] = "threshold"

    def new_scorer(self) -> ThresholdScorer:
        p = self.params
        return ThresholdScorer(p.above, p.below)
