"""Policy: given a firing incident and the facts about past actions, what happens next.

Pure functions over plain values, so every guard is testable without a database or a clock. The guards
run in a fixed order and the first that says no wins; its decision is recorded on the incident so a person
can see why nothing happened.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from aiops.config.models import ActionConfig, PolicyConfig, SafetyConfig
from aiops.durations import format_duration


@dataclass(frozen=True)
class Step:
    """``act`` the given rung, ``wait`` (a guard holds it back), ``escalate``, or ``none`` (notify only)."""

    kind: str  # act | wait | escalate | none | skip (this rung's circuit breaker is open: next rung)
    reason: str
    rung: int = 0
    action: ActionConfig | None = None
    retry_at: float | None = None


@dataclass(frozen=True)
class GuardFacts:
    """What the durable ledger says about recent actions, gathered by the caller for the safety guards.

    Kept as plain numbers so that :func:`next_step` stays a pure function: every budget, the breaker and the
    backoff are decided here and testable without a database.
    """

    safety: SafetyConfig = field(default_factory=lambda: SafetyConfig.model_validate({}))
    target: str | None = None
    target_streak: int = 0  # actions on this target (any incident) within policy.max_cooldown
    rung_attempts: int = 0  # executed actions of this incident at this rung
    rung_last_at: float | None = None  # when the last of them finished
    check_attempts_in_window: int = 0  # executed actions of this check within policy.attempts_window
    oldest_check_attempt_at: float | None = None
    actions_in_window: int = 0  # executed actions of any kind within safety.window
    runs_of_type_in_window: int = 0  # executed actions of this rung's type within safety.window
    targets_in_window: frozenset[str] = frozenset()
    breaker_state: str = "closed"  # closed | open | half_open
    breaker_opened_at: float | None = None
    breaker_failures: int = 0
    breaker_trial_busy: bool = False


def next_step(
    *,
    policy: PolicyConfig,
    rung: int,
    attempts: int,
    paused: bool,
    last_action_on_target_at: float | None,
    now: float,
    guards: GuardFacts | None = None,
) -> Step:
    """The next rung of the ladder for an incident that needs action, after the guards.

    Only a ``firing`` incident gets here: one a person acknowledged has left that state, so automation
    already stands back for it without a guard of its own.

    >>> from aiops.config.models import PolicyConfig
    >>> p = PolicyConfig.model_validate({"cooldown": "5m", "actions": [{"type": "command", "argv": ["true"]}]})
    >>> next_step(policy=p, rung=0, attempts=0, paused=False,
    ...           last_action_on_target_at=None, now=1000.0).kind
    'act'
    >>> next_step(policy=p, rung=0, attempts=0, paused=False,
    ...           last_action_on_target_at=900.0, now=1000.0).reason
    'cooldown: target acted on 1m40s ago (cooldown 5m)'
    >>> next_step(policy=p, rung=1, attempts=1, paused=False,
    ...           last_action_on_target_at=None, now=1000.0).kind
    'escalate'
    """
    if not policy.actions:
        return Step("none", "no actions configured")
    if rung >= len(policy.actions):
        return Step("escalate", f"escalation ladder exhausted after {attempts} attempt(s)")
    if attempts >= policy.max_attempts:
        return Step("escalate", f"max attempts reached ({attempts}/{policy.max_attempts})")
    if paused:
        return Step("wait", "kill switch: automation is paused")
    action = policy.actions[rung]
    g = guards or GuardFacts()
    held = _budget_guards(policy, action, g, rung, now)
    if held is not None:
        return held
    cooldown = backed_off(policy, g.target_streak)
    if last_action_on_target_at is not None and now - last_action_on_target_at < cooldown:
        ago = format_duration(now - last_action_on_target_at)
        return Step(
            "wait",
            f"cooldown: target acted on {ago} ago (cooldown {format_duration(cooldown)})",
            rung=rung,
            action=action,
            retry_at=last_action_on_target_at + cooldown,
        )
    if g.rung_attempts and g.rung_last_at is not None:
        delay = backed_off(policy, g.rung_attempts)
        if now - g.rung_last_at < delay:
            return Step(
                "wait",
                f"backoff: retry {g.rung_attempts}/{action.retries} of {action.label} waits "
                f"{format_duration(delay)} after the last attempt",
                rung=rung,
                action=action,
                retry_at=g.rung_last_at + delay,
            )
    trial = " (circuit breaker half-open: trial run)" if g.breaker_state != "closed" else ""
    return Step("act", f"rung {rung}: {action.label} ({action.mode.value}){trial}", rung=rung, action=action)


def backed_off(policy: PolicyConfig, streak: int) -> float:
    """The cooldown after ``streak`` recent actions on a target: ``cooldown * backoff**(streak-1)``, capped.

    >>> p = PolicyConfig.model_validate({"cooldown": "1m", "backoff": 2, "max_cooldown": "5m"})
    >>> [backed_off(p, n) for n in (0, 1, 2, 3, 4)]
    [60.0, 60.0, 120.0, 240.0, 300.0]
    """
    exponent = max(0, streak - 1)
    return float(min(policy.cooldown * policy.backoff**exponent, max(policy.cooldown, policy.max_cooldown)))


def _budget_guards(policy: PolicyConfig, action: ActionConfig, g: GuardFacts, rung: int, now: float) -> Step | None:
    """Circuit breaker, then the attempt, rate and blast-radius budgets; the first that holds wins."""
    if action.breaker_failures and g.breaker_state == "open":
        opened = g.breaker_opened_at or now
        if now - opened < action.breaker_reset:
            return Step(
                "skip",
                f"circuit breaker open for {action.type}: {g.breaker_failures} consecutive failure(s); "
                f"half-open in {format_duration(opened + action.breaker_reset - now)}",
                rung=rung,
                action=action,
            )
    if action.breaker_failures and g.breaker_state in ("open", "half_open") and g.breaker_trial_busy:
        return Step("wait", f"circuit breaker half-open for {action.type}: a trial run is under way", rung, action)
    if policy.max_attempts_per_window is not None and g.check_attempts_in_window >= policy.max_attempts_per_window:
        retry = (g.oldest_check_attempt_at or now) + policy.attempts_window
        return Step(
            "wait",
            f"attempt budget: {g.check_attempts_in_window} action(s) for this check in the last "
            f"{format_duration(policy.attempts_window)} (max {policy.max_attempts_per_window})",
            rung,
            action,
            retry_at=retry,
        )
    window = format_duration(g.safety.window)
    if g.safety.max_actions is not None and g.actions_in_window >= g.safety.max_actions:
        return Step(
            "wait",
            f"global budget: {g.actions_in_window} action(s) in the last {window} (max {g.safety.max_actions})",
            rung,
            action,
        )
    if action.max_runs is not None and g.runs_of_type_in_window >= action.max_runs:
        return Step(
            "wait",
            f"rate budget: {action.type} ran {g.runs_of_type_in_window} time(s) in the last {window} "
            f"(max {action.max_runs})",
            rung,
            action,
        )
    if (
        g.safety.max_targets is not None
        and g.target is not None
        and g.target not in g.targets_in_window
        and len(g.targets_in_window) >= g.safety.max_targets
    ):
        return Step(
            "wait",
            f"blast radius: {len(g.targets_in_window)} target(s) touched in the last {window} "
            f"(max {g.safety.max_targets}); {g.target} would be one more",
            rung,
            action,
        )
    return None
