"""The durable side of the safety guards: facts for :func:`aiops.engine.policy.next_step`, and the breakers.

Why here and not in policy: policy stays pure (numbers in, a decision out); this module reads those numbers
from the store (budgets are counted from the action ledger, so they survive restarts and are shared by
replicas on one database) and keeps each action type's circuit breaker in ``aiops_breakers``.

A breaker counts *consecutive* failures of an action type across all incidents: an execution that failed,
and one that ran without error but did not heal (verification window passed). N of them open it; while
open, its rungs are skipped (the ladder moves on, or escalates). After ``breaker_reset`` one trial run is
let through (half-open): healed closes it, another failure re-opens it.
"""

from __future__ import annotations

import structlog

from aiops.config.models import ActionConfig, CheckConfig, SafetyConfig
from aiops.engine.policy import GuardFacts
from aiops.store.records import Action, Breaker, BreakerState, Incident
from aiops.store.store import Store
from aiops.types import ActionState, IncidentState

log = structlog.get_logger("aiops.safety")

EXECUTED = [ActionState.SUCCEEDED.value, ActionState.FAILED.value, ActionState.RUNNING.value]
ACTIVE = [ActionState.PENDING.value, ActionState.AWAITING_APPROVAL.value, ActionState.RUNNING.value]


def gather(
    store: Store,
    cfg: CheckConfig,
    safety: SafetyConfig,
    row: Incident,
    rung: int,
    target: str | None,
    now: float,
) -> GuardFacts:
    """Read the ledger and the breaker for one decision about ``rung`` of an incident."""
    policy = cfg.policy
    action = policy.actions[rung]
    incident_id = row.id
    mine = [
        a for a in store.list_actions(incident_id=incident_id, limit=1000) if a.rung == rung and a.state in EXECUTED
    ]
    rung_last_at = max((a.last_at for a in mine), default=None)
    if mine and row.verify_deadline is not None and row.verify_deadline <= now:
        # an attempt that ran but did not heal ended when its verification window closed
        rung_last_at = max(rung_last_at or 0.0, row.verify_deadline)
    check_since = now - policy.attempts_window
    check_attempts = 0
    oldest: float | None = None
    if policy.max_attempts_per_window is not None:
        recent = [
            a
            for a in store.list_actions(limit=10_000)
            if a.check_name == cfg.name and a.state in EXECUTED and (a.started_at or a.created_at) >= check_since
        ]
        check_attempts = len(recent)
        oldest = min(((a.started_at or a.created_at) for a in recent), default=None)
    since = now - safety.window
    streak = store.count_actions_since(now - policy.max_cooldown, EXECUTED, target=target) if target is not None else 0
    breaker = store.get_breaker(action.type)
    return GuardFacts(
        safety=safety,
        target=target,
        target_streak=streak,
        rung_attempts=len(mine),
        rung_last_at=rung_last_at,
        check_attempts_in_window=check_attempts,
        oldest_check_attempt_at=oldest,
        actions_in_window=store.count_actions_since(since, EXECUTED) if safety.max_actions is not None else 0,
        runs_of_type_in_window=(
            store.count_actions_since(since, EXECUTED, action_type=action.type) if action.max_runs is not None else 0
        ),
        targets_in_window=frozenset(store.targets_since(since, EXECUTED))
        if safety.max_targets is not None
        else frozenset(),
        breaker_state=breaker.state.value if breaker else BreakerState.CLOSED.value,
        breaker_opened_at=breaker.opened_at if breaker else None,
        breaker_failures=breaker.failures if breaker else 0,
        breaker_trial_busy=_trial_busy(store, breaker),
    )


def _trial_busy(store: Store, breaker: Breaker | None) -> bool:
    if not breaker or breaker.state is not BreakerState.HALF_OPEN or breaker.trial_action_id is None:
        return False
    trial = store.get_action(breaker.trial_action_id)
    if trial is None:
        return False
    if trial.state in ACTIVE:
        return True
    incident = store.get_incident(trial.incident_id)
    return incident is not None and incident.state in (IncidentState.REMEDIATING, IncidentState.VERIFYING)


def trial_started(store: Store, action: ActionConfig, action_row: Action, now: float) -> None:
    """An action of a type whose breaker is open (reset elapsed) runs: that run is the half-open trial."""
    breaker = store.get_breaker(action.type)
    if breaker and breaker.state in (BreakerState.OPEN, BreakerState.HALF_OPEN):
        store.put_breaker(action.type, {"state": "half_open", "trial_action_id": action_row.id}, now)
        log.info("circuit breaker half-open: trial run", action_type=action.type, action=action_row.id)


def failed(store: Store, cfg: CheckConfig, row: Incident, action_row: Action | None, reason: str, now: float) -> int:
    """An execution failed or did not heal: count it for the breaker; return the incident's next rung.

    The same rung is tried again while it has ``retries`` left (the policy's backoff spaces the retries),
    otherwise the ladder moves on.
    """
    rung = row.rung
    if action_row is None:
        return rung + 1
    action_type = action_row.action_type
    rung_cfg = cfg.policy.actions[rung] if rung < len(cfg.policy.actions) else None
    act_rung = action_row.rung
    act_cfg = cfg.policy.actions[act_rung] if act_rung < len(cfg.policy.actions) else None
    threshold = act_cfg.breaker_failures if act_cfg is not None and act_cfg.type == action_type else 0
    breaker = store.get_breaker(action_type)
    failures = (breaker.failures if breaker else 0) + 1
    values: dict[str, object] = {"failures": failures, "last_reason": reason[:500], "trial_action_id": None}
    state = breaker.state.value if breaker else BreakerState.CLOSED.value
    if threshold and (failures >= threshold or state == "half_open"):
        if state != "open":
            log.warning("circuit breaker opened", action_type=action_type, failures=failures, reason=reason)
        values.update({"state": "open", "opened_at": now})
    store.put_breaker(action_type, values, now)
    if rung_cfg is None:
        return rung + 1
    tried = sum(1 for a in store.list_actions(incident_id=row.id, limit=1000) if a.rung == rung and a.state in EXECUTED)
    return rung if tried <= rung_cfg.retries else rung + 1


def healed(store: Store, row: Incident, now: float) -> None:
    """Verification passed: the last executed action's type has a working fix; close its breaker."""
    for action in store.list_actions(incident_id=row.id, limit=50):
        if action.state == ActionState.SUCCEEDED.value:
            breaker = store.get_breaker(action.action_type)
            if breaker is not None and (breaker.state is not BreakerState.CLOSED or breaker.failures):
                store.put_breaker(
                    action.action_type,
                    {"state": "closed", "failures": 0, "opened_at": None, "trial_action_id": None},
                    now,
                )
                log.info("circuit breaker closed", action_type=action.action_type)
            return


def last_executed(store: Store, incident_id: int) -> Action | None:
    for action in store.list_actions(incident_id=incident_id, limit=50):
        if action.state in EXECUTED:
            return action
    return None
