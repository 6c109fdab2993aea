"""A fresh install has no compiled code on disk: the daemon compiles its numba scorers at start-up, before
it reports ready, so the first ticks do not overrun a tight check timeout and page for ``check_timeout``."""

from __future__ import annotations

import re
import threading
import time
from pathlib import Path

import pytest
import requests

from tests.e2e.daemon import DaemonProcess, wait_for

CONFIG = """
store: {{url: "sqlite:///{work}/aiops.db"}}
state_dir: {work}/state
checks:
  - name: ingest
    every: 0.5s
    timeout: 1s
    source: {{type: file, path: "{work}/metrics.csv", value_columns: [latency]}}
    detectors:
      - {{type: default}}
      - {{type: robust_zscore}}
      - {{type: bocpd}}
"""


def test_cold_numba_cache_compiles_before_ready_not_inside_a_tick(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = tmp_path / "numba-cache"  # empty: nothing compiled yet, as after `pip install`
    monkeypatch.setenv("NUMBA_CACHE_DIR", str(cache))
    metrics = tmp_path / "metrics.csv"
    metrics.write_text("timestamp,latency\n")
    stop = threading.Event()

    def write() -> None:
        with metrics.open("a") as out:
            i = 0
            while not stop.wait(0.05):
                out.write(f"{time.time():.4f},{100 + (i % 7)}\n")
                out.flush()
                i += 1

    writer = threading.Thread(target=write, daemon=True)
    writer.start()
    config = tmp_path / "aiops.yaml"
    config.write_text(CONFIG.format(work=tmp_path))
    daemon = DaemonProcess(config, tmp_path).start(wait_ready=False)
    try:
        daemon.wait_ready(timeout=180.0)  # compiling three kernels on a busy 2-core machine
        assert any(cache.rglob("*.nbi")), "the kernels were not compiled into NUMBA_CACHE_DIR"

        def runs(outcome: str) -> float:
            text = requests.get(f"{daemon.url}/metrics", timeout=5).text
            found = re.search(rf'aiops_check_runs_total{{check="ingest",outcome="{outcome}"}} (\S+)', text)
            return float(found.group(1)) if found else 0.0

        wait_for(lambda: runs("ok") >= 6, 30, "six check runs", daemon.logs)
        assert runs("timeout") == 0.0
        assert [i["kind"] for i in daemon.incidents()] == []  # no check_timeout incident
    finally:
        stop.set()
        daemon.terminate()
