"""The incident state machine: findings in, transitions, ledger entries and outbox rows out.

``pending`` -> ``firing`` -> ``remediating`` -> ``verifying`` -> ``resolved``; when verification fails the
next rung of the ladder runs, or the incident is ``escalated``; a person can ``acknowledge`` or ``silence``
it at any time. Every transition is one audit row with its reason and evidence.

Each decision about an incident is one unit of work (:meth:`Store.transaction`): the state change, its audit
row, the ledger rows and the outbox rows commit together or not at all, so a crash never leaves an incident
``firing`` without its firing message, or an action finished while its incident still says ``remediating``.
Decisions about one incident are serialised by that incident's fingerprint lock (a check tick, an action
finishing, the sweeper and a person never interleave on it); decisions about different incidents run in
parallel. Nothing slow happens under a lock: verification probes run between two decisions.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import KW_ONLY, dataclass, field
from typing import Any

import structlog

from aiops import faults
from aiops.config.models import ActionMode, CheckConfig, QuietVerify
from aiops.engine import safety
from aiops.engine.checks import CheckResult
from aiops.engine.locks import KeyedLocks
from aiops.engine.messages import build_message, incident_view, resolution
from aiops.engine.policy import GuardFacts, Step, next_step
from aiops.engine.runtime import Runtime
from aiops.engine.verify import (
    QUIET_HEALTHY_REASON,
    QUIET_UNHEALTHY_REASON,
    has_probes,
    not_healed_reason,
    probe_failure,
    quiet_verdict,
)
from aiops.errors import AiopsError, LeaseLost, PlanRefused
from aiops.messages import message_to_payload
from aiops.store.records import Action, Incident
from aiops.store.store import Fence, Store
from aiops.types import ActionState, Finding, IncidentState, Severity, fingerprint

log = structlog.get_logger("aiops.incidents")

S = IncidentState
HEALED = "verified: healthy after the remediation"
_ACTIVE_ACTION_STATES = [ActionState.PENDING.value, ActionState.AWAITING_APPROVAL.value, ActionState.RUNNING.value]
_EXECUTED_STATES = [ActionState.SUCCEEDED.value, ActionState.FAILED.value, ActionState.RUNNING.value]
_FINISHED_STATES = (ActionState.SUCCEEDED.value, ActionState.FAILED.value)
#: The fence of a check's lease when this replica runs the check, else None (see :mod:`aiops.cluster.leases`).
FenceFor = Callable[[str], Fence | None]
#: How often the sweeper looks for decisions a crash of an older release left half-done.
RECONCILE_EVERY = 30.0


@dataclass(eq=False)
class IncidentManager:
    """Owns every incident transition. ``runtime_ref`` returns the current runtime (it changes on reload)."""

    store: Store
    runtime_ref: Callable[[], Runtime]
    now: Callable[[], float]
    _: KW_ONLY
    paused: Callable[[], bool] = lambda: False
    on_transition: Callable[[str, str], None] | None = None
    _locks: KeyedLocks = field(default_factory=KeyedLocks, init=False)
    _local: threading.local = field(default_factory=threading.local, init=False)
    _reconciled_at: float | None = field(default=None, init=False)
    # check -> the fencing token of its lease under which this replica saw it with no open incident and has
    # opened none since. A tick that finds nothing then needs no store round trip: only the check's own
    # ticks open its incidents, fenced by its lease, so under the same token nobody else can have opened
    # one; once another replica held the lease (a newer token) the store is read again.
    _quiet: dict[str, int] = field(default_factory=dict, init=False)

    # -- units of work ---------------------------------------------------------------------------------

    @contextmanager
    def _decision(self, fingerprint: str) -> Iterator[None]:
        """Hold the incident's lock and open one unit of work; crash points reached inside fire only once
        it committed (a nested decision joins the outer one)."""
        with self._locks.hold(fingerprint):
            if getattr(self._local, "points", None) is not None:
                yield
                return
            points: list[tuple[str, str | None]] = []
            self._local.points = points
            try:
                with self.store.transaction():
                    yield
            finally:
                self._local.points = None
            for name, check in points:
                faults.point(name, check)

    def _reached(self, point: str, check: str | None) -> None:
        """Record that this decision crossed a named commit boundary (see :mod:`aiops.faults`)."""
        points: list[tuple[str, str | None]] | None = getattr(self._local, "points", None)
        if points is None:
            faults.point(point, check)
        else:
            points.append((point, check))

    # -- findings in -----------------------------------------------------------------------------------

    def observe(self, result: CheckResult) -> None:
        """Apply one tick's result. Its ``problems`` (source/scheduler trouble) notify, never remediate."""
        runtime = self.runtime_ref()
        check = runtime.checks.get(result.check)
        if check is None:
            return
        cfg = check.config
        now = self.now()
        grouped = _group(cfg, result.findings, actionable=True)
        grouped.update(_group(cfg, result.problems, actionable=False))
        fence = self.store.fence
        if not grouped and fence is not None and self._quiet.get(cfg.name) == fence.token:
            return  # nothing seen, nothing open: no incident to decide about
        self._quiet.pop(cfg.name, None)
        for fp, (findings, actionable) in grouped.items():
            with self._locks.hold(fp):  # both decisions: nothing else can change the incident in between
                with self._decision(fp):
                    fired = self._seen(cfg, fp, findings, actionable, now)
                if fired is not None:  # a second decision: what to do about it (the ladder)
                    with self._decision(fp):
                        self._drive(cfg, fired, now)
        rows = self.store.list_incidents(open_only=True, check=cfg.name, limit=10_000)
        if not grouped and not rows and fence is not None:
            self._quiet[cfg.name] = fence.token
        for row in rows:
            if row.fingerprint in grouped:
                continue
            meta = row.kind in _META_KINDS
            healthy = result.outcome == "ok" and (meta or result.healthy_data)
            if healthy:
                self._healthy_incident(cfg, row.id, row.fingerprint, now, result.current)
            elif result.outcome == "ok" and row.state is S.VERIFYING:
                self._quiet_incident(cfg, row.id, row.fingerprint, now, result.current)

    def replica_problem(self, cfg: CheckConfig, finding: Finding) -> None:
        """A sighting of a problem of a replica rather than of one of its checks (``cfg`` stands for the
        replicas: :func:`aiops.engine.capacity.replica_config`): one incident per fingerprint (the finding's
        labels name the replica), opened firing and notified, never remediated, like a check's own problems."""
        fp = fingerprint(cfg.name, {**cfg.labels, **dict(finding.labels)})
        with self._decision(fp):
            self._seen(cfg, fp, [finding], False, self.now())

    def replica_problem_over(self, cfg: CheckConfig, fp: str, reason: str) -> bool:
        """Resolve the open incident of fingerprint ``fp`` (of :meth:`replica_problem`) with ``reason``, telling
        whoever was told it fired; False when none was open."""
        now = self.now()
        with self._decision(fp):
            row = self.store.open_incident(fp)
            if row is None:
                return False
            self._resolve(cfg, row, reason, now, notify=True, current={})
        return True

    def _healthy_incident(
        self,
        cfg: CheckConfig,
        incident_id: int,
        fp: str,
        now: float,
        current: Mapping[str, float],
        verified: str = HEALED,
    ) -> None:
        """A healthy evaluation for one incident; a configured verification probe runs outside every lock
        and transaction, between the decision that asks for it and the one that applies its answer."""
        with self._decision(fp):
            row = self.store.get_incident(incident_id)
            if row is None or not row.state.is_open:
                return
            probe_for = self._healthy(cfg, row, now, current, verified)
        if probe_for is None:
            return
        failure = probe_failure(cfg.policy.verify)
        with self._decision(fp):
            row = self.store.get_incident(incident_id)
            if row is None or row.state is not S.VERIFYING or row.verify_started_at != probe_for:
                return  # something else decided meanwhile (deadline passed, a person acted)
            self._verified(cfg, row, failure, now, current, verified)

    def _seen(
        self, cfg: CheckConfig, fp: str, findings: list[Finding], actionable: bool, now: float
    ) -> Incident | None:
        """Record a sighting; returns the incident when it just went firing (the ladder decides next)."""
        row = self.store.open_incident(fp)
        if row is None:
            findings = self._unhandled(fp, findings)
            if not findings:
                return None
        top = max(findings, key=lambda f: (f.severity.rank, f.score))
        severity = Severity(cfg.severity) if cfg.severity else max((f.severity for f in findings), key=lambda s: s.rank)
        evidence = {"findings": [f.to_dict() for f in findings[:10]]}
        if row is None:
            firing = not actionable or cfg.policy.for_ <= 0
            state = S.FIRING if firing else S.PENDING
            opened = self.store.create_incident_once(
                {
                    "fingerprint": fp,
                    "check_name": cfg.name,
                    "labels": {**cfg.labels, **dict(top.labels)},
                    "state": state.value,
                    "severity": severity.value,
                    "kind": top.kind if not actionable else "detector:" + top.kind,
                    "summary": top.summary,
                    "evidence": evidence,
                    "opened_at": now,
                    "updated_at": now,
                    "firing_at": now if firing else None,
                    "last_seen_at": now,
                    "rung": 0,
                    "attempts": 0,
                    "healthy_ticks": 0,
                    "notified_firing": False,
                },
                actor="detector:" + top.detector,
                reason=top.summary,
            )
            if opened is not None:
                log.info("incident opened", incident=opened.id, check=cfg.name, state=state.value, summary=top.summary)
                self._emit(cfg.name, state.value)
                if state is S.FIRING:
                    return self._on_firing(cfg, opened, now)
                self._reached("incident.pending", cfg.name)
                return None
            row = self.store.open_incident(fp)  # another replica opened it a moment ago: this sighting joins it
            if row is None:
                return None
        state = row.state
        updates: dict[str, Any] = {"last_seen_at": now, "evidence": evidence, "summary": top.summary}
        if state is S.PENDING and now - row.opened_at >= cfg.policy.for_:
            row = self._move(
                row,
                S.FIRING,
                "detector",
                f"still anomalous after {cfg.policy.for_:g}s",
                evidence,
                {**updates, "firing_at": now},
            )
            return self._on_firing(cfg, row, now)
        if state is S.VERIFYING:
            updates["healthy_ticks"] = 0
        if state in (S.SILENCED, S.ACKNOWLEDGED) and row.silenced_until and now >= row.silenced_until:
            row = self._move(row, S.FIRING, "system", "silence expired", evidence, {**updates, "silenced_until": None})
            self._drive(cfg, row, now)
            return None
        row = self.store.update_incident(row.id, updates, now=now)
        if state is S.FIRING:
            self._drive(cfg, row, now)
        return None

    def _unhandled(self, fp: str, findings: list[Finding]) -> list[Finding]:
        """The findings that are news for a fingerprint with no open incident.

        A restart re-scores the points since the last checkpoint, so the detectors find again what the
        previous process already turned into an incident and resolved. A finding about data no newer than
        the last data its fingerprint's previous incident saw is that replay, not a new problem. Data time
        is compared with data time (a finding's ``observed_at``), never with the wall clock, so a source
        whose timestamps lag or lie in the past is judged by its own clock.
        """
        previous = self.store.last_incident(fp)
        if previous is None:
            return findings
        seen = _data_seen_until(previous.evidence)
        if seen is None:
            return findings
        return [f for f in findings if f.observed_at <= 0 or f.observed_at > seen]

    def _quiet_incident(
        self, cfg: CheckConfig, incident_id: int, fp: str, now: float, current: Mapping[str, float]
    ) -> None:
        """A tick without fresh data while verifying: what it counts as is the check's ``verify.quiet``."""
        with self._decision(fp):
            row = self.store.get_incident(incident_id)
            if row is None or row.state is not S.VERIFYING:
                return
            verdict = quiet_verdict(cfg.policy.verify, row, now)
            if verdict is QuietVerify.UNHEALTHY:
                self._not_healed(cfg, row, QUIET_UNHEALTHY_REASON, now)
        if verdict is QuietVerify.HEALTHY:
            self._healthy_incident(cfg, incident_id, fp, now, current, verified=QUIET_HEALTHY_REASON)

    def _not_healed(self, cfg: CheckConfig, row: Incident, reason: str, now: float) -> None:
        last = safety.last_executed(self.store, row.id)
        next_rung = safety.failed(self.store, cfg, row, last, reason, now)
        row = self._move(row, S.FIRING, "verifier", reason, {}, {"rung": next_rung})
        self._drive(cfg, row, now)

    def _healthy(
        self, cfg: CheckConfig, row: Incident, now: float, current: Mapping[str, float], verified: str = HEALED
    ) -> float | None:
        """Apply a healthy evaluation. Returns the verification's start time when a probe must run before
        the incident can resolve (the caller runs it outside the lock and calls :meth:`_verified`)."""
        state = row.state
        if state is S.PENDING:
            self._resolve(cfg, row, "cleared before the for-duration elapsed", now, notify=False, current=current)
        elif state is S.VERIFYING:
            settle_end = float(row.verify_started_at or now) + cfg.policy.verify.settle
            if now < settle_end:
                return None
            ticks = row.healthy_ticks + 1
            row = self.store.update_incident(row.id, {"healthy_ticks": ticks}, now=now)
            if ticks >= cfg.policy.verify.healthy_ticks:
                if has_probes(cfg.policy.verify):
                    return row.verify_started_at if row.verify_started_at is not None else None
                self._verified(cfg, row, None, now, current, verified)
        elif state in (S.FIRING, S.ESCALATED, S.ACKNOWLEDGED, S.SILENCED) and (
            now - row.last_seen_at >= cfg.policy.resolve_after
        ):
            self._resolve(cfg, row, "healthy again", now, notify=True, current=current)
        # remediating: the action's outcome decides first; verification follows it
        return None

    def _verified(
        self,
        cfg: CheckConfig,
        row: Incident,
        probe: str | None,
        now: float,
        current: Mapping[str, float],
        verified: str = HEALED,
    ) -> None:
        """Enough healthy ticks after the settle time; ``probe`` is why a verification probe disagrees."""
        if probe is not None:  # the symptom is gone, but the probe says the fix is not (yet) there
            self.store.update_incident(row.id, {"guard_note": probe}, now=now)
            return
        safety.healed(self.store, row, now)
        self._resolve(cfg, row, verified, now, notify=True, current=current)

    # -- the ladder ------------------------------------------------------------------------------------

    def _on_firing(self, cfg: CheckConfig, row: Incident, now: float) -> Incident | None:
        """Firing: its message is queued in the same unit of work. Returns the incident when the ladder
        applies to it."""
        self._notify(cfg, row, "firing", f"{row.summary}", now)
        row = self.store.update_incident(row.id, {"notified_firing": True}, now=now)
        self._reached("incident.firing", cfg.name)
        return row if row.kind.startswith("detector:") else None

    def _drive(self, cfg: CheckConfig, row: Incident, now: float) -> None:
        """Take the next step for a firing incident, unless an action of it is already under way."""
        if row.state is not S.FIRING or not row.kind.startswith("detector:"):
            return
        incident_id = row.id
        if any(a.state in _ACTIVE_ACTION_STATES for a in self.store.list_actions(incident_id=incident_id)):
            return
        rung = row.rung
        target_last: float | None = None
        guards: GuardFacts | None = None
        if rung < len(cfg.policy.actions):
            target = self._plan_target(cfg, row, rung)
            if target is not None and cfg.policy.cooldown > 0:
                last = self.store.last_action_on_target(target, _EXECUTED_STATES)
                if last is not None and last.incident_id != incident_id:
                    target_last = last.last_at
            guards = safety.gather(self.store, cfg, self.runtime_ref().config.settings.safety, row, rung, target, now)
        step = next_step(
            policy=cfg.policy,
            rung=rung,
            attempts=row.attempts,
            paused=self.paused(),
            last_action_on_target_at=target_last,
            now=now,
            guards=guards,
        )
        if step.kind == "act":
            self._act(cfg, row, step, now)
        elif step.kind == "skip":
            self._skip(cfg, row, step, now)
        elif step.kind == "escalate":
            self._escalate(cfg, row, step.reason, now)
        elif step.kind == "wait" and row.guard_note != step.reason:
            self.store.update_incident(incident_id, {"guard_note": step.reason}, now=now)
            log.info("action held back", incident=incident_id, reason=step.reason)

    def _skip(self, cfg: CheckConfig, row: Incident, step: Step, now: float) -> None:
        """A guard (the circuit breaker) rules this rung out: record it in the ledger, go down the ladder."""
        assert step.action is not None
        incident_id = row.id
        self.store.create_action(
            {
                "idempotency_key": f"incident-{incident_id}-rung-{step.rung}-skipped",
                "incident_id": incident_id,
                "check_name": cfg.name,
                "rung": step.rung,
                "action_type": step.action.type,
                "action_label": step.action.label,
                "mode": step.action.mode.value,
                "target": "",
                "plan": {"action": step.action.type, "description": "skipped", "target": "", "details": {}},
                "state": ActionState.SKIPPED.value,
                "runs": 0,
                "created_at": now,
                "updated_at": now,
                "finished_at": now,
                "guard": step.reason,
            }
        )
        log.warning("rung skipped", incident=incident_id, rung=step.rung, reason=step.reason)
        if step.rung + 1 >= len(cfg.policy.actions):
            self._escalate(cfg, row, f"{step.reason}; no further rung", now)
            return
        row = self.store.update_incident(incident_id, {"rung": step.rung + 1, "guard_note": step.reason}, now=now)
        self._drive(cfg, row, now)

    def _plan_target(self, cfg: CheckConfig, row: Incident, rung: int) -> str | None:
        try:
            return str(self.runtime_ref().plan(cfg.name, rung, incident_view(row)).target)
        except PlanRefused:
            return None  # _act holds the action and says why, once
        except Exception as exc:
            log.warning("cannot plan action", incident=row.id, rung=rung, error=str(exc))
            return None

    def _act(self, cfg: CheckConfig, row: Incident, step: Step, now: float) -> None:
        assert step.action is not None
        incident_id = row.id
        runtime = self.runtime_ref()
        try:
            plan = runtime.plan(cfg.name, step.rung, incident_view(row))
        except PlanRefused as exc:
            # The incident's data (a pushed label) failed the action's value rules: hold, with the reason
            # on the incident. Nothing ran; the sweeper re-plans, so a config that allows the value goes ahead.
            note = f"held: {step.action.label} refused this incident's data: {exc}"
            if row.guard_note != note:
                self.store.update_incident(incident_id, {"guard_note": note}, now=now)
                log.warning("action held back", incident=incident_id, reason=note)
            return
        except Exception as exc:
            self._escalate(cfg, row, f"cannot plan rung {step.rung} ({step.action.label}): {exc}", now)
            return
        mode = step.action.mode
        if runtime.config.settings.dry_run and mode is ActionMode.AUTO:
            mode = ActionMode.DRY_RUN
        key = f"incident-{incident_id}-rung-{step.rung}-attempt-{int(row.attempts or 0) + 1}"
        state = {
            ActionMode.AUTO: ActionState.PENDING,
            ActionMode.APPROVE: ActionState.AWAITING_APPROVAL,
            ActionMode.DRY_RUN: ActionState.DRY_RUN,
            ActionMode.OBSERVE: ActionState.OBSERVED,
        }[mode]
        final = state.is_final
        action = self.store.create_action(
            {
                "idempotency_key": key,
                "incident_id": incident_id,
                "check_name": cfg.name,
                "rung": step.rung,
                "action_type": step.action.type,
                "action_label": step.action.label,
                "mode": mode.value,
                "target": plan.target,
                "plan": {
                    "action": plan.action,
                    "description": plan.description,
                    "target": plan.target,
                    "details": dict(plan.details),
                },
                "state": state.value,
                "runs": 0,
                "created_at": now,
                "updated_at": now,
                "finished_at": now if final else None,
                "approval_deadline": now + step.action.approval_timeout if mode is ActionMode.APPROVE else None,
                "guard": step.reason,
            }
        )
        log.info("action planned", incident=incident_id, action=action.id, mode=mode.value, plan=plan.description)
        self._reached("action.planned", cfg.name)
        if mode is ActionMode.AUTO:
            safety.trial_started(self.store, step.action, action, now)
            self._move(
                row,
                S.REMEDIATING,
                "policy",
                f"running {step.action.label}: {plan.description}",
                {"action_id": action.id, "plan": action.plan},
                {"guard_note": None},
            )
        elif mode is ActionMode.APPROVE:
            row = self.store.update_incident(
                incident_id, {"guard_note": f"waiting for approval of action {action.id}"}, now=now
            )
            self._notify(
                cfg,
                row,
                "approval",
                f"approve with: aiops approve {action.id}  (plan: {plan.description})",
                now,
                suffix=str(action.id),
                details={"action_id": action.id, "plan": action.plan},
            )
        else:
            # dry-run/observe: the plan is recorded, nothing ran; go on down the ladder so that a person is
            # told at the end that nothing was actually done.
            row = self.store.update_incident(
                incident_id, {"rung": step.rung + 1, "guard_note": f"{mode.value}: {plan.description}"}, now=now
            )
            self._drive(cfg, row, now)

    def _escalate(self, cfg: CheckConfig, row: Incident, reason: str, now: float) -> None:
        row = self._move(row, S.ESCALATED, "policy", reason, {}, {"guard_note": reason})
        self._notify(cfg, row, "escalated", reason, now)

    # -- called by the executor and the sweeper --------------------------------------------------------

    def claim_action(self, action: Action, owner: str, lease_until: float) -> Action | None:
        """Claim a pending action for execution; an approved one moves its incident to ``remediating`` in
        the same unit of work, so no crash can leave it "waiting for approval" while the action runs."""
        now = self.now()
        with self._action_decision(action.incident_id):
            if not self.store.claim_action(action.id, owner, lease_until, now, from_states=[ActionState.PENDING.value]):
                return None
            claimed = self.store.get_action(action.id)
            assert claimed is not None
            self._action_started(claimed)
            self._reached("action.claimed", action.check_name)
        return claimed

    def finish_action(self, action_id: int, values: Mapping[str, object], ok: bool, summary: str) -> Action:
        """Record an execution's final state and the incident's transition in one unit of work."""
        current = self.store.get_action(action_id)
        assert current is not None
        with self._action_decision(current.incident_id):
            updated = self.store.update_action(action_id, values, self.now())
            self.action_finished(updated, ok, summary)
            self._reached("action.finished", current.check_name)
        return updated

    def decide_approval(self, action_id: int, approved: bool, actor: str) -> Action:
        """A person's (or the timeout's) decision on an action awaiting approval, with its consequence for
        the incident, in one unit of work. Raises AiopsError when the action is not awaiting approval."""
        action = self.store.get_action(action_id)
        if action is None:
            raise AiopsError(f"no action {action_id}", reason="not_found")
        with self._action_decision(action.incident_id):
            if not self.store.decide_approval(action_id, approved, actor, self.now()):
                current = self.store.get_action(action_id)
                state = current.state if current is not None else "gone"
                raise AiopsError(f"action {action_id} is {state}, not awaiting approval", reason="conflict")
            decided = self.store.get_action(action_id)
            assert decided is not None
            self.approval_decided(decided, approved, actor)
            self._reached("action.approved", action.check_name)
        return decided

    @contextmanager
    def _action_decision(self, incident_id: int) -> Iterator[None]:
        incident = self.store.get_incident(incident_id)
        with self._decision(incident.fingerprint if incident is not None else f"incident-{incident_id}"):
            yield

    def action_finished(self, action: Action, ok: bool, summary: str) -> None:
        """An execution ended: success starts verification, failure moves down the ladder."""
        now = self.now()
        with self._action_decision(action.incident_id):
            row = self.store.get_incident(action.incident_id)
            runtime = self.runtime_ref()
            check = runtime.checks.get(action.check_name)
            if row is None or check is None or row.state is not S.REMEDIATING:
                return
            cfg = check.config
            attempts = row.attempts + 1
            if ok:
                verify = cfg.policy.verify
                self._move(
                    row,
                    S.VERIFYING,
                    "action",
                    f"{action.action_label} succeeded: {summary}",
                    {"action_id": action.id},
                    {
                        "attempts": attempts,
                        "verify_started_at": now,
                        "verify_deadline": now + verify.settle + verify.window,
                        "healthy_ticks": 0,
                    },
                )
            else:
                next_rung = safety.failed(self.store, cfg, row, action, f"failed: {summary}", now)
                row = self._move(
                    row,
                    S.FIRING,
                    "action",
                    f"{action.action_label} failed: {summary}",
                    {"action_id": action.id},
                    {"attempts": attempts, "rung": next_rung},
                )
                self._drive(cfg, row, now)

    def _action_started(self, action: Action) -> None:
        """An approved action was claimed for execution: the incident is now being remediated."""
        row = self.store.get_incident(action.incident_id)
        if row is not None and row.state is S.FIRING:
            self._move(
                row,
                S.REMEDIATING,
                action.decided_by or "policy",
                f"running approved {action.action_label}: {action.description}",
                {"action_id": action.id},
                {"guard_note": None},
            )

    def approval_decided(self, action: Action, approved: bool, actor: str) -> None:
        now = self.now()
        with self._action_decision(action.incident_id):
            row = self.store.get_incident(action.incident_id)
            check = self.runtime_ref().checks.get(action.check_name)
            if row is None or check is None:
                return
            if approved:
                self.store.update_incident(row.id, {"guard_note": f"action {action.id} approved by {actor}"}, now=now)
            elif row.state is S.FIRING:
                row = self.store.update_incident(
                    row.id,
                    {"rung": row.rung + 1, "guard_note": f"action {action.id} rejected by {actor}"},
                    now=now,
                )
                self._drive(check.config, row, now)

    def sweep(self, fence_for: FenceFor | None = None) -> None:
        """Time-driven transitions: verification deadlines, silences ending, held actions becoming due; and,
        every RECONCILE_EVERY seconds (and at the first sweep), :meth:`reconcile`.

        ``fence_for`` shards the sweep among replicas: it gives the lease fence of a check this replica runs
        (None for the others' checks, which are skipped), and each decision is fenced by it, so the sweep and
        the check's ticks decide about an incident on one replica only. Without it every incident is swept."""
        now = self.now()
        runtime = self.runtime_ref()
        if self._reconciled_at is None or now - self._reconciled_at >= RECONCILE_EVERY:
            self.reconcile(fence_for)
        for listed in self.store.list_incidents(open_only=True, limit=10_000):
            check = runtime.checks.get(listed.check_name)
            if check is None or not _sweep_due(listed, now):
                continue  # a decision (a fenced unit of work) for each open incident each second is not free
            with self.owned(fence_for, listed.check_name) as owned:
                if owned:
                    self._sweep_one(check.config, listed.id, listed.fingerprint, now)

    def _sweep_one(self, cfg: CheckConfig, incident_id: int, fp: str, now: float) -> None:
        with self._decision(fp):
            row = self.store.get_incident(incident_id)
            if row is None or not _sweep_due(row, now):
                return
            state = row.state
            if state is S.VERIFYING:
                self._not_healed(cfg, row, not_healed_reason(cfg.policy.verify, row), now)
            elif state in (S.SILENCED, S.ACKNOWLEDGED):
                row = self._move(row, S.FIRING, "system", "silence expired", {}, {"silenced_until": None})
                self._drive(cfg, row, now)
            else:
                self._drive(cfg, row, now)  # a cooldown may have ended or the kill switch been lifted

    @contextmanager
    def owned(self, fence_for: FenceFor | None, check: str) -> Iterator[bool]:
        """Yields whether this replica decides about ``check``'s incidents now, with its writes fenced; a
        decision refused because the lease moved meanwhile is dropped (the new owner sweeps it)."""
        if fence_for is None:
            yield True
            return
        fence = fence_for(check)
        if fence is None:
            yield False
            return
        try:
            with self.store.fenced(fence):
                yield True
        except LeaseLost:
            log.info("sweep decision dropped: the check's lease moved", check=check)

    def reconcile(self, fence_for: FenceFor | None = None) -> int:
        """Finish decisions that a crash of an older release (one commit per store call) left half-done;
        returns how many incidents it repaired. With one unit of work per decision none can arise, so this
        finds nothing on a store written by this release (``fence_for``: as for :meth:`sweep`):

        - ``remediating`` (or ``firing``) while its last executed action already finished: the action's
          outcome was committed but not its consequence for the incident;
        - ``firing`` while its approved action was claimed (running): the incident never said so.
        """
        repaired = 0
        runtime = self.runtime_ref()
        self._reconciled_at = self.now()
        for listed in self.store.list_incidents(open_only=True, limit=10_000):
            if listed.state not in (S.FIRING.value, S.REMEDIATING.value):
                continue
            if runtime.checks.get(listed.check_name) is None:
                continue
            with self.owned(fence_for, listed.check_name) as owned:
                if owned and self._reconcile_fingerprint(listed.id, listed.fingerprint):
                    repaired += 1
        return repaired

    def _reconcile_fingerprint(self, incident_id: int, fp: str) -> bool:
        with self._decision(fp):
            row = self.store.get_incident(incident_id)
            return row is not None and self._reconcile_one(row)

    def _reconcile_one(self, row: Incident) -> bool:
        incident_id = row.id
        last = safety.last_executed(self.store, incident_id)
        if last is None:
            return False
        state = row.state
        if last.state == ActionState.RUNNING.value:
            if state is S.FIRING:
                log.warning("reconcile: claimed action, incident still firing", incident=incident_id, action=last.id)
                self._action_started(last)
                return True
            return False
        if last.state not in _FINISHED_STATES or self._finish_applied(incident_id, last.id):
            return False
        log.warning(
            "reconcile: finished action not applied to its incident",
            incident=incident_id,
            action=last.id,
            state=state.value,
        )
        if state is S.FIRING:
            self._action_started(last)
        outcome = last.outcome or {}
        self.action_finished(last, last.state == ActionState.SUCCEEDED.value, str(outcome.get("summary", "")))
        return True

    def _finish_applied(self, incident_id: int, action_id: int) -> bool:
        """True when the audit trail holds the transition that applied this action's outcome."""
        return any(
            t.actor == "action" and t.evidence.get("action_id") == action_id
            for t in self.store.transitions(incident_id)
        )

    # -- people ----------------------------------------------------------------------------------------

    def acknowledge(self, incident_id: int, actor: str, comment: str) -> Incident:
        with self._action_decision(incident_id):
            row = self._require_open(incident_id)
            row = self._move(row, S.ACKNOWLEDGED, actor, comment or "acknowledged", {}, {"acknowledged_by": actor})
            check = self.runtime_ref().checks.get(row.check_name)
            if check is not None and row.notified_firing:
                # on-call tools (PagerDuty) stop paging once someone has it
                self._notify(check.config, row, "acknowledged", f"acknowledged by {actor}: {comment}", self.now())
            return row

    def silence(self, incident_id: int, actor: str, seconds: float, comment: str) -> Incident:
        with self._action_decision(incident_id):
            row = self._require_open(incident_id)
            until = self.now() + seconds
            return self._move(
                row, S.SILENCED, actor, comment or f"silenced for {seconds:g}s", {}, {"silenced_until": until}
            )

    def _require_open(self, incident_id: int) -> Incident:
        row = self.store.get_incident(incident_id)
        if row is None:
            raise AiopsError(f"no incident {incident_id}", reason="not_found")
        if not row.state.is_open:
            raise AiopsError(f"incident {incident_id} is already resolved", reason="conflict")
        return row

    # -- helpers ---------------------------------------------------------------------------------------

    def _resolve(
        self, cfg: CheckConfig, row: Incident, reason: str, now: float, *, notify: bool, current: Mapping[str, float]
    ) -> None:
        row = self._move(
            row,
            S.RESOLVED,
            "verifier" if row.state == S.VERIFYING else "detector",
            reason,
            {},
            {"resolved_at": now, "guard_note": None},
        )
        log.info("incident resolved", incident=row.id, check=cfg.name, reason=reason)
        if notify and row.notified_firing:
            self._notify(cfg, row, "resolved", reason, now, details={"resolution": resolution(row, current, now)})
        self._reached("incident.resolved", cfg.name)

    def _move(
        self,
        row: Incident,
        to: IncidentState,
        actor: str,
        reason: str,
        evidence: Mapping[str, Any],
        updates: Mapping[str, Any],
    ) -> Incident:
        new = self.store.update_incident(
            row.id, dict(updates), transition=(to.value, actor, reason, evidence), now=self.now()
        )
        log.info("incident transition", incident=row.id, check=row.check_name, to=to.value, reason=reason)
        self._emit(row.check_name, to.value)
        return new

    def _emit(self, check: str, state: str) -> None:
        if self.on_transition is not None:
            self.on_transition(check, state)

    def _notify(
        self,
        cfg: CheckConfig,
        row: Incident,
        event: str,
        text: str,
        now: float,
        *,
        suffix: str = "",
        details: Mapping[str, Any] | None = None,
    ) -> None:
        if row.silenced_until and now < row.silenced_until and event != "resolved":
            return
        runtime = self.runtime_ref()
        dedup = f"{row.fingerprint}:{row.id}:{event}" + (f":{suffix}" if suffix else "")
        settings = runtime.config.settings
        message = build_message(
            event,
            row,
            text,
            dedup_key=dedup,
            details=details,
            external_url=settings.server.external_url,
            link_token=_link_token(settings),  # approval and verdict links
        )
        payload = message_to_payload(message)
        # routes, flap control and grouping live in aiops/engine/routing.py
        from aiops.engine.routing import enqueue_message

        enqueue_message(self.store, runtime.config.settings, cfg.policy.notify, row, message, payload, now)


