"""Templated values are data, never options: a pushed label that starts with ``-``, holds a control
character, is empty or misses its ``match`` pattern never reaches a command's argv; the action is held and
the incident says why."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import pytest
import requests
import yaml
from aiops_remediations.command import CommandRemediation

from aiops.config.loader import load_config, parse_config
from aiops.daemon import Daemon
from aiops.errors import ConfigError, PlanRefused
from aiops.store.records import Incident
from aiops.types import IncidentState, IncidentView, Severity
from tests.e2e.daemon import wait_for
from tests.servers import free_port

ARGV = ["kubectl", "rollout", "restart", "deployment/{label.deployment}", "-n", "{label.namespace}"]


def incident(**labels: str) -> IncidentView:
    return IncidentView(3, "fp", "k8s", IncidentState.FIRING, Severity.CRITICAL, "down", labels, 0.0)


def test_a_placeholder_is_one_argument_however_odd_the_value() -> None:
    plan = CommandRemediation(argv=ARGV).plan(incident(deployment="a b; rm -rf / #", namespace="ml"))
    assert plan.details["argv"] == ["kubectl", "rollout", "restart", "deployment/a b; rm -rf / #", "-n", "ml"]


@pytest.mark.parametrize(
    ("namespace", "why"),
    [
        ("--all-namespaces", "starts with '-', so the program would read it as an option"),
        ("-A", "allow it: allow_dash: [namespace]"),
        ("ml\n--all-namespaces", "control character"),
        ("ml\x00", "control character"),
        ("", "empty"),
        ("x" * 2000, "more than 1024"),
    ],
)
def test_values_that_could_act_as_options_are_refused(namespace: str, why: str) -> None:
    with pytest.raises(PlanRefused, match=r"^\{label\.namespace\} = ") as caught:
        CommandRemediation(argv=ARGV).plan(incident(deployment="api", namespace=namespace))
    assert why in str(caught.value) and "\n" not in str(caught.value)


def test_allow_dash_and_match_are_per_placeholder() -> None:
    allowed = CommandRemediation(argv=ARGV, allow_dash=["namespace"])
    assert allowed.plan(incident(deployment="api", namespace="-odd"))  # allowed for this placeholder only
    with pytest.raises(PlanRefused, match="deployment"):
        allowed.plan(incident(deployment="--force", namespace="ml"))
    strict = CommandRemediation(argv=ARGV, match={"namespace": "[a-z0-9-]{1,63}", "label.deployment": "[a-z]+"})
    assert strict.plan(incident(deployment="api", namespace="ml-prod")).details["argv"][-1] == "ml-prod"
    with pytest.raises(PlanRefused, match=r"does not match '\[a-z0-9-\]\{1,63\}' \(match.namespace\)"):
        strict.plan(incident(deployment="api", namespace="ML_PROD"))
    with pytest.raises(PlanRefused, match="starts with '-'"):  # fits the pattern, still an option
        strict.plan(incident(deployment="api", namespace="--all-namespaces"))
    optional = CommandRemediation(argv=["tool", "{label.suffix}"], match={"suffix": "[a-z]*"})
    assert optional.plan(incident(suffix="")).details["argv"] == ["tool", ""]  # the pattern admits empty


def test_rules_are_checked_when_the_config_loads() -> None:
    text = """
checks:
  - name: k8s
    every: 1m
    source: {type: host, metrics: [host_cpu_percent]}
    detectors: [{type: threshold, above: 1}]
    policy:
      actions:
        - type: command
          argv: [kubectl, -n, "{label.namespace}"]
          allow_dash: [namespce]
          match: {namespace: "[a-z"}
"""
    with pytest.raises(ConfigError) as caught:
        parse_config(text, "bad.yaml", env={})
    (problem,) = caught.value.problems
    assert problem.startswith("bad.yaml:9: checks[0].policy.actions[0]: allow_dash: 'namespce' is not a placeholder")
    fixed = text.replace("namespce", "namespace")
    with pytest.raises(ConfigError, match=r"match.namespace: invalid regular expression '\[a-z'"):
        parse_config(fixed, "bad.yaml", env={})
    assert parse_config(fixed.replace('"[a-z"', '"[a-z]+"'), "ok.yaml", env={})


CONFIG = """
store: {{url: "sqlite:///{work}/aiops.db"}}
state_dir: {work}/state
server: {{listen: "127.0.0.1:{port}", token: "t0ken"}}
checks:
{checks}
"""
CHECK = """
  - name: {name}
    every: 0.3s
    source: {{type: alertmanager, matchers: ['alertname="{alertname}"']}}
    detectors: [{{type: alert}}]
    policy:
      cooldown: 0s
      actions:
        - type: command
          argv: [{python}, -c, "{script}", "{work}/ran-{{incident.id}}", -n, "{{label.namespace}}"]
          {rule}
