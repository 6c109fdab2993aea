"""Policy: given a firing incident and the facts about past actions, what happens next.

Pure functions over plain values, so every guard is testable without a database or a clock. The guards
run in a fixed order and the first that says no wins; its decision is recorded on the incident so a person
can see why nothing happened.
"""

from __future__ import annotations

from dataclasses import dataclass

from aiops.config.models import ActionConfig, PolicyConfig
from aiops.durations import format_duration


@dataclass(frozen=True)
class Step:
    """``act`` the given rung, ``wait`` (a guard holds it back), ``escalate``, or ``none`` (notify only)."""

    kind: str  # act | wait | escalate | none
    reason: str
    rung: int = 0
    action: ActionConfig | None = None
    retry_at: float | None = None


def next_step(
    *,
    policy: PolicyConfig,
    rung: int,
    attempts: int,
    paused: bool,
    acknowledged: bool,
    last_action_on_target_at: float | None,
    now: float,
) -> Step:
    """The next rung of the ladder for an incident that needs action, after the guards.

    >>> from aiops.config.models import PolicyConfig
    >>> p = PolicyConfig.model_validate({"cooldown": "5m", "actions": [{"type": "command", "argv": ["true"]}]})
    >>> next_step(policy=p, rung=0, attempts=0, paused=False, acknowledged=False,
    ...           last_action_on_target_at=None, now=1000.0).kind
    'act'
    >>> next_step(policy=p, rung=0, attempts=0, paused=False, acknowledged=False,
    ...           last_action_on_target_at=900.0, now=1000.0).reason
    'cooldown: target acted on 1m40s ago (cooldown 5m)'
    >>> next_step(policy=p, rung=1, attempts=1, paused=False, acknowledged=False,
    ...           last_action_on_target_at=None, now=1000.0).kind
    'escalate'
    """
    if not policy.actions:
        return Step("none", "no actions configured")
    if acknowledged:
        return Step("none", "acknowledged by a person: automation stands back")
    if rung >= len(policy.actions):
        return Step("escalate", f"escalation ladder exhausted after {attempts} attempt(s)")
    if attempts >= policy.max_attempts:
        return Step("escalate", f"max attempts reached ({attempts}/{policy.max_attempts})")
    if paused:
        return Step("wait", "kill switch: automation is paused")
    action = policy.actions[rung]
    if last_action_on_target_at is not None and now - last_action_on_target_at < policy.cooldown:
        ago = format_duration(now - last_action_on_target_at)
        return Step(
            "wait",
            f"cooldown: target acted on {ago} ago (cooldown {format_duration(policy.cooldown)})",
            rung=rung,
            action=action,
            retry_at=last_action_on_target_at + policy.cooldown,
        )
    return Step("act", f"rung {rung}: {action.label} ({action.mode.value})", rung=rung, action=action)
