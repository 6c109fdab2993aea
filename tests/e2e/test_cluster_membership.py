"""Membership with real daemon processes on one SQLite store: the first registers and is listed by ``aiops
cluster``, ``GET /api/v1/cluster`` and ``aiops_cluster_members``; a second daemon on the same SQLite file
refuses to start and names the first; once the first is SIGKILLed, its stale row blocks nobody."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from tests.e2e.daemon import DaemonProcess

CONFIG = """
store: {{url: "sqlite:///{db}"}}
state_dir: {work}/state
checks:
  - name: host
    every: 1s
    source: {{type: host, metrics: [host_cpu_percent]}}
    detectors: [{{type: threshold, above: 1000}}]
"""


def _daemon(tmp_path: Path, name: str) -> DaemonProcess:
    work = tmp_path / name
    work.mkdir()
    config = work / "aiops.yaml"
    config.write_text(CONFIG.format(db=tmp_path / "shared.db", work=work))
    return DaemonProcess(config, work)


@pytest.mark.slow
def test_second_daemon_on_one_sqlite_store_is_refused_until_the_first_is_gone(tmp_path: Path) -> None:
    first, second = _daemon(tmp_path, "first"), _daemon(tmp_path, "second")
    try:
        first.start()
        assert first.proc is not None
        cluster = requests.get(f"{first.url}/api/v1/cluster", timeout=5).json()
        members = cluster["members"]
        assert [(m["pid"], m["alive"]) for m in members] == [(first.proc.pid, True)]
        # the only replica of a SQLite store owns every check, through the same leases as a cluster
        assert cluster["owned"] == ["host"] and cluster["replica"] == members[0]["replica"]
        assert members[0]["checks_owned"] == 1
        assert "aiops_checks_owned 1.0" in requests.get(f"{first.url}/metrics", timeout=5).text
        assert members[0]["heartbeat_age"] < 5
        assert "aiops_cluster_members 1.0" in requests.get(f"{first.url}/metrics", timeout=5).text
        listed = first.cli("cluster", "--json")
        assert listed.returncode == 0, listed.stderr
        assert [m["pid"] for m in json.loads(listed.stdout)] == [first.proc.pid]
        assert "1 of 1 alive" in first.cli("cluster").stdout

        second.start(wait_ready=False)
        assert second.proc is not None
        assert second.proc.wait(timeout=60) == 1
        refusal = second.logs()
        assert f"pid {first.proc.pid}" in refusal and "another aiops daemon already uses the SQLite store" in refusal
        assert "Traceback" not in refusal

        first.kill()  # no clean leave: its row stays, with a heartbeat seconds old, but its process is gone
        second.log_path.unlink()
        second.start()
        members = requests.get(f"{second.url}/api/v1/cluster", timeout=5).json()["members"]
        assert [m["pid"] for m in members] == [second.proc.pid]
        assert second.terminate() == 0
        after = subprocess.run(
            [sys.executable, "-m", "aiops", "cluster", "--config", str(second.config_path)],
            capture_output=True,
            text=True,
            timeout=60,
            env={**os.environ, "COLUMNS": "200"},
        )
        assert after.returncode == 0 and "no replica registered" in after.stdout, after  # a clean stop leaves
    finally:
        for daemon in (first, second):
            if daemon.proc is not None and daemon.proc.poll() is None:
                daemon.kill()