"""
RECORD_ARGV = "import json, sys; open(sys.argv[1], 'w').write(json.dumps(sys.argv[2:]))"


def test_a_pushed_alert_cannot_choose_the_flags_of_a_command(tmp_path: Path) -> None:
    """A real daemon, the real Alertmanager webhook endpoint and the real `command` remediation: the alert
    whose namespace is ``--all-namespaces`` is held with the reason on the incident and runs nothing; the
    same value runs where the action allows it, and a plain namespace runs as usual."""
    port = free_port()
    path = tmp_path / "aiops.yaml"
    checks = "".join(
        CHECK.format(name=name, alertname=alert, rule=rule, work=tmp_path, python=sys.executable, script=RECORD_ARGV)
        for name, alert, rule in (
            ("guarded", "Guarded", 'match: {namespace: "[a-z0-9-]+"}'),
            ("allowed", "Allowed", "allow_dash: [namespace]"),
        )
    )
    path.write_text(CONFIG.format(work=tmp_path, port=port, checks=checks))
    daemon = Daemon(load_config(path, env={}))
    daemon.start()
    try:
        alerts = [
            {"status": "firing", "labels": {"alertname": name, "namespace": ns}, "startsAt": "2024-01-01T00:00:00Z"}
            for name, ns in (("Guarded", "--all-namespaces"), ("Guarded", "ml"), ("Allowed", "--all-namespaces"))
        ]
        r = requests.post(
            f"http://127.0.0.1:{port}/api/v1/alertmanager",
            json={"version": "4", "alerts": alerts},
            headers={"Authorization": "Bearer t0ken"},
            timeout=10,
        )
        assert r.status_code == 202, r.text

        def by_namespace(check: str, namespace: str) -> Incident | None:
            for row in daemon.store.list_incidents(limit=20):
                if row.check_name == check and row.labels.get("namespace") == namespace:
                    return row
            return None

        def ran(row: Incident | None) -> list[str] | None:
            out = tmp_path / f"ran-{row.id}" if row else None
            return json.loads(out.read_text()) if out is not None and out.exists() and out.read_text() else None

        assert wait_for(lambda: ran(by_namespace("guarded", "ml")), 30, "the plain namespace to run") == ["-n", "ml"]
        assert wait_for(lambda: ran(by_namespace("allowed", "--all-namespaces")), 30, "the allowed value to run") == [
            "-n",
            "--all-namespaces",
        ]
        held = wait_for(
            lambda: (row := by_namespace("guarded", "--all-namespaces")) and row.guard_note and row, 30, "the hold"
        )
        assert held.state == "firing"
        assert held.guard_note.startswith("held: command refused this incident's data: {label.namespace} = ")
        assert "'--all-namespaces': starts with '-'" in held.guard_note
        assert "allow_dash: [namespace]" in held.guard_note
        time.sleep(1.0)  # a few more ticks and sweeps: still held, still nothing ran
        assert daemon.store.list_actions(incident_id=held.id) == []
        assert ran(held) is None and by_namespace("guarded", "--all-namespaces").state == "firing"  # type: ignore[union-attr]
    finally:
        daemon.shutdown()


def test_the_documented_command_recipes_load_and_refuse_an_option() -> None:
    docs = (Path(__file__).resolve().parents[2] / "docs" / "remediations.md").read_text()
    blocks = [b.split("```")[0] for b in docs.split("```yaml\n")[1:] if "type: command" in b and "{label." in b]
    recipes = [item for block in blocks for item in yaml.safe_load(block)]
    assert len(recipes) >= 4
    for recipe in recipes:
        params = {k: v for k, v in recipe.items() if k not in ("type", "target")}
        action = CommandRemediation(**params)
        labels = {"namespace": "ml-prod", "deployment": "api", "unit": "feature-pipeline.service"}
        assert action.plan(incident(**labels))
        used = [name for name in labels if f"{{label.{name}}}" in " ".join(recipe["argv"])]
        assert used
        for name in used:
            with pytest.raises(PlanRefused):
                action.plan(incident(**{**labels, name: "--all-namespaces"}))
