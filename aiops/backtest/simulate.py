"""The replay itself: the engine's own pieces on a simulated clock, fed from history.

Nothing here decides anything: ``IncidentManager.observe`` / ``sweep``, ``ActionExecutor.tick`` and
``OutboxDispatcher.tick`` are driven exactly as the daemon's scheduler drives them, against a throwaway SQLite
store. Only the edges are swapped: each source for its :mod:`replay <aiops.replay>`, each
remediation for :class:`SimulatedRemediation` (plans with the real plugin, runs nothing), each notifier for
a capturing one, and verification probes (PromQL, commands) are dropped, so verification is decided by the
replayed data alone. The daemon runs its executor, outbox and sweeper every second; the replay runs them
after each tick while anything is open, so a time-driven transition lands at the next tick (at most one
``every`` late).
"""

from __future__ import annotations

import heapq
import math
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import structlog

from aiops.backtest.records import (
    BacktestResult,
    Hold,
    PlotSeries,
    SentMessage,
    SimulatedAction,
    Transition,
    WouldBeIncident,
)
from aiops.config.loader import Config
from aiops.config.models import CheckConfig
from aiops.engine.checks import CheckRunner
from aiops.engine.executor import ActionExecutor
from aiops.engine.incidents import IncidentManager
from aiops.engine.outbox import OutboxDispatcher
from aiops.engine.runtime import CheckRuntime, Runtime, build_runtime
from aiops.errors import AiopsError, PlanRefused
from aiops.plugins import PluginContext, Remediation
from aiops.replay import FrameReplay, Replay, RowsReplay, SeriesReplay, replay_of
from aiops.store.store import Row, Store
from aiops.testing import CapturingNotifier, FakeClock
from aiops.types import ActionContext, Frame, IncidentState, IncidentView, Outcome, Plan

PLOT_POINTS = 400
log = structlog.get_logger("aiops.backtest")


class SimClock(FakeClock):
    """The simulated now: set by the replay loop, read by every engine piece."""

    def set(self, at: float) -> None:
        with self._lock:
            self._now = at


class SimulatedRemediation(Remediation):
    """Stands in for a ladder rung: the real plugin plans (plans are pure, and a refused plan is held as it
    would be live), nothing is executed, and the outcome is the configured one (default: it ran)."""

    def __init__(self, real: Any | None, action_type: str, check: str, ok: bool) -> None:
        self.real = real
        self.action_type = action_type
        self.check = check
        self.ok = ok

    def plan(self, incident: IncidentView) -> Plan:
        if self.real is not None:
            try:
                plan: Plan = self.real.plan(incident)
                return plan
            except PlanRefused:
                raise
            except Exception as exc:  # a plan that needs a live system: the rung is still shown, by its type
                log.debug("plan needs a live system; shown by type", action=self.action_type, error=str(exc))
        return Plan(action=self.action_type, description=f"{self.action_type} (simulated)", target=self.check)

    def execute(self, plan: Plan, ctx: ActionContext) -> Outcome:
        verb = "would have run" if self.ok else "would have run and failed"
        return Outcome(ok=self.ok, summary=f"simulated: {verb}: {plan.description}")

    def resume(self, plan: Plan, ctx: ActionContext) -> Outcome | None:
        return self.execute(plan, ctx)


@dataclass
class SimulatedRuntime(Runtime):
    """The config's runtime with every remediation simulated (``action_ok`` is what each reports)."""

    action_ok: bool = True

    def captured(self) -> dict[str, CapturingNotifier]:
        """The capturing notifiers that stand in for the configured ones: what would have been sent."""
        return {name: n for name, n in self.notifiers.items() if isinstance(n, CapturingNotifier)}

    def remediation(self, check: str, rung: int) -> Remediation:
        action = self.action_config(check, rung)
        if action is None:
            raise AiopsError(f"check {check!r} has no action at rung {rung}")
        try:
            real = super().remediation(check, rung)
        except Exception:
            real = None
        return SimulatedRemediation(real, action.type, check, self.action_ok)


