"""Operating the daemon as a process: /metrics clean under promtool, /readyz, reload (good and bad), the
durable kill switch, SIGTERM within 10 s, and the built-in demo that runs when no config is given."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from tests.e2e.daemon import DaemonProcess, wait_for
from tests.servers import free_port

ROOT = Path(__file__).resolve().parents[2]

CONFIG = """
store: {{url: "sqlite:///{work}/aiops.db"}}
state_dir: {work}/state
server: {{token: "t0ken"}}
checks:
  - name: host
    every: 1s
    source: {{type: host, metrics: [host_cpu_percent, host_memory_percent]}}
    detectors: [{{type: threshold, above: 1000}}]
"""


def test_metrics_readiness_reload_pause_and_sigterm(tmp_path: Path) -> None:
    config = tmp_path / "aiops.yaml"
    config.write_text(CONFIG.format(work=tmp_path))
    daemon = DaemonProcess(config, tmp_path).start()
    try:
        assert requests.get(f"{daemon.url}/livez", timeout=5).status_code == 200
        assert requests.get(f"{daemon.url}/readyz", timeout=5).status_code == 200
        wait_for(lambda: "aiops_check_runs_total{" in requests.get(f"{daemon.url}/metrics", timeout=5).text, 15,
                 "a check run in the metrics", daemon.logs)
        exposition = requests.get(f"{daemon.url}/metrics", timeout=5).text
        promtool = shutil.which("promtool")
        assert promtool, "promtool (Debian package prometheus) is required: bash scripts/install-test-deps.sh"
        lint = subprocess.run([promtool, "check", "metrics"], input=exposition, capture_output=True, text=True,
                              timeout=30)
        assert lint.returncode == 0 and not lint.stdout.strip() and not lint.stderr.strip(), lint.stdout + lint.stderr
        for name in ("aiops_build_info", "aiops_config_last_reload_successful 1.0", "aiops_incidents{",
                     "aiops_check_duration_seconds_bucket"):
            assert name in exposition

        # an invalid config is rejected on SIGHUP: the old one keeps running and the metric says so
        config.write_text(CONFIG.format(work=tmp_path).replace("every: 1s", "every: soon"))
        assert daemon.proc is not None
        daemon.proc.send_signal(signal.SIGHUP)
        wait_for(lambda: "aiops_config_last_reload_successful 0.0" in requests.get(f"{daemon.url}/metrics",
                                                                                 timeout=5).text,
                 10, "the failed reload in the metrics", daemon.logs)
        assert requests.get(f"{daemon.url}/readyz", timeout=5).status_code == 200
        config.write_text(CONFIG.format(work=tmp_path))
        assert requests.post(f"{daemon.url}/-/reload", timeout=10).status_code == 401  # token configured
        resp = requests.post(f"{daemon.url}/-/reload", headers={"Authorization": "Bearer t0ken"}, timeout=10)
        assert resp.status_code == 200, resp.text
        assert "aiops_config_last_reload_successful 1.0" in requests.get(f"{daemon.url}/metrics", timeout=5).text

        # the kill switch is durable and works from any shell
        assert daemon.cli("pause").returncode == 0
        wait_for(lambda: "aiops_paused 1.0" in requests.get(f"{daemon.url}/metrics", timeout=5).text, 10,
                 "the kill switch in the metrics", daemon.logs)
        assert daemon.cli("resume").returncode == 0

        # the API refuses writes without the token
        assert requests.post(f"{daemon.url}/api/v1/pause", timeout=5).status_code == 401
        ok = requests.post(f"{daemon.url}/api/v1/pause", headers={"Authorization": "Bearer t0ken"}, timeout=5)
        assert ok.status_code == 200 and ok.json()["paused"] is True

        started = time.monotonic()
        assert daemon.terminate(timeout=10) == 0
        assert time.monotonic() - started < 10
        assert "t0ken" not in daemon.logs()
    finally:
        if daemon.proc and daemon.proc.poll() is None:
            daemon.kill()


def test_invalid_config_exits_1_with_one_line_per_problem(tmp_path: Path) -> None:
    config = tmp_path / "aiops.yaml"
    config.write_text("checks:\n  - name: x\n    every: 1s\n    source: {type: nope}\n    detectors: []\n")
    out = subprocess.run([sys.executable, "-m", "aiops", "run", "--config", str(config)], capture_output=True,
                         text=True, timeout=60, cwd=tmp_path)
    assert out.returncode == 1
    assert "Traceback" not in out.stderr
    assert f"{config}:4: checks[0].source.type: unknown source 'nope'" in out.stderr
    assert f"{config}:5: checks[0].detectors:" in out.stderr


def test_run_without_config_runs_the_full_demo_then_keeps_serving(tmp_path: Path) -> None:
    """`aiops run` with no config: a real model served and monitored, a fault injected, healed and verified,
    the report written, and then the daemon keeps serving until SIGTERM."""
    port = free_port()
    env = {**os.environ, "AIOPS_DEMO_SPEED": "40", "AIOPS_DEMO_SCENARIOS": "bad-deploy"}
    out_path = tmp_path / "run.log"
    log = out_path.open("wb")
    proc = subprocess.Popen([sys.executable, "-m", "aiops", "run", "--listen", f"127.0.0.1:{port}"], cwd=tmp_path,
                            env=env, stdout=log, stderr=log, start_new_session=True)
    try:
        def timeline_done() -> bool:
            assert proc.poll() is None, out_path.read_text(errors="replace")[-4000:]
            return "timeline done" in out_path.read_text(errors="replace")

        wait_for(timeline_done, 150, "the demo timeline", lambda: out_path.read_text(errors="replace")[-4000:])
        assert (tmp_path / "aiops-data" / "demo-run" / "report.html").exists()
        assert requests.get(f"http://127.0.0.1:{port}/readyz", timeout=5).status_code == 200
        listed = subprocess.run([sys.executable, "-m", "aiops", "incidents", "--state", "resolved"],
                                capture_output=True, text=True, timeout=60, cwd=tmp_path)
        assert listed.returncode == 0 and "resolved" in listed.stdout, listed.stdout + listed.stderr
        started = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
        assert time.monotonic() - started < 20
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)


EXAMPLES = sorted((ROOT / "deploy" / "examples").glob("*.yaml"))


@pytest.mark.parametrize("example", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_each_shipped_example_runs_serves_clean_metrics_and_stops(example: Path, tmp_path: Path) -> None:
    """The issue's must-show: `aiops run --config deploy/examples/X.yaml --listen ...` serves /metrics that
    promtool reports clean, /readyz 200, and exits 0 within 10 s of SIGTERM."""
    port = free_port()
    env = {**os.environ, "AIOPS_WEBHOOK_URL": "http://127.0.0.1:9/hook", "AIOPS_WEBHOOK_SECRET": "s",
           "AIOPS_STATE_DIR": str(tmp_path / "state")}
    log = (tmp_path / "run.log").open("wb")
    proc = subprocess.Popen([sys.executable, "-m", "aiops", "run", "--config", str(example), "--listen",
                             f"127.0.0.1:{port}"], cwd=tmp_path, env=env, stdout=log, stderr=log,
                            start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        def ready() -> bool:
            assert proc.poll() is None, (tmp_path / "run.log").read_text()[-3000:]
            try:
                return requests.get(f"{url}/readyz", timeout=1).status_code == 200
            except requests.RequestException:
                return False

        wait_for(ready, 30, f"{example.name} to be ready")
        exposition = requests.get(f"{url}/metrics", timeout=5).text
        promtool = shutil.which("promtool")
        assert promtool
        lint = subprocess.run([promtool, "check", "metrics"], input=exposition, capture_output=True, text=True,
                              timeout=30)
        assert lint.returncode == 0 and not (lint.stdout + lint.stderr).strip(), lint.stdout + lint.stderr
        started = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
        assert time.monotonic() - started < 10
    finally:
        if proc.poll() is None:
            proc.kill()
