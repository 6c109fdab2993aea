"""Safety guards on a fake clock and a real SQLite store: backoff, retries, rate and blast-radius budgets, the
circuit breaker (durable across a restart) and a remediation that flaps for ten minutes. Minutes of simulated time
run in well under a second each."""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from aiops.config.loader import parse_config
from aiops.config.models import PolicyConfig, SafetyConfig
from aiops.engine.checks import CheckRunner
from aiops.engine.executor import ActionExecutor
from aiops.engine.incidents import IncidentManager
from aiops.engine.policy import GuardFacts, backed_off, next_step
from aiops.engine.runtime import build_runtime
from aiops.store.store import Store
from aiops.testing import (
    FakeClock,
    RecordingRemediation,
    ScriptedSource,
    register_test_plugins,
    unregister_test_plugins,
)

CONFIG = """
notifiers:
  capture: {type: capture}
%(extra)s
checks:
  - name: latency
    every: 10s
    source: {type: scripted, channel: latency}
    detectors: [{type: threshold, above: 100}]
    policy:
%(policy)s
"""


def config(policy: str, extra: str = "") -> str:
    return CONFIG % {"policy": "\n".join("      " + line for line in policy.strip().splitlines()), "extra": extra}


class Harness:
    """The daemon's engine without the scheduler: one check, a clock that moves only when told."""

    def __init__(self, tmp_path: Path, text: str, clock: FakeClock | None = None) -> None:
        self.config = parse_config(text, "test.yaml", env={})
        self.runtime = build_runtime(self.config)
        self.store = Store(f"sqlite:///{tmp_path}/aiops.db")
        self.store.migrate()
        self.clock = clock or FakeClock()
        self.incidents = IncidentManager(self.store, lambda: self.runtime, self.clock.now)
        self.executor = ActionExecutor(self.store, self.incidents, lambda: self.runtime, self.clock.now, "test:1:1.0")
        self.runner = CheckRunner(self.runtime.checks["latency"], self.store)

    def tick(self, value: float, step: float = 10.0) -> None:
        self.clock.advance(step)
        ScriptedSource.push("latency", self.clock.now(), value)
        self.incidents.observe(self.runner.tick(self.clock.now()))
        self.incidents.sweep()
        self.executor.tick()
        deadline = time.monotonic() + 10
        while self.executor.inflight() and time.monotonic() < deadline:
            time.sleep(0.002)

    def executed(self) -> list[dict[str, Any]]:
        return [a for a in self.store.list_actions(limit=1000) if a.state in ("succeeded", "failed")]

    def escalations(self) -> int:
        return sum(
            1
            for inc in self.store.list_incidents(limit=1000)
            for t in self.store.transitions(inc.id)
            if t.to_state == "escalated"
        )


@pytest.fixture(autouse=True)
def _plugins() -> Iterator[None]:
    register_test_plugins()
    ScriptedSource.reset()
    RecordingRemediation.executions.clear()
    yield
    unregister_test_plugins()


FLAPPING = """
notify: [capture]
resolve_after: 5m
cooldown: 20s
backoff: 2
max_attempts: 20
verify: {window: 30s, healthy_ticks: 3}
actions:
  - {type: recording, name: retrain, retries: 10, max_runs: 4, breaker_failures: 3, breaker_reset: 30m}
"""


def test_flapping_for_ten_minutes_stays_in_budget_opens_the_breaker_and_escalates_once(tmp_path: Path) -> None:
    h = Harness(tmp_path, config(FLAPPING))
    for i in range(60):  # 10 simulated minutes of a signal that flips on every tick
        h.tick(500 if i % 2 == 0 else 50)
    executed = h.executed()
    assert 1 <= len(executed) <= 4, "more actions than the rate budget"
    assert len(executed) == 3, "the breaker (3 failures) should have stopped it first"
    starts = sorted(float(a.started_at) for a in executed)
    gaps = [b - a for a, b in itertools.pairwise(starts)]
    assert gaps[1] > gaps[0], f"retries are not backed off exponentially: {gaps}"
    breaker = h.store.get_breaker("recording")
    assert breaker is not None and breaker.state == "open" and breaker.failures == 3
    assert h.escalations() == 1
    inc = h.store.list_incidents(limit=10)
    assert len(inc) == 1 and inc[0].state == "escalated"
    assert "circuit breaker open" in inc[0].guard_note
    skipped = [a for a in h.store.list_actions() if a.state == "skipped"]
    assert len(skipped) == 1 and "circuit breaker open" in (skipped[0].guard or "")


def test_rate_budget_caps_runs_without_a_breaker(tmp_path: Path) -> None:
    text = config(FLAPPING.replace("max_runs: 4, breaker_failures: 3", "max_runs: 2, breaker_failures: 0"))
    h = Harness(tmp_path, text)
    for i in range(60):
        h.tick(500 if i % 2 == 0 else 50)
    assert len(h.executed()) == 2
    inc = h.store.list_incidents(limit=1)[0]
    assert inc.state == "firing" and "rate budget" in inc.guard_note
    assert h.escalations() == 0


