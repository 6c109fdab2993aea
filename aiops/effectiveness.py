"""Remediation effectiveness: per action type and target, how often a run healed, how fast, and how often
the incident ended with a person (escalated) instead.

Why from the audit trail: the engine already writes, in the same transaction as each state change, which
action an incident is remediating or verifying (``action_id`` in the transition's evidence). So a run
*healed* when, after it, the incident went ``verifying -> resolved`` before any later action of the same
incident took over; it *escalated* when the incident went ``escalated`` in that span; it is *in progress*
while the incident is still remediating or verifying it; anything else (the action failed, or verification
saw the problem persist and the ladder moved on) did *not heal*. Time to heal is from the run's start to
that resolution. The heal ratio counts finished runs only.

One module computes it for the three places that show it: ``aiops effectiveness``, ``GET
/api/v1/effectiveness`` and the ``aiops_remediation_*`` gauges.

>>> from aiops.store.remediation_history import ActionRun, TransitionRecord as T
>>> from aiops.types import ActionState
>>> run = ActionRun(7, 1, "cpu", "command", "svc", ActionState.SUCCEEDED, 100.0, 110.0)
>>> trail = [T(1, 90.0, None, "firing", "detector", None),
...          T(1, 100.0, "firing", "remediating", "policy", 7),
...          T(1, 110.0, "remediating", "verifying", "action", 7),
...          T(1, 160.0, "verifying", "resolved", "verifier", None)]
>>> [(r.outcome.value, r.heal_seconds) for r in classify([run], {1: trail})]
[('healed', 60.0)]
>>> summarize(classify([run], {1: trail}))[0].heal_ratio
1.0
"""

from __future__ import annotations

import enum
import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Final

from aiops.store.remediation_history import ActionRun, TransitionRecord, actions_run_since, transitions_of
from aiops.store.store import Store
from aiops.types import ActionState, IncidentState

DEFAULT_WINDOW: Final = 30 * 86400.0  # the metrics and the defaults of the CLI and the API look back 30 days
_WORKING: Final = frozenset({IncidentState.REMEDIATING.value, IncidentState.VERIFYING.value})


class RunOutcome(enum.StrEnum):
    HEALED = "healed"
    NOT_HEALED = "not_healed"
    ESCALATED = "escalated"
    IN_PROGRESS = "in_progress"


@dataclass(frozen=True)
class RunResult:
    run: ActionRun
    outcome: RunOutcome
    heal_seconds: float | None  # only for healed runs


@dataclass(frozen=True)
class Effectiveness:
    """One action type on one target over the window."""

    action: str
    target: str
    runs: int  # finished runs: healed + not healed + escalated
    healed: int
    escalated: int
    in_progress: int
    heal_ratio: float | None  # healed / runs; None before the first finished run
    median_heal_seconds: float | None  # None before the first healing run

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def classify(runs: Iterable[ActionRun], trails: Mapping[int, Sequence[TransitionRecord]]) -> list[RunResult]:
    """What became of each run, read from its incident's audit trail (see the module's docstring)."""
    return [_classify(run, trails.get(run.incident_id, ())) for run in runs]


def _classify(run: ActionRun, trail: Sequence[TransitionRecord]) -> RunResult:
    first = next((i for i, tr in enumerate(trail) if tr.action_id == run.id), None)
    if first is None:  # no transition names it (yet): judge by the ledger alone
        outcome = RunOutcome.IN_PROGRESS if run.state is ActionState.RUNNING else RunOutcome.NOT_HEALED
        return RunResult(run, outcome, None)
    span: list[TransitionRecord] = []
    for tr in trail[first:]:
        if tr.action_id is not None and tr.action_id != run.id:
            break  # a later action of the incident took over
        span.append(tr)
    for tr in span:
        if tr.from_state == IncidentState.VERIFYING.value and tr.to_state == IncidentState.RESOLVED.value:
            return RunResult(run, RunOutcome.HEALED, max(0.0, tr.at - run.started_at))
        if tr.to_state == IncidentState.ESCALATED.value:
            return RunResult(run, RunOutcome.ESCALATED, None)
    ended_here = span[-1] is trail[-1]
    if run.state is ActionState.RUNNING or (ended_here and span[-1].to_state in _WORKING):
        return RunResult(run, RunOutcome.IN_PROGRESS, None)
    return RunResult(run, RunOutcome.NOT_HEALED, None)


def summarize(results: Iterable[RunResult]) -> list[Effectiveness]:
    """Per (action type, target), sorted by both."""
    groups: dict[tuple[str, str], list[RunResult]] = {}
    for result in results:
        groups.setdefault((result.run.action_type, result.run.target), []).append(result)
    out = []
    for (action, target), items in sorted(groups.items()):
        count = {kind: sum(1 for r in items if r.outcome is kind) for kind in RunOutcome}
        finished = count[RunOutcome.HEALED] + count[RunOutcome.NOT_HEALED] + count[RunOutcome.ESCALATED]
        times = [r.heal_seconds for r in items if r.heal_seconds is not None]
        out.append(
            Effectiveness(
                action=action,
                target=target,
                runs=finished,
                healed=count[RunOutcome.HEALED],
                escalated=count[RunOutcome.ESCALATED],
                in_progress=count[RunOutcome.IN_PROGRESS],
                heal_ratio=count[RunOutcome.HEALED] / finished if finished else None,
                median_heal_seconds=float(statistics.median(times)) if times else None,
            )
        )
    return out


def effectiveness(store: Store, since: float) -> list[Effectiveness]:
    """Effectiveness of every action that ran since ``since`` (epoch seconds), from the store."""
    runs = actions_run_since(store, since)
    trails = transitions_of(store, [r.incident_id for r in runs])
    return summarize(classify(runs, trails))
