"""A config-management run pushes a hostile file over a running daemon's config and sends SIGHUP: the daemon
refuses it within a second, keeps running its previous configuration, and says why in its log and metrics."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import requests

from tests.e2e.daemon import DaemonProcess, wait_for
from tests.hostile_configs import HOSTILE

CONFIG = """
store: {{url: "sqlite:///{work}/aiops.db"}}
state_dir: {work}/state
checks:
  - name: host
    every: 0.5s
    source: {{type: host, metrics: [host_cpu_percent]}}
    detectors: [{{type: threshold, above: 1000}}]
"""


def metrics(daemon: DaemonProcess) -> str:
    return requests.get(f"{daemon.url}/metrics", timeout=5).text


def check_runs(daemon: DaemonProcess) -> float:
    for line in metrics(daemon).splitlines():
        if line.startswith('aiops_check_runs_total{check="host"'):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_sighup_with_an_alias_bomb_keeps_the_old_config_running(tmp_path: Path) -> None:
    config = tmp_path / "aiops.yaml"
    config.write_text(CONFIG.format(work=tmp_path))
    daemon = DaemonProcess(config, tmp_path).start()
    assert daemon.proc is not None
    try:
        wait_for(lambda: check_runs(daemon) > 0, 20, "the first check run", daemon.logs)
        refusals = (("alias bomb", "once aliases are expanded"), ("recursive alias in a list", "recursive alias"))
        for name, why in refusals:
            config.write_bytes(HOSTILE[name][0])
            sent = time.monotonic()
            daemon.proc.send_signal(signal.SIGHUP)
            wait_for(
                lambda: "aiops_config_last_reload_successful 0.0" in metrics(daemon), 5, "the refusal", daemon.logs
            )
            refused_after = time.monotonic() - sent
            assert refused_after < 2.0, refused_after  # 1 s for the loader, plus the metric poll's own latency
            assert f"{config}:" in daemon.logs() and why in daemon.logs() and "reload rejected" in daemon.logs()
            runs = check_runs(daemon)
            wait_for(lambda runs=runs: check_runs(daemon) > runs, 10, "the old check to keep running", daemon.logs)
            assert requests.get(f"{daemon.url}/readyz", timeout=5).status_code == 200
            config.write_text(CONFIG.format(work=tmp_path))
            daemon.proc.send_signal(signal.SIGHUP)
            wait_for(
                lambda: "aiops_config_last_reload_successful 1.0" in metrics(daemon), 10, "a good reload", daemon.logs
            )
        assert daemon.terminate(timeout=15) == 0
    finally:
        if daemon.proc.poll() is None:
            daemon.kill()