def test_open_breaker_survives_a_restart_then_half_opens_and_closes_on_a_heal(tmp_path: Path) -> None:
    h = Harness(tmp_path, config(FLAPPING))
    for i in range(60):
        h.tick(500 if i % 2 == 0 else 50)
    assert h.store.get_breaker("recording").state == "open"
    for _ in range(31):  # the flapping ends; the escalated incident resolves after 5 healthy minutes
        h.tick(50)
    assert h.store.list_incidents(limit=1)[0].state == "resolved"
    # "restart": a new engine on the same database and clock
    h2 = Harness(tmp_path, config(FLAPPING), clock=h.clock)
    h2.tick(500)
    assert len(h2.executed()) == 3, "an open breaker must hold across a restart"
    assert h2.store.list_incidents(limit=1)[0].state == "escalated"
    for _ in range(31):
        h2.tick(50)
    h2.clock.advance(30 * 60)  # breaker_reset elapsed: one trial may run
    h2.tick(500)
    assert len(h2.executed()) == 4
    assert h2.store.get_breaker("recording").state == "half_open"
    for _ in range(3):
        h2.tick(50)
    assert h2.store.list_incidents(limit=1)[0].state == "resolved"
    breaker = h2.store.get_breaker("recording")
    assert breaker.state == "closed" and breaker.failures == 0


def test_blast_radius_holds_a_new_target(tmp_path: Path) -> None:
    text = config(
        "cooldown: 0s\nverify: {window: 30s}\nactions: [{type: recording, target: a}]",
        extra="safety: {window: 1h, max_targets: 1}",
    )
    h = Harness(tmp_path, text)
    h.tick(500)
    h.tick(50)
    assert len(h.executed()) == 1
    # another check's action on a different target, same window: the budget of distinct targets is spent
    h.runtime.checks["latency"].config.policy.actions[0].params["target"] = "b"
    h.runtime.config.plugin_params[("checks", 0, "policy", "actions", 0)] = type(
        h.runtime.config.plugin_params[("checks", 0, "policy", "actions", 0)]
    ).model_validate({"target": "b"})
    h.tick(500)
    assert len(h.executed()) == 1
    assert "blast radius" in h.store.list_incidents(limit=1)[0].guard_note


def test_global_budget_counts_every_action(tmp_path: Path) -> None:
    text = config("cooldown: 0s\nverify: {window: 30s}\nactions: [{type: recording}]", extra="safety: {max_actions: 2}")
    h = Harness(tmp_path, text)
    for _ in range(5):
        h.tick(500)
        h.tick(50)
    h.tick(500)
    assert len(h.executed()) == 2
    assert "global budget" in h.store.list_incidents(limit=1)[0].guard_note


# -- the pure decision ---------------------------------------------------------------------------------------


def _policy(**extra: Any) -> PolicyConfig:
    return PolicyConfig.model_validate({"cooldown": "1m", "actions": [{"type": "command", "argv": ["x"]}], **extra})


def _step(p: PolicyConfig, g: GuardFacts, now: float = 10_000.0, last: float | None = None) -> Any:
    return next_step(policy=p, rung=0, attempts=0, paused=False, last_action_on_target_at=last, now=now, guards=g)


def test_backoff_grows_the_cooldown_exponentially_up_to_the_cap() -> None:
    p = _policy(backoff=3, max_cooldown="10m")
    assert [backed_off(p, n) for n in range(1, 5)] == [60.0, 180.0, 540.0, 600.0]
    step = _step(p, GuardFacts(target_streak=3), last=10_000.0 - 300)
    assert step.kind == "wait" and step.retry_at == 10_000.0 - 300 + 540


def test_breaker_open_skips_then_half_open_lets_one_trial_through() -> None:
    p = PolicyConfig.model_validate({"actions": [{"type": "command", "argv": ["x"], "breaker_reset": "10m"}]})
    opened = GuardFacts(breaker_state="open", breaker_opened_at=10_000.0 - 60, breaker_failures=5)
    assert _step(p, opened).kind == "skip"
    later = GuardFacts(breaker_state="open", breaker_opened_at=10_000.0 - 700, breaker_failures=5)
    assert _step(p, later).kind == "act"
    busy = GuardFacts(breaker_state="half_open", breaker_opened_at=0.0, breaker_trial_busy=True)
    assert _step(p, busy).kind == "wait"


def test_attempt_window_and_rate_budgets_hold() -> None:
    p = _policy(max_attempts_per_window=2, attempts_window="1h")
    step = _step(p, GuardFacts(check_attempts_in_window=2, oldest_check_attempt_at=9_000.0))
    assert step.kind == "wait" and step.retry_at == 9_000.0 + 3600
    p2 = PolicyConfig.model_validate({"actions": [{"type": "command", "argv": ["x"], "max_runs": 1}]})
    assert "rate budget" in _step(p2, GuardFacts(runs_of_type_in_window=1)).reason
    safety = SafetyConfig.model_validate({"max_targets": 2})
    g = GuardFacts(safety=safety, target="c", targets_in_window=frozenset("ab"))
    assert "blast radius" in _step(_policy(), g).reason
    g_known = GuardFacts(safety=g.safety, target="a", targets_in_window=frozenset("ab"))
    assert _step(_policy(), g_known).kind == "act"
