"""Remediation effectiveness and verdicts on a scripted incident history: the real engine (incident manager,
executor, ladder, verification) on a fake clock and a real SQLite store; the same figures from the
computation, the CLI and the metrics, and the exposition clean under the real promtool."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner
from prometheus_client import CollectorRegistry, generate_latest

from aiops.cli import cli, main
from aiops.effectiveness import Effectiveness, RunOutcome, classify, effectiveness
from aiops.feedback_metrics import FeedbackCollector
from aiops.store.remediation_history import ActionRun, TransitionRecord
from aiops.store.store import Store
from aiops.store.verdicts import mark_incident, mark_missed
from aiops.testing import RecordingRemediation
from aiops.types import ActionState
from tests.unit.test_engine import Harness, _plugins, policy  # noqa: F401 - _plugins: the autouse fixture
from tests.unit.test_telemetry import _promtool

LADDER = """
notify: [capture]
cooldown: 0s
verify: {settle: 5s, window: 30s}
actions: [{type: recording, name: first}, {type: recording, name: second, target: other}]
"""


@pytest.fixture
def history(tmp_path: Path) -> Harness:
    """Incident 1: the first rung heals it 10 s after it ran. Incident 2: the first rung does not heal, the
    second (another target) does not either, and the incident is escalated."""
    config = f"store: {{url: 'sqlite:///{tmp_path}/aiops.db'}}\n" + policy(LADDER)
    (tmp_path / "aiops.yaml").write_text(config)
    h = Harness(tmp_path, config)
    h.tick(500)
    assert h.incident().state == "verifying"
    h.tick(55)
    assert h.incident().state == "resolved"
    h.tick(500)
    for _ in range(8):
        h.tick(500)
    assert h.incident().state == "escalated"
    assert len(RecordingRemediation.executions) == 3
    return h


def test_heal_ratio_median_and_escalations_from_the_engines_own_trail(history: Harness) -> None:
    rows = effectiveness(history.store, since=0.0)
    assert rows == [
        Effectiveness("recording", "other", runs=1, healed=0, escalated=1, in_progress=0, heal_ratio=0.0,
                      median_heal_seconds=None),
        Effectiveness("recording", "recording", runs=2, healed=1, escalated=0, in_progress=0, heal_ratio=0.5,
                      median_heal_seconds=10.0),
    ]
    assert effectiveness(history.store, since=history.clock.now() + 1) == []  # the window counts


def test_a_run_still_verifying_is_in_progress_and_a_later_action_ends_a_runs_span() -> None:
    run = ActionRun(1, 9, "c", "restart", "svc", ActionState.SUCCEEDED, 10.0, 11.0)
    later = ActionRun(2, 9, "c", "restart", "svc", ActionState.FAILED, 50.0, 51.0)
    trail = [
        TransitionRecord(9, 5.0, None, "firing", "detector", None),
        TransitionRecord(9, 10.0, "firing", "remediating", "policy", 1),
        TransitionRecord(9, 11.0, "remediating", "verifying", "action", 1),
    ]
    assert [r.outcome for r in classify([run], {9: trail})] == [RunOutcome.IN_PROGRESS]
    trail += [
        TransitionRecord(9, 40.0, "verifying", "firing", "verifier", None),
        TransitionRecord(9, 50.0, "firing", "remediating", "policy", 2),
        TransitionRecord(9, 51.0, "remediating", "firing", "action", 2),
        TransitionRecord(9, 51.0, "firing", "escalated", "policy", None),
    ]
    assert [r.outcome for r in classify([run, later], {9: trail})] == [RunOutcome.NOT_HEALED, RunOutcome.ESCALATED]


def test_cli_shows_the_same_figures_and_records_verdicts(
    history: Harness, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = str(tmp_path / "aiops.yaml")
    out = CliRunner().invoke(cli, ["effectiveness", "-c", config, "--since", "5000d", "--json"])
    assert out.exit_code == 0, out.output
    assert json.loads(out.output) == [e.to_dict() for e in effectiveness(history.store, 0.0)]
    wide = CliRunner().invoke(cli, ["effectiveness", "-c", config, "--since", "5000d", "-o", "wide"])
    table = wide.output.splitlines()
    assert table[0].split()[:4] == ["ACTION", "TARGET", "RUNS", "HEALED"]
    assert table[2].split() == ["recording", "recording", "2", "1", "50%", "10s", "0", "0"]

    ok = CliRunner().invoke(cli, ["verdict", "-c", config, "1", "useful", "--comment", "real", "--by", "ana"])
    assert ok.exit_code == 0 and "incident 1 marked useful" in ok.output, ok.output
    missed = CliRunner().invoke(
        cli, ["verdict", "-c", config, "--missed", "--check", "latency", "--from", "2023-11-14T22:00:00Z",
              "--to", "1700000000", "--json"]
    )
    assert missed.exit_code == 0, missed.output
    assert json.loads(missed.output)["verdict"] == "missed"
    incidents = json.loads(CliRunner().invoke(cli, ["incidents", "-c", config, "--json"]).output)
    by_id = {i["id"]: i for i in incidents}
    assert [(v["verdict"], v["actor"], v["comment"]) for v in by_id[1]["verdicts"]] == [("useful", "cli:ana", "real")]
    assert by_id[2]["verdicts"] == []

    for argv, message in (
        (["verdict", "-c", config, "--missed", "--check", "nope", "--from", "1", "--to", "2"], "unknown check 'nope'"),
        (["verdict", "-c", config, "--missed", "--check", "latency", "--from", "9", "--to", "2"], "must be after"),
        (["verdict", "-c", config, "--missed", "--check", "latency", "--from", "x", "--to", "2"], "ISO 8601"),
        (["verdict", "-c", config, "99", "noise"], "no incident 99"),
        (["verdict", "-c", config, "1"], "give INCIDENT_ID and useful|noise"),
        (["verdict", "-c", config, "1", "maybe"], "'maybe' is not one of"),
        (["effectiveness", "-c", config, "--since", "soon"], "not a duration"),
    ):
        bad = _main(argv, capsys)
        assert bad[0] != 0 and message in bad[1], (argv, bad)


def _main(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    """The CLI's real entry point (one error line, never a traceback), run in this process."""
    capsys.readouterr()
    with pytest.raises(SystemExit) as exited:
        main(argv)
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    return int(exited.value.code or 0), captured.out + captured.err


