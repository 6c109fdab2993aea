"""Runs remediations from the ledger, exactly once per idempotency key, surviving crashes.

An action is claimed with a conditional UPDATE (pending -> running, with this process as lease owner). The
remediation saves a *handle* (a supervisor pid, a request id) before its side effect proceeds. After a crash
the next start finds the action still ``running`` under a dead owner and, instead of running it again, asks
the remediation to ``resume`` from the handle: the outcome is read, or waited for, never re-created. Without
a handle the side effect provably never started, so the action is simply executed.

The action's final state and its consequence for the incident are one unit of work
(:meth:`IncidentManager.finish_action`). When that write fails (the store is read-only, full or gone), the
outcome is kept in memory and the write retried until it succeeds or the daemon stops: the action stays
this process's, so it is never mistaken for one "left by a dead process". After a stop the lease is
released and the next start reads the outcome again from the handle.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import KW_ONLY, InitVar, dataclass, field
from typing import Any

import structlog

from aiops import faults
from aiops.engine.incidents import FenceFor, IncidentManager
from aiops.engine.messages import incident_view
from aiops.engine.runtime import Runtime
from aiops.errors import AiopsError, LeaseLost, StoreError
from aiops.plugins import Remediation
from aiops.store.records import Action
from aiops.store.store import Store, owner_is_dead
from aiops.types import ActionContext, ActionState, Outcome, Plan

log = structlog.get_logger("aiops.executor")

#: Longest wait between two attempts to record an outcome while the store refuses writes.
RECORD_RETRY_MAX = 5.0


@dataclass(eq=False)
class ActionExecutor:
    """Claims due actions and runs each in a worker thread; reconciles orphans left by dead processes."""

    store: Store
    incidents: IncidentManager
    runtime_ref: Callable[[], Runtime]
    now: Callable[[], float]
    owner: str
    _: KW_ONLY
    max_workers: InitVar[int] = 4
    on_done: Callable[[str, str, float], None] | None = None
    fence_for: FenceFor | None = None
    """Shards new work by check lease: only the replica running a check claims its pending actions and times
    out its approvals, each claim fenced by the lease (None: one replica does everything)."""
    _pool: ThreadPoolExecutor = field(init=False)
    _inflight: dict[int, Future[None]] = field(default_factory=dict, init=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False)
    _stopping: threading.Event = field(default_factory=threading.Event, init=False)

    def __post_init__(self, max_workers: int) -> None:
        self._pool = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="action")

    # -- scheduling ------------------------------------------------------------------------------------

    def tick(self) -> None:
        """Claim and start due actions; expire approvals; adopt orphans of dead owners."""
        if self._stopping.is_set():
            return
        now = self.now()
        self._expire_approvals(now)
        for action in self.store.list_actions(state=ActionState.RUNNING.value, limit=1000):
            if action.id in self._inflight:
                continue
            expired = action.lease_expires is None or action.lease_expires <= now
            if action.lease_owner == self.owner or expired or owner_is_dead(action.lease_owner):
                self._adopt(action, now)
        if self.incidents.paused():
            return  # the kill switch also stops actions already queued but not started
        for action in reversed(self.store.list_actions(state=ActionState.PENDING.value, limit=100)):
            lease = now + self._timeout(action) + 30
            claimed: Action | None = None
            with self.incidents.owned(self.fence_for, action.check_name) as owned:
                if owned:
                    claimed = self.incidents.claim_action(action, self.owner, lease)
            if claimed is not None:
                self._start(claimed, resume=False)

    def _adopt(self, action: Action, now: float) -> None:
        lease = now + self._timeout(action) + 30
        if action.lease_owner != self.owner and not self.store.steal_action(
            action.id, action.lease_owner, self.owner, lease, now
        ):
            return
        adopted = self.store.get_action(action.id)
        assert adopted is not None
        if adopted.state is not ActionState.RUNNING or adopted.lease_owner != self.owner:
            # The list of running actions was read before this replica's own run of it recorded its outcome and
            # left the in-flight set: it is finished, and running it again would repeat its side effect.
            return
        log.warning(
            "adopting action left running by a dead process",
            action=action.id,
            previous_owner=action.lease_owner,
            has_handle=bool(action.handle),
        )
        self._start(adopted, resume=bool(adopted.handle))

    def _start(self, action: Action, *, resume: bool) -> None:
        action_id = action.id
        with self._lock:
            if action_id in self._inflight:
                return
            self._inflight[action_id] = self._pool.submit(self._run, action, resume)

    def _timeout(self, action: Action) -> float:
        cfg = self.runtime_ref().action_config(action.check_name, action.rung)
        return cfg.timeout if cfg is not None else 300.0

    # -- running ---------------------------------------------------------------------------------------

    def _run(self, action: Action, resume: bool) -> None:
        action_id = action.id
        try:
            self._run_and_record(action, resume)
        finally:
            with self._lock:
                self._inflight.pop(action_id, None)

    def _run_and_record(self, action: Action, resume: bool) -> None:
        action_id = action.id
        started = time.monotonic()
        bound = log.bind(action=action_id, incident=action.incident_id, key=action.idempotency_key)
        try:
            outcome = self._execute(action, resume, bound)
        except Exception as exc:  # a plugin bug is a failed action, never a dead worker
            bound.error("remediation raised", error=repr(exc), exc_info=exc)
            outcome = Outcome(ok=False, summary=f"remediation raised {exc.__class__.__name__}: {exc}")
        if self._stopping.is_set() and not outcome.ok and outcome.recoverable:
            return  # shutting down: the lease is released and the next start resumes it
        state = ActionState.SUCCEEDED if outcome.ok else ActionState.FAILED
        if not self._record(action_id, state, outcome, bound):
            return  # stopping before the store took it: the next start reads the outcome from the handle
        seconds = time.monotonic() - started
        bound.info("action finished", ok=outcome.ok, summary=outcome.summary, seconds=round(seconds, 3))
        if self.on_done is not None:
            self.on_done(action.action_type, state.value, seconds)

    def _record(self, action_id: int, state: ActionState, outcome: Outcome, bound: Any) -> bool:
        """Commit the outcome (and the incident's transition); retried while the store refuses writes."""
        delay = 0.2
        while True:
            now = self.now()
            values = {
                "state": state.value,
                "finished_at": now,
                "lease_owner": None,
                "lease_expires": None,
                "outcome": {"ok": outcome.ok, "summary": outcome.summary, "details": dict(outcome.details)},
                "error": None if outcome.ok else outcome.summary,
            }
            try:
                self.incidents.finish_action(action_id, values, outcome.ok, outcome.summary)
                return True
            except StoreError as exc:
                bound.error("cannot record the action's outcome yet; retrying", error=str(exc), retry_in=delay)
            if self._stopping.wait(delay):
                return False
            delay = min(delay * 2, RECORD_RETRY_MAX)

    def _execute(self, action: Action, resume: bool, bound: Any) -> Outcome:
        remediation = self.runtime_ref().remediation(action.check_name, action.rung)
        try:
            return self._execute_with(remediation, action, resume, bound)
        finally:
            remediation.stop()

    def _execute_with(self, remediation: Remediation, action: Action, resume: bool, bound: Any) -> Outcome:
        incident = self.store.get_incident(action.incident_id)
        assert incident is not None
        plan_data = action.plan
        details = plan_data.get("details")
        plan = Plan(
            action=str(plan_data["action"]),
            description=str(plan_data["description"]),
            target=str(plan_data["target"]),
            details=dict(details) if isinstance(details, Mapping) else {},
        )
        action_id = action.id

        def save_handle(handle: Mapping[str, Any]) -> None:
            self.store.update_action(action_id, {"handle": dict(handle)}, self.now())
            faults.point("action.handle_saved", action.check_name)

        ctx = ActionContext(
            idempotency_key=action.idempotency_key,
            incident=incident_view(incident),
            deadline=self.now() + self._timeout(action),
            save_handle=save_handle,
            now=self.now,
            handle=dict(action.handle) if action.handle else None,
        )
        if resume:
            bound.info("resuming action from its handle")
            outcome: Outcome | None = remediation.resume(plan, ctx)
            if outcome is None:
                return Outcome(
                    ok=False,
                    summary="interrupted: the previous daemon died mid-action and its "
                    "outcome cannot be known; not re-run to avoid doing it twice",
                )
            return outcome
        bound.info("executing action", plan=plan.description)
        result: Outcome = remediation.execute(plan, ctx)
        return result

    def _expire_approvals(self, now: float) -> None:
        for action in self.store.list_actions(state=ActionState.AWAITING_APPROVAL.value, limit=1000):
            deadline = action.approval_deadline
            if deadline is None or now < float(deadline):
                continue
            cfg = self.runtime_ref().action_config(action.check_name, action.rung)
            approve = cfg is not None and cfg.on_approval_timeout == "approve"
            with self.incidents.owned(self.fence_for, action.check_name) as owned:
                if not owned:
                    continue  # the replica running the check times it out
                try:
                    self.incidents.decide_approval(action.id, approve, "timeout")
                except LeaseLost:
                    raise
                except AiopsError:
                    continue  # a person decided first
            log.info("approval timed out", action=action.id, default="approve" if approve else "reject")

    # -- lifecycle -------------------------------------------------------------------------------------

    def inflight(self) -> int:
        with self._lock:
            return len(self._inflight)

    def shutdown(self, grace: float) -> None:
        """Stop claiming, give running actions ``grace`` seconds, then release the leases of the rest."""
        self._stopping.set()
        deadline = time.monotonic() + grace
        while self.inflight() and time.monotonic() < deadline:
            time.sleep(0.05)
        released = self.store.release_leases(self.owner, self.now())
        if released:
            log.warning("released leases of unfinished actions", count=released)
        self._pool.shutdown(wait=False, cancel_futures=True)
