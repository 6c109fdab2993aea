"""The incident state machine, ladder, guards, verification and outbox, on a fake clock and a real SQLite
store. Each scenario is minutes of simulated time that runs in milliseconds."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from aiops.config.loader import parse_config
from aiops.engine.checks import CheckRunner
from aiops.engine.executor import ActionExecutor
from aiops.engine.incidents import IncidentManager
from aiops.engine.outbox import OutboxDispatcher
from aiops.engine.runtime import build_runtime
from aiops.store.records import Incident
from aiops.store.store import Store
from aiops.testing import (
    FakeClock,
    RecordingRemediation,
    ScriptedSource,
    register_test_plugins,
    unregister_test_plugins,
)
from aiops.types import ActionState

BASE = """
notifiers:
  capture: {type: capture}
checks:
  - name: latency
    every: 10s
    source: {type: scripted, channel: latency}
    detectors: [{type: threshold, above: 100}]
    policy:
%s
"""


def policy(text: str) -> str:
    return BASE % "\n".join("      " + line for line in text.strip().splitlines())


class Harness:
    def __init__(self, tmp_path: Path, config_text: str) -> None:
        self.config = parse_config(config_text, "test.yaml", env={})
        self.runtime = build_runtime(self.config)
        self.store = Store(f"sqlite:///{tmp_path}/aiops.db")
        self.store.migrate()
        self.clock = FakeClock()
        self.paused = False
        self.incidents = IncidentManager(self.store, lambda: self.runtime, self.clock.now, paused=lambda: self.paused)
        self.executor = ActionExecutor(self.store, self.incidents, lambda: self.runtime, self.clock.now, "test:1:1.0")
        self.outbox = OutboxDispatcher(self.store, lambda: self.runtime, self.clock.now)
        self.runner = CheckRunner(self.runtime.checks["latency"], self.store)

    def tick(self, *values: float, step: float = 10.0) -> None:
        self.clock.advance(step)
        for i, v in enumerate(values):
            ScriptedSource.push("latency", self.clock.now() - len(values) + i + 1, v)
        self.incidents.observe(self.runner.tick(self.clock.now()))
        self.incidents.sweep()
        self.run_actions()

    def run_actions(self) -> None:
        self.executor.tick()
        deadline = time.monotonic() + 10
        while self.executor.inflight() and time.monotonic() < deadline:
            time.sleep(0.005)

    def incident(self) -> Incident:
        rows = self.store.list_incidents(limit=1)
        assert rows, "no incident"
        return rows[0]

    def states(self) -> list[str]:
        return [t.to_state.value for t in self.store.transitions(self.incident().id)]

    def messages(self) -> list[str]:
        self.outbox.tick()
        return [m.event for m in self.runtime.notifiers["capture"].messages]


@pytest.fixture(autouse=True)
def _plugins() -> Iterator[None]:
    register_test_plugins()
    ScriptedSource.reset()
    RecordingRemediation.executions.clear()
    yield
    unregister_test_plugins()


def test_detect_remediate_verify_resolve(tmp_path: Path) -> None:
    h = Harness(
        tmp_path,
        policy("""
notify: [capture]
verify: {settle: 5s, window: 60s}
actions: [{type: recording}]
"""),
    )
    h.tick(50, 60)
    assert h.store.list_incidents() == []
    h.tick(500)
    assert len(RecordingRemediation.executions) == 1
    assert h.incident().state == "verifying"
    h.tick(55)  # healthy data after the settle time
    inc = h.incident()
    assert inc.state == "resolved"
    assert h.states() == ["firing", "remediating", "verifying", "resolved"]
    assert h.messages() == ["firing", "resolved"]
    assert h.store.list_actions()[0].state == "succeeded"


def test_no_data_is_not_health(tmp_path: Path) -> None:
    h = Harness(tmp_path, policy("verify: {window: 60s}\nactions: [{type: recording}]"))
    h.tick(500)
    assert h.incident().state == "verifying"
    h.tick()  # no new points: nothing is known, so nothing is verified
    assert h.incident().state == "verifying"


def test_not_healed_moves_down_the_ladder_then_escalates(tmp_path: Path) -> None:
    h = Harness(
        tmp_path,
        policy("""