def test_metrics_from_the_store_are_promtool_clean(history: Harness) -> None:
    now = history.clock.now()
    mark_incident(history.store, 1, "useful", actor="ana", now=now)
    mark_incident(history.store, 2, "noise", actor="ana", now=now)
    mark_incident(history.store, 2, "useful", actor="bo", now=now)  # a changed mind is one more verdict
    mark_missed(history.store, "latency", now - 600, now - 300, actor="ana", now=now)
    registry = CollectorRegistry()
    registry.register(FeedbackCollector(history.store, history.clock.now))
    text = generate_latest(registry).decode()
    for line in (
        'aiops_incident_verdicts_total{check="latency",verdict="useful"} 2.0',
        'aiops_incident_verdicts_total{check="latency",verdict="noise"} 1.0',
        'aiops_incident_verdicts_total{check="latency",verdict="missed"} 1.0',
        'aiops_remediation_heal_ratio{action="recording",target="recording"} 0.5',
        'aiops_remediation_heal_ratio{action="recording",target="other"} 0.0',
        'aiops_remediation_heal_seconds{action="recording",target="recording"} 10.0',
        'aiops_remediation_escalations{action="recording",target="other"} 1.0',
        'aiops_remediation_runs{action="recording",target="recording"} 2.0',
    ):
        assert line in text, (line, text)
    assert 'aiops_remediation_heal_seconds{action="recording",target="other"}' not in text  # never healed
    checked = subprocess.run(
        [_promtool(), "check", "metrics"], input=text.encode(), capture_output=True, timeout=30, check=False
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_a_store_that_fails_yields_families_without_samples(tmp_path: Path) -> None:
    registry = CollectorRegistry()
    registry.register(FeedbackCollector(Store(f"sqlite:///{tmp_path}/never-migrated.db")))
    text = generate_latest(registry).decode()
    assert "# TYPE aiops_incident_verdicts_total counter" in text
    assert "# TYPE aiops_remediation_heal_ratio gauge" in text
    assert not [line for line in text.splitlines() if line.startswith("aiops_") and "{" in line]