class ReplayRunner(CheckRunner):
    """The daemon's check runner over a replay; detector state stays in memory for the whole replay instead
    of being written to the store after every tick (nothing outlives a backtest)."""

    def _persist(self, frame: Frame, now: float) -> None:
        self._since = now


@dataclass
class _Watch:
    """What the loop learns from the store between ticks: which checks have open incidents, and the guard
    notes seen (the holds), so quiet stretches cost no store queries at all."""

    open_checks: set[str] = field(default_factory=set)
    holds: dict[int, list[Hold]] = field(default_factory=dict)

    def saw(self, rows: Sequence[Row], now: float) -> None:
        for row in rows:
            note = row["guard_note"]
            if not note or row["state"] != IncidentState.FIRING.value:
                continue
            held = self.holds.setdefault(int(row["id"]), [])
            if not held or held[-1].reason != note:
                held.append(Hold(at=now, reason=str(note)))


def without_probes(check: CheckConfig) -> CheckConfig:
    verify = check.policy.verify.model_copy(update={"promql": None, "command": None})
    return check.model_copy(update={"policy": check.policy.model_copy(update={"verify": verify})})


def select_checks(config: Config, names: Sequence[str] | None) -> list[CheckConfig]:
    checks = list(config.settings.checks)
    if not names:
        return checks
    known = {c.name for c in checks}
    unknown = [n for n in names if n not in known]
    if unknown:
        raise AiopsError(f"no check named {', '.join(unknown)} in {config.path} (known: {', '.join(sorted(known))})")
    return [c for c in checks if c.name in names]


def read_history(config: Config, names: Sequence[str] | None, since: float, until: float) -> dict[str, Replay]:
    """One replay per selected check: the bulk read that a backtest (or every candidate of a tune) shares."""
    selected = select_checks(config, names)
    # Outside the daemon, pushed data is read from the store the config names.
    pushed = any(c.source.get("type") in ("push", "alertmanager") for c in selected)
    events = Store(config.settings.store.url) if pushed else None
    try:
        runtime = build_runtime(config, PluginContext.standalone(config.settings.state_dir, events=events))
        out: dict[str, Replay] = {}
        for check in selected:
            out[check.name] = replay_of(runtime.checks[check.name].source, since, until, _interval(check))
        runtime.stop()
    finally:
        if events is not None:
            events.close()
    return out


def simulate(
    config: Config,
    since: float,
    until: float,
    *,
    checks: Sequence[str] | None = None,
    replays: Mapping[str, Replay] | None = None,
    action_ok: bool = True,
    progress: bool = False,
) -> BacktestResult:
    """Replay the selected checks of ``config`` over ``(since, until]``; nothing is executed or sent."""
    if until <= since:
        raise AiopsError("the backtest window is empty: --to must be after --from")
    started = time.monotonic()
    selected = select_checks(config, checks)
    names = [c.name for c in selected]
    replays = dict(replays) if replays is not None else read_history(config, names, since, until)
    for replay in replays.values():
        replay.rewind()
    built = build_runtime(config)
    runtime = SimulatedRuntime(
        config=config,
        checks={
            c.name: CheckRuntime(
                config=without_probes(c), source=replays[c.name], detectors=built.checks[c.name].detectors
            )
            for c in selected
        },
        notifiers={name: CapturingNotifier() for name in built.notifiers},
        action_ok=action_ok,
    )
    clock = SimClock(since)
    with tempfile.TemporaryDirectory(prefix="aiops-backtest-") as tmp:
        store = Store(f"sqlite:///{Path(tmp) / 'backtest.db'}")
        try:
            store.migrate()
            result = _Loop(store, runtime, clock).run(selected, since, until, progress)
            incidents = _incidents(store, result, replays, until)
            cleared = sum(1 for r in store.list_incidents(limit=10**7) if r.firing_at is None)
        finally:
            store.close()
    messages = tuple(
        sorted(
            (
                SentMessage(
                    at=result.sent_at.get(id(m), 0.0),
                    notifier=name,
                    event=m.event,
                    check=m.incident.check,
                    title=m.title,
                )
                for name, notifier in runtime.captured().items()
                for m in notifier.messages
            ),
            key=lambda m: m.at,
        )
    )
    return BacktestResult(
        config=config.path,
        since=since,
        until=until,
        checks=tuple(names),
        ticks=result.ticks,
        points=sum(len(r) for r in replays.values() if isinstance(r, SeriesReplay | RowsReplay | FrameReplay)),
        incidents=incidents,
        cleared_pending=cleared,
        messages=messages,
        wall_seconds=round(time.monotonic() - started, 3),
    )


