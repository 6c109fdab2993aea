"""A detector: a finding while a series' newest value is above a limit, after ``patience`` such points."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from aiops.plugins import Detector
from aiops.types import Finding, Frame


class AboveParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    limit: float = Field(description="values above this are anomalous")
    patience: int = Field(1, ge=1, description="consecutive points above the limit before a finding")


class AboveLimit(Detector):
    """Flags a series that stays above a fixed limit (example third-party detector).

    >>> from aiops.types import Series
    >>> det = AboveLimit(limit=5)
    >>> [f.summary for f in det.evaluate(Frame("t", 1.0, series=(Series("x", (1.0,), (9.0,)),)))]
    ['x = 9 is above 5']
    """

    Params = AboveParams
    params: AboveParams

    @classmethod
    def test_params(cls) -> list[dict[str, Any]]:
        return [{"limit": 10}, {"limit": 0.5, "patience": 3}]

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        self.streak_: dict[str, int] = {}  # learned state: consecutive points above the limit, per series

    def evaluate(self, frame: Frame) -> list[Finding]:
        findings = []
        for series in frame.series:
            streak = self.streak_.get(series.key, 0)
            for value in series.values:
                streak = streak + 1 if value > self.params.limit else 0
            self.streak_[series.key] = streak
            if len(series) and streak >= self.params.patience:
                findings.append(
                    Finding(
                        kind="threshold",
                        detector="example_above",
                        summary=f"{series.name} = {series.values[-1]:g} is above {self.params.limit:g}",
                        labels={"series": series.name, **series.labels},
                        evidence={"value": series.values[-1], "streak": streak},
                    )
                )
        return findings

    # A restart resumes the streaks instead of starting over: the daemon saves this with each checkpoint.
    def state_dict(self) -> dict[str, Any]:
        return {"streak": dict(self.streak_)}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.streak_ = {str(k): int(v) for k, v in dict(state.get("streak", {})).items()}
