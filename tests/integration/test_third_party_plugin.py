"""The example third-party package (examples/aiops-plugin-example: one plugin of each kind), pip-installed,
is found by entry point exactly like the built-ins: ``aiops plugins`` lists it, the contract checks pass for
it, ``aiops check-config`` validates its parameters, and a real daemon runs it end to end (the source's
value crosses the detector's limit, the incident notifies through the example notifier and the example
remediation writes its marker under the daemon's state directory, handed over in the plugin context)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.e2e.daemon import DaemonProcess, wait_for

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "aiops-plugin-example"
KINDS = {
    "aiops.sources": "example_gauge",
    "aiops.detectors": "example_above",
    "aiops.remediations": "example_marker",
    "aiops.notifiers": "example_jsonl",
}

CONTRACTS = """
import sys
from aiops import plugins
from aiops.testing import check_plugin
for group, name in (tuple(a.split("=")) for a in sys.argv[2:]):
    sets = check_plugin(group, plugins.load(group, name), sys.argv[1])
    print(group, name, sets)
"""


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The example installed into its own directory (offline: no index, no build isolation, no deps)."""
    target = tmp_path_factory.mktemp("site")
    build = tmp_path_factory.mktemp("src") / "aiops-plugin-example"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation", "--no-index",
         "--target", str(target), str(EXAMPLE)],
        check=True, capture_output=True, timeout=180, cwd=build.parent,
    )
    return target


def _env(site: Path) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(site)}


def _config(tmp_path: Path, limit: str = "10") -> Path:
    config = tmp_path / "aiops.yaml"
    config.write_text(textwrap.dedent(f"""
        store: {{url: "sqlite:///{tmp_path}/aiops.db"}}
        state_dir: {tmp_path}/state
        notifiers:
          file: {{type: example_jsonl, path: "{tmp_path}/messages.jsonl"}}
        checks:
          - name: gauge
            every: 0.5s
            source: {{type: example_gauge, path: "{tmp_path}/value.txt"}}
            detectors: [{{type: example_above, limit: {limit}}}]
            policy:
              cooldown: 0s
              notify: [file]
              actions:
                - {{type: example_marker, note: restarted}}
    """))
    return config


def test_example_plugins_are_listed_and_pass_the_contract_checks(site: Path, tmp_path: Path) -> None:
    listed = subprocess.run([sys.executable, "-m", "aiops", "plugins"], capture_output=True, text=True,
                            env=_env(site), timeout=60)
    assert listed.returncode == 0, listed.stderr
    for name in KINDS.values():
        assert name in listed.stdout
    assert "example third-party detector" in listed.stdout
    checked = subprocess.run(
        [sys.executable, "-c", CONTRACTS, str(tmp_path), *(f"{g}={n}" for g, n in KINDS.items())],
        capture_output=True, text=True, env=_env(site), timeout=120,
    )
    assert checked.returncode == 0, checked.stderr
    lines = checked.stdout.split("\n")
    assert len([line for line in lines if line]) == 4, checked.stdout
    assert "aiops.detectors example_above 2" in lines  # both of its declared parameter sets


def test_check_config_validates_the_example_parameters(site: Path, tmp_path: Path) -> None:
    ok = subprocess.run([sys.executable, "-m", "aiops", "check-config", str(_config(tmp_path))],
                        capture_output=True, text=True, env=_env(site), timeout=60)
    assert ok.returncode == 0, ok.stderr
    bad = subprocess.run([sys.executable, "-m", "aiops", "check-config", str(_config(tmp_path, "twenty"))],
                         capture_output=True, text=True, env=_env(site), timeout=60)
    assert bad.returncode == 1 and "detectors[0].limit" in bad.stderr
    missing = subprocess.run([sys.executable, "-m", "aiops", "check-config", str(_config(tmp_path))],
                             capture_output=True, text=True, timeout=60)
    assert missing.returncode == 1 and "unknown source 'example_gauge'" in missing.stderr


@pytest.mark.slow
def test_a_real_daemon_runs_the_example_plugins_end_to_end(site: Path, tmp_path: Path) -> None:
    (tmp_path / "value.txt").write_text("3\n")
    daemon = DaemonProcess(_config(tmp_path), tmp_path).start(extra_env={"PYTHONPATH": str(site)})
    try:
        (tmp_path / "value.txt").write_text("42\n")
        messages = tmp_path / "messages.jsonl"
        wait_for(lambda: messages.exists() and '"firing"' in messages.read_text(), 30, "a firing message",
                 daemon.logs)
        markers = tmp_path / "state" / "example-markers"
        marker = wait_for(lambda: sorted(markers.glob("*.json")) if markers.exists() else [], 30,
                          "the remediation's marker in the daemon's state directory", daemon.logs)[0]
        assert json.loads(marker.read_text())["note"] == "restarted"
        first = json.loads(messages.read_text().splitlines()[0])
        assert first["check"] == "gauge" and first["event"] == "firing"
        assert daemon.terminate() == 0
    finally:
        if daemon.proc is not None and daemon.proc.poll() is None:
            daemon.kill()