@dataclass
class _Run:
    ticks: int = 0
    watch: _Watch = field(default_factory=_Watch)
    sent_at: dict[int, float] = field(default_factory=dict)


class _Loop:
    def __init__(self, store: Store, runtime: SimulatedRuntime, clock: SimClock) -> None:
        self.store = store
        self.runtime = runtime
        self.clock = clock
        self.incidents = IncidentManager(store, lambda: runtime, clock.now)
        self.executor = ActionExecutor(store, self.incidents, lambda: runtime, clock.now, "backtest", max_workers=1)
        self.outbox = OutboxDispatcher(store, lambda: runtime, clock.now)

    def run(self, selected: Sequence[CheckConfig], since: float, until: float, progress: bool) -> _Run:
        from tqdm import tqdm

        runners = {c.name: ReplayRunner(self.runtime.checks[c.name], self.store) for c in selected}
        run = _Run()
        total = sum(_count_ticks(c, since, until) for c in selected)
        bar = tqdm(total=total, disable=not progress, unit="tick", desc="backtest", mininterval=0.5)
        busy = False
        try:
            for at, due in _schedule(selected, since, until):
                self.clock.set(at)
                for name in due:
                    result = runners[name].tick_inline(at)
                    run.ticks += 1
                    if result.findings or result.problems or name in run.watch.open_checks:
                        self.incidents.observe(result)
                        rows = self.store.list_incidents(open_only=True, check=name, limit=100_000)
                        run.watch.saw([r.to_json() for r in rows], at)
                        if rows:
                            run.watch.open_checks.add(name)
                        else:
                            run.watch.open_checks.discard(name)
                        busy = True
                bar.update(len(due))
                if busy:
                    busy = self._housekeeping(run, at)
            self.executor.shutdown(grace=5.0)
        finally:
            bar.close()
        return run

    def _housekeeping(self, run: _Run, at: float) -> bool:
        """The daemon's once-a-second jobs; returns whether anything is still open or queued."""
        self._execute()
        self.incidents.sweep()  # an action it queues starts at the next round, as in the daemon's jobs
        before = {name: len(n.messages) for name, n in self.runtime.captured().items()}
        self.outbox.tick()
        for name, notifier in self.runtime.captured().items():
            for message in notifier.messages[before[name] :]:
                run.sent_at[id(message)] = at
        rows = self.store.list_incidents(open_only=True, limit=100_000)
        run.watch.saw([r.to_json() for r in rows], at)
        run.watch.open_checks = {r.check_name for r in rows}
        return bool(rows) or self.store.outbox_pending() > 0 or bool(self.store.active_flaps())

    def _execute(self) -> None:
        self.executor.tick()
        while self.executor.inflight():
            time.sleep(0.0005)


def _interval(check: CheckConfig) -> float:
    if check.every is not None:
        return float(check.every)
    return 60.0  # cron checks: the history grid of instant queries; their ticks follow the crontab


def _count_ticks(check: CheckConfig, since: float, until: float) -> int:
    if check.every is not None:
        return max(0, math.floor((until - since) / check.every))
    return sum(1 for _ in _ticks(check, since, until))


