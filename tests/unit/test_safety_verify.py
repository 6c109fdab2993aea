"""Verification probes: a remediation heals only when the check is healthy *and* the configured probe agrees —
a custom command, or a PromQL expression against a real Prometheus that must return no series."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from aiops.testing import RecordingRemediation, ScriptedSource, register_test_plugins, unregister_test_plugins
from tests.unit.test_safety import Harness, config


@pytest.fixture(autouse=True)
def _plugins() -> Iterator[None]:
    register_test_plugins()
    ScriptedSource.reset()
    RecordingRemediation.executions.clear()
    yield
    unregister_test_plugins()


def test_command_probe_must_pass_before_the_incident_resolves(tmp_path: Path) -> None:
    marker = tmp_path / "canary-ok"
    probe = f'[{sys.executable!r}, "-c", "import os, sys; sys.exit(0 if os.path.exists({str(marker)!r}) else 1)"]'
    h = Harness(tmp_path, config(f"verify: {{window: 60s, command: {probe}}}\nactions: [{{type: recording}}]"))
    h.tick(500)
    h.tick(50)
    inc = h.store.list_incidents(limit=1)[0]
    assert inc.state == "verifying" and inc.guard_note == "verify command exited 1"
    marker.write_text("1")
    h.tick(50)
    assert h.store.list_incidents(limit=1)[0].state == "resolved"


def test_promql_probe_against_a_real_prometheus(tmp_path: Path, prometheus_factory: Any) -> None:
    _, prom = prometheus_factory("global: {scrape_interval: 1m}\n")

    def verify(expr: str) -> str:
        return f'verify: {{window: 30s, promql: "{expr}", prometheus_url: "{prom}"}}\nactions: [{{type: recording}}]'

    quiet = Harness(tmp_path / "quiet", config(verify("vector(1) > 2")))
    quiet.tick(500)
    quiet.tick(50)
    assert quiet.store.list_incidents(limit=1)[0].state == "resolved"

    loud = Harness(tmp_path / "loud", config(verify("vector(1)")))
    loud.tick(500)
    for _ in range(4):  # healthy by the detector, but the probe still sees the problem: not healed
        loud.tick(50)
    inc = loud.store.list_incidents(limit=1)[0]
    assert inc.state == "escalated"
    transitions = [t.reason for t in loud.store.transitions(inc.id)]
    assert any("not healed" in r for r in transitions)


def test_probe_config_is_validated(tmp_path: Path) -> None:
    from aiops.errors import ConfigError

    with pytest.raises(ConfigError, match="prometheus_url"):
        Harness(tmp_path, config('verify: {promql: "up == 0"}\nactions: [{type: recording}]'))