def _link_token(settings: Any) -> str | None:
    from aiops.config.loader import api_token

    try:
        return api_token(settings)
    except AiopsError:
        return None


def _sweep_due(row: Incident, now: float) -> bool:
    """Whether time alone moves ``row`` now: its verification deadline passed, its silence (or an
    acknowledgement's) ended, or it is firing with a held step (a cooldown or the kill switch) to retry."""
    state = row.state
    if state is S.VERIFYING:
        return row.verify_deadline is not None and now > row.verify_deadline
    if state in (S.SILENCED, S.ACKNOWLEDGED):
        return row.silenced_until is not None and row.silenced_until != 0 and now >= row.silenced_until
    return state is S.FIRING and bool(row.guard_note)


_META_KINDS = frozenset(
    {
        "check_timeout",
        "check_overrun",
        "state_not_saved",
        "source_unavailable",
        "check_error",
        "detector_error",
        "data_quality",
    }
)


def _data_seen_until(evidence: Mapping[str, object]) -> float | None:
    """The newest data time among the findings an incident's evidence keeps (None when none says)."""
    findings = evidence.get("findings")
    if not isinstance(findings, list | tuple):
        return None
    times = [
        float(f["observed_at"])
        for f in findings
        if isinstance(f, Mapping) and isinstance(f.get("observed_at"), int | float) and float(f["observed_at"]) > 0
    ]
    return max(times) if times else None


def _group(cfg: CheckConfig, findings: list[Finding], *, actionable: bool) -> dict[str, tuple[list[Finding], bool]]:
    grouped: dict[str, tuple[list[Finding], bool]] = {}
    for f in findings:
        fp = fingerprint(cfg.name, {**cfg.labels, **dict(f.labels)})
        grouped.setdefault(fp, ([], actionable))[0].append(f)
    return grouped


def incident_dict(row: Incident) -> dict[str, object]:
    """The incident as the API, the CLI and the console always showed it."""
    return row.to_json()