notify: [capture]
cooldown: 0s
verify: {window: 30s}
actions: [{type: recording, name: first}, {type: recording, name: second, target: other}]
"""),
    )
    h.tick(500)
    for _ in range(4):
        h.tick(500)  # still anomalous through the first window, then the second
    for _ in range(4):
        h.tick(500)
    assert [a.action_label for a in reversed(h.store.list_actions())] == ["first", "second"]
    assert h.incident().state == "escalated"
    assert "escalated" in h.messages()
    assert len(RecordingRemediation.executions) == 2


def test_failed_action_escalates_without_verification(tmp_path: Path) -> None:
    h = Harness(tmp_path, policy("notify: [capture]\nactions: [{type: recording, fail: true}]"))
    h.tick(500)
    inc = h.incident()
    assert inc.state == "escalated"
    assert h.states() == ["firing", "remediating", "firing", "escalated"]


def test_for_duration_holds_pending(tmp_path: Path) -> None:
    h = Harness(tmp_path, policy("for: 15s\nnotify: [capture]"))
    h.tick(500)
    assert h.incident().state == "pending"
    h.tick(500)
    assert h.incident().state == "pending"
    h.tick(500)
    assert h.incident().state == "firing"
    assert h.messages() == ["firing"]


def test_pending_that_clears_is_resolved_quietly(tmp_path: Path) -> None:
    h = Harness(tmp_path, policy("for: 60s\nnotify: [capture]"))
    h.tick(500)
    h.tick(50)
    assert h.incident().state == "resolved"
    assert h.messages() == []


def test_global_dry_run_executes_nothing_and_tells_a_person(tmp_path: Path) -> None:
    text = "dry_run: true\n" + policy("notify: [capture]\nactions: [{type: recording}]")
    h = Harness(tmp_path, text)
    h.tick(500)
    assert RecordingRemediation.executions == []
    assert h.store.list_actions()[0].state == "dry_run"
    assert h.incident().state == "escalated"


def test_kill_switch_holds_actions_until_lifted(tmp_path: Path) -> None:
    h = Harness(tmp_path, policy("actions: [{type: recording}]"))
    h.paused = True
    h.tick(500)
    h.tick(500)
    assert RecordingRemediation.executions == []
    assert "kill switch" in h.incident().guard_note
    h.paused = False
    h.tick(500)
    assert len(RecordingRemediation.executions) == 1


def test_approval_mode_waits_for_a_person(tmp_path: Path) -> None:
    h = Harness(
        tmp_path, policy("notify: [capture]\nactions: [{type: recording, mode: approve, approval_timeout: 1h}]")
    )
    h.tick(500)
    action = h.store.list_actions()[0]
    assert action.state == "awaiting_approval"
    assert "approval" in h.messages()
    h.tick(500)
    assert RecordingRemediation.executions == []
    assert h.store.decide_approval(action.id, True, "alice", h.clock.now())
    h.run_actions()
    assert len(RecordingRemediation.executions) == 1
    assert h.incident().state == "verifying"


def test_approval_timeout_rejects_by_default(tmp_path: Path) -> None:
    h = Harness(tmp_path, policy("actions: [{type: recording, mode: approve, approval_timeout: 30s}]"))
    h.tick(500)
    for _ in range(4):
        h.tick(500)
    assert h.store.list_actions()[0].state == "rejected"
    assert RecordingRemediation.executions == []
    assert h.incident().state == "escalated"


def test_cooldown_blocks_a_second_incident_on_the_same_target(tmp_path: Path) -> None:
    h = Harness(tmp_path, policy("cooldown: 5m\nverify: {window: 60s}\nactions: [{type: recording}]"))
    h.tick(500)
    h.tick(50)
    assert h.incident().state == "resolved"
    h.tick(500)  # the problem is back at once: a new incident, but the target was just acted on
    assert len(RecordingRemediation.executions) == 1
    assert "cooldown" in h.incident().guard_note
    for _ in range(30):
        h.tick(500)
    assert len(RecordingRemediation.executions) == 2


def test_flapping_signal_is_capped_by_cooldown(tmp_path: Path) -> None:
    h = Harness(tmp_path, policy("cooldown: 2m\nmax_attempts: 3\nverify: {window: 30s}\nactions: [{type: recording}]"))
    for i in range(60):  # ten minutes of a signal that flips every tick
        h.tick(500 if i % 2 == 0 else 50)
    assert len(RecordingRemediation.executions) <= 10 * 60 // 120 + 1


def test_check_timeout_is_a_finding_and_the_next_tick_runs(tmp_path: Path) -> None:
    text = (
        BASE.replace("channel: latency}", "channel: latency, hang_seconds: 3}").replace(
            "every: 10s", "every: 10s\n    timeout: 0.2s"
        )
        % "      notify: [capture]"
    )
    h = Harness(tmp_path, text)
    started = time.monotonic()
    h.tick(50)
    assert time.monotonic() - started < 2
    inc = h.incident()
    assert inc.kind == "check_timeout" and inc.state == "firing"
    assert h.messages() == ["firing"]


def test_outbox_retries_until_the_receiver_recovers(tmp_path: Path) -> None:
    text = policy("notify: [capture]").replace("capture: {type: capture}", "capture: {type: capture, fail_times: 3}")
    h = Harness(tmp_path, text)
    h.tick(500)
    for _ in range(10):
        h.outbox.tick()
        h.clock.advance(400)
    assert h.messages() == ["firing"]
    row = h.store.list_notifications()[0]
    assert row.state == "sent" and row.attempts == 4


def test_acknowledge_stops_automation_and_resolves_when_healthy(tmp_path: Path) -> None:
    h = Harness(tmp_path, policy("notify: [capture]\nactions: [{type: recording, mode: approve}]"))
    h.tick(500)
    h.incidents.acknowledge(h.incident().id, "alice", "looking")
    assert h.incident().state == "acknowledged"
    assert "acknowledged" in h.messages()  # on-call tools stop paging
    h.tick(50)
    assert h.incident().state == "resolved"


def test_a_quiet_tick_of_bookkeeping_series_verifies_nothing() -> None:
    from aiops.types import Frame, Series

    quiet = Frame("table", 0.0, series=(Series("table_rows_read", [1.0], [0.0]),), has_new_data=False)
    assert not quiet.empty and not quiet.fresh
    assert Frame("file", 0.0, series=(Series("x", [1.0], [2.0]),)).fresh


def test_a_finished_action_read_as_running_is_not_run_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The executor's tick lists running actions, then skips those in flight. An action whose run recorded its
    outcome and left the in-flight set between the two still reads as running in that list, owned by this
    replica: it must not be adopted and run a second time."""
    h = Harness(tmp_path, policy("actions: [{type: recording}]"))
    h.tick(50, 60)
    h.tick(500)
    assert len(RecordingRemediation.executions) == 1
    (done,) = h.store.list_actions(limit=10)
    assert done.state is ActionState.SUCCEEDED
    stale = replace(done, state=ActionState.RUNNING, lease_owner=h.executor.owner, lease_expires=h.clock.now() + 60)
    listed = h.store.list_actions
    monkeypatch.setattr(h.store, "list_actions", lambda **kw: [stale] if kw.get("state") == "running" else listed(**kw))
    trail = h.states()
    h.run_actions()
    assert len(RecordingRemediation.executions) == 1
    again = h.store.get_action(done.id)
    assert again is not None and again.outcome == done.outcome and again.finished_at == done.finished_at
    assert h.states() == trail  # neither resumed nor recorded a second time
