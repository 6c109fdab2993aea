"""What the ledger and the audit trail say about the remediations that ran: the input of
:mod:`aiops.effectiveness`, read in two queries and handed over as typed records.

Why here and not in the store class: it is a read-only report over two tables, used by the CLI, the API and
the metrics collector alike; keeping it apart leaves the engine's store untouched.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

import sqlalchemy as sa

from aiops.store import schema as t
from aiops.store.store import Store
from aiops.types import ActionState, IncidentState

# An action "ran" when the executor took it: it is running or has an outcome. Dry-runs, observed plans,
# rejected and skipped rungs never touched the target, so they say nothing about healing it.
RAN_STATES: Final = (ActionState.SUCCEEDED, ActionState.FAILED, ActionState.RUNNING)
_CHUNK: Final = 500  # incident ids per IN (...) list: well under every driver's parameter limit


@dataclass(frozen=True)
class ActionRun:
    id: int
    incident_id: int
    check: str
    action_type: str
    target: str
    state: ActionState
    started_at: float  # when it was claimed (created, for a row that never recorded a start)
    finished_at: float | None


@dataclass(frozen=True)
class TransitionRecord:
    incident_id: int
    at: float
    from_state: str | None
    to_state: str
    actor: str
    action_id: int | None  # the action the transition names in its evidence (remediating, verifying, failed)


def _action_id(evidence: Any) -> int | None:
    value = evidence.get("action_id") if isinstance(evidence, Mapping) else None
    return int(value) if isinstance(value, int) and not isinstance(value, bool) else None


def actions_run_since(store: Store, since: float) -> list[ActionRun]:
    """Actions that ran, started (or created) at or after ``since``, oldest first."""
    a = t.actions
    when = sa.func.coalesce(a.c.started_at, a.c.created_at)
    query = (
        sa.select(a.c.id, a.c.incident_id, a.c.check_name, a.c.action_type, a.c.target, a.c.state, when.label("at"),
                  a.c.finished_at)
        .where(a.c.state.in_([s.value for s in RAN_STATES]), when >= since)
        .order_by(a.c.id)
    )
    with store.tx() as conn:
        rows = list(conn.execute(query))
    return [
        ActionRun(
            id=int(r.id),
            incident_id=int(r.incident_id),
            check=str(r.check_name),
            action_type=str(r.action_type),
            target=str(r.target),
            state=ActionState(r.state),
            started_at=float(r.at),
            finished_at=None if r.finished_at is None else float(r.finished_at),
        )
        for r in rows
    ]


def transitions_of(store: Store, incident_ids: Sequence[int]) -> dict[int, list[TransitionRecord]]:
    """The audit trail of each incident, in the order it was written."""
    tr = t.transitions
    ids = sorted(set(incident_ids))
    # Only the transitions into and out of `remediating`, and into `verifying`, name an action; the others
    # carry the findings (series slices, drift tables), which are large and would only be parsed to be dropped.
    names_action = sa.or_(
        tr.c.to_state.in_([IncidentState.REMEDIATING.value, IncidentState.VERIFYING.value]),
        tr.c.from_state == IncidentState.REMEDIATING.value,
    )
    evidence = sa.case((names_action, tr.c.evidence), else_=sa.null()).label("evidence")
    out: dict[int, list[TransitionRecord]] = {}
    with store.tx() as conn:
        for start in range(0, len(ids), _CHUNK):
            query = (
                sa.select(tr.c.incident_id, tr.c.at, tr.c.from_state, tr.c.to_state, tr.c.actor, evidence)
                .where(tr.c.incident_id.in_(ids[start : start + _CHUNK]))
                .order_by(tr.c.id)
            )
            for r in conn.execute(query):
                out.setdefault(int(r.incident_id), []).append(
                    TransitionRecord(
                        incident_id=int(r.incident_id),
                        at=float(r.at),
                        from_state=None if r.from_state is None else str(r.from_state),
                        to_state=str(r.to_state),
                        actor=str(r.actor),
                        action_id=_action_id(r.evidence),
                    )
                )
    return out
