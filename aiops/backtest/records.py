"""What a backtest found, as typed records that serialise to JSON (``--json``, the report, the console)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from aiops.types import json_safe

WEEK = 7 * 86400.0


@dataclass(frozen=True)
class Transition:
    at: float
    state: str
    actor: str
    reason: str


@dataclass(frozen=True)
class SimulatedAction:
    """A rung of the ladder the policy reached: run (simulated), dry-run/observe, awaiting approval, skipped."""

    at: float
    rung: int
    action: str
    mode: str
    target: str
    description: str
    state: str
    outcome: str
    guard: str | None


@dataclass(frozen=True)
class Hold:
    """The policy wanted to act but a guard held the action back (cooldown, budget, breaker, ...)."""

    at: float
    reason: str


@dataclass(frozen=True)
class PlotSeries:
    name: str
    timestamps: tuple[float, ...]
    values: tuple[float, ...]


@dataclass(frozen=True)
class WouldBeIncident:
    """An incident the daemon would have opened and fired (a finding that cleared within ``for`` is not one)."""

    check: str
    fingerprint: str
    labels: dict[str, str]
    kind: str
    summary: str
    severity: str
    opened_at: float
    firing_at: float
    resolved_at: float | None
    final_state: str
    timeline: tuple[Transition, ...]
    actions: tuple[SimulatedAction, ...]
    holds: tuple[Hold, ...]
    plot: tuple[PlotSeries, ...] = ()

    def overlaps(self, start: float, end: float, until: float) -> bool:
        return self.opened_at <= end and (self.resolved_at if self.resolved_at is not None else until) >= start


@dataclass(frozen=True)
class SentMessage:
    at: float
    notifier: str
    event: str
    check: str
    title: str


@dataclass(frozen=True)
class Score:
    """Against labelled windows: useful/missed windows are the ones an incident should cover, noise ones the
    ones it should not. Precision counts incidents, recall counts positive windows."""

    positives: int
    detected: int
    noise_windows: int
    noise_paged: int
    true_positives: int
    false_positives: int
    precision: float | None
    recall: float | None
    mean_time_to_detect: float | None


@dataclass(frozen=True)
class BacktestResult:
    config: str
    since: float
    until: float
    checks: tuple[str, ...]
    ticks: int
    points: int
    incidents: tuple[WouldBeIncident, ...]
    cleared_pending: int
    messages: tuple[SentMessage, ...]
    wall_seconds: float
    score: Score | None = None

    @property
    def weeks(self) -> float:
        return max(self.until - self.since, 1.0) / WEEK

    @property
    def pages(self) -> int:
        """Messages that would have reached a person about a new or escalated problem."""
        return sum(1 for m in self.messages if m.event in ("firing", "escalated"))

    @property
    def pages_per_week(self) -> float:
        return self.pages / self.weeks

    @property
    def incidents_per_week(self) -> float:
        return len(self.incidents) / self.weeks

    def to_dict(self) -> dict[str, Any]:
        out = json_safe(dataclasses.asdict(self))
        assert isinstance(out, dict)
        out.update(
            pages=self.pages,
            pages_per_week=round(self.pages_per_week, 3),
            incidents_per_week=round(self.incidents_per_week, 3),
        )
        return out


def result_from_dict(data: dict[str, Any]) -> BacktestResult:
    """The inverse of :meth:`BacktestResult.to_dict` (a result shipped back by a compute executor)."""

    def incident(d: dict[str, Any]) -> WouldBeIncident:
        return WouldBeIncident(
            **{k: d[k] for k in _fields(WouldBeIncident) if k not in ("timeline", "actions", "holds", "plot")},
            timeline=tuple(Transition(**t) for t in d["timeline"]),
            actions=tuple(SimulatedAction(**a) for a in d["actions"]),
            holds=tuple(Hold(**h) for h in d["holds"]),
            plot=tuple(PlotSeries(p["name"], tuple(p["timestamps"]), tuple(p["values"])) for p in d["plot"]),
        )

    plain = {k: data[k] for k in _fields(BacktestResult) if k not in ("incidents", "messages", "score", "checks")}
    return BacktestResult(
        **plain,
        checks=tuple(data["checks"]),
        incidents=tuple(incident(i) for i in data["incidents"]),
        messages=tuple(SentMessage(**m) for m in data["messages"]),
        score=Score(**data["score"]) if data.get("score") else None,
    )


def _fields(cls: type[Any]) -> list[str]:
    return [f.name for f in dataclasses.fields(cls)]