def _ticks(check: CheckConfig, since: float, until: float) -> Iterator[float]:
    if check.every is not None:
        for k in range(1, _count_ticks(check, since, until) + 1):
            yield since + k * check.every
        return
    import datetime as dt

    from apscheduler.triggers.cron import CronTrigger

    assert check.cron is not None
    trigger = CronTrigger.from_crontab(check.cron, timezone="UTC")
    previous = None
    now = dt.datetime.fromtimestamp(since, dt.UTC)
    while True:
        fire = trigger.get_next_fire_time(previous, now)
        if fire is None or fire.timestamp() > until:
            return
        yield fire.timestamp()
        previous = fire
        now = fire + dt.timedelta(microseconds=1)


def _schedule(selected: Sequence[CheckConfig], since: float, until: float) -> Iterator[tuple[float, list[str]]]:
    """Tick times of every check merged in time order; checks due at the same instant tick together."""
    merged = heapq.merge(*[((t, c.name) for t in _ticks(c, since, until)) for c in selected])
    current: float | None = None
    due: list[str] = []
    for at, name in merged:
        if current is not None and at != current:
            yield current, due
            due = []
        current = at
        due.append(name)
    if current is not None:
        yield current, due


def _incidents(store: Store, run: _Run, replays: Mapping[str, Replay], until: float) -> tuple[WouldBeIncident, ...]:
    out = []
    for record in sorted(store.list_incidents(limit=10**7), key=lambda r: r.id):
        row: dict[str, Any] = dict(record.to_json())
        if row["firing_at"] is None:
            continue
        incident_id = int(row["id"])
        timeline = _timeline(store, incident_id)
        actions = tuple(
            _action(dict(a.to_json()))
            for a in sorted(store.list_actions(incident_id=incident_id, limit=10_000), key=lambda a: a.id)
        )
        labels = {str(k): str(v) for k, v in dict(row["labels"] or {}).items()}
        resolved = float(row["resolved_at"]) if row["resolved_at"] is not None else None
        out.append(
            WouldBeIncident(
                check=str(row["check_name"]),
                fingerprint=str(row["fingerprint"]),
                labels=labels,
                kind=str(row["kind"]),
                summary=str(row["summary"]),
                severity=str(row["severity"]),
                opened_at=float(row["opened_at"]),
                firing_at=float(row["firing_at"]),
                resolved_at=resolved,
                final_state=str(row["state"]),
                timeline=timeline,
                actions=actions,
                holds=tuple(run.watch.holds.get(incident_id, [])),
                plot=_plot(replays.get(str(row["check_name"])), labels, float(row["opened_at"]), resolved or until),
            )
        )
    return tuple(out)


def _timeline(store: Store, incident_id: int) -> tuple[Transition, ...]:
    return tuple(
        Transition(at=t.at, state=t.to_state.value, actor=t.actor, reason=t.reason)
        for t in store.transitions(incident_id)
    )


def _action(a: Row) -> SimulatedAction:
    plan = dict(a["plan"] or {})
    outcome = dict(a["outcome"] or {})
    return SimulatedAction(
        at=float(a["created_at"]),
        rung=int(a["rung"]),
        action=str(a["action_type"]),
        mode=str(a["mode"]),
        target=str(a["target"] or ""),
        description=str(plan.get("description", "")),
        state=str(a["state"]),
        outcome=str(outcome.get("summary", "")),
        guard=str(a["guard"]) if a["guard"] else None,
    )


def _plot(replay: Replay | None, labels: Mapping[str, str], start: float, end: float) -> tuple[PlotSeries, ...]:
    """The evidence around an incident, thinned to about PLOT_POINTS points a series."""
    if not isinstance(replay, SeriesReplay | RowsReplay | FrameReplay):
        return ()
    pad = max((end - start) * 0.5, 60.0)
    out = []
    for s in replay.window(labels, start - pad, end + pad):
        step = max(1, len(s.timestamps) // PLOT_POINTS)
        out.append(PlotSeries(s.key, tuple(s.timestamps[::step]), tuple(s.values[::step])))
    return tuple(out)
