"""The config loader: every error named with file, line and field; env expansion; the shipped examples."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from aiops.config.loader import load_config, parse_config
from aiops.config.yamlsource import expand_env
from aiops.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((ROOT / "deploy" / "examples").glob("*.yaml"))

BAD = """\
store:
  url: sqlite:///x.db
checks:
  - name: cpu
    every: 30s
    timeout: [1, 2]
    source:
      type: host
    detectors:
      - type: no_such_detector
  - every: 10s
    source: {type: host}
    detectors: [{type: threshold, above: 3}]
"""


def problems(text: str, env: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse_config(text, "bad.yaml", env=env or {})
    return info.value.problems


def test_wrong_type_unknown_detector_and_missing_field_are_all_named_with_lines() -> None:
    found = problems(BAD)
    assert any(p.startswith("bad.yaml:6: checks[0].timeout:") for p in found), found
    assert any(
        p.startswith("bad.yaml:10: checks[0].detectors[0].type: unknown detector 'no_such_detector'; known:")
        and "threshold" in p
        for p in found
    ), found
    assert any(p.startswith("bad.yaml:11: checks[1].name: required field is missing") for p in found), found


def test_plugin_parameters_are_validated_with_lines() -> None:
    text = (
        "checks:\n  - name: a\n    every: 1m\n    source: {type: host}\n"
        "    detectors:\n      - type: threshold\n        abvoe: 3\n"
    )
    found = problems(text)
    assert any(p.startswith("bad.yaml:7: checks[0].detectors[0].abvoe: unknown field") for p in found), found


def test_unknown_notifier_reference_and_duplicate_names() -> None:
    text = """checks:
  - {name: a, every: 1m, source: {type: host}, detectors: [{type: threshold, above: 1}], policy: {notify: [ops]}}
  - {name: a, every: 1m, source: {type: host}, detectors: [{type: threshold, above: 1}]}
"""
    found = problems(text)
    assert any("policy.notify[0]: unknown notifier 'ops'" in p for p in found), found
    assert any("checks[1].name: duplicate check name" in p for p in found), found


def test_unknown_route_receiver_is_a_config_error() -> None:
    found = problems("notifiers:\n  a: {type: webhook, url: 'http://127.0.0.1:1/'}\nroutes:\n  - receivers: [a, b]\n")
    assert any(p.startswith("bad.yaml:4: routes[0].receivers[1]: unknown notifier 'b'; known: a") for p in found), found


def test_schedule_needs_exactly_one_of_every_and_cron() -> None:
    base = "checks:\n  - {name: a, %s source: {type: host}, detectors: [{type: threshold, above: 1}]}\n"
    assert any("exactly one of 'every'" in p for p in problems(base % ""))
    assert any("crontab" in p for p in problems(base % "cron: 'not a cron',"))
    parse_config(base % "cron: '*/5 * * * *',", env={})


def test_env_expansion_with_defaults_and_missing_vars() -> None:
    text = "server: {listen: '${HOST:-127.0.0.1}:${PORT}'}\n"
    cfg = parse_config(text, env={"PORT": "9999"})
    assert cfg.settings.server.listen == "127.0.0.1:9999"
    assert any("environment variable PORT is not set" in p for p in problems(text))
    assert expand_env("$${NOT}", {}) == ("${NOT}", [])


def test_env_value_cannot_inject_yaml_structure() -> None:
    cfg = parse_config("state_dir: ${X}\n", env={"X": "a\nchecks: [1]"})
    assert cfg.settings.state_dir == "a\nchecks: [1]"
    assert cfg.settings.checks == []


def test_yaml_syntax_error_has_a_line() -> None:
    found = problems("checks:\n  - name: [unclosed\n")
    assert found[0].startswith("bad.yaml:") and "(yaml)" in found[0]


def test_secrets_are_collected_for_redaction() -> None:
    cfg = parse_config("server: {token: sup3rsecret}\n", env={})
    assert "sup3rsecret" in cfg.secrets


@pytest.mark.parametrize("example", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_shipped_examples_are_valid(example: Path) -> None:
    load_config(example, env={})  # as a fresh clone runs it: no environment set, the defaults point here


def test_examples_exist() -> None:
    assert len(EXAMPLES) >= 2


def test_check_config_cli_exit_codes(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(BAD)
    out = subprocess.run(
        [sys.executable, "-m", "aiops", "check-config", str(bad)], capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 1
    lines = out.stderr.strip().splitlines()
    assert len(lines) >= 3 and all(line.startswith(f"{bad}:") for line in lines), out.stderr
    assert "Traceback" not in out.stderr
    good = subprocess.run(
        [sys.executable, "-m", "aiops", "check-config", str(EXAMPLES[0])],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin", "AIOPS_WEBHOOK_URL": "http://x/", "AIOPS_WEBHOOK_SECRET": "s"},
    )
    assert good.returncode == 0, good.stderr
