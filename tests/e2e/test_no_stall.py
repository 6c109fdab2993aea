"""Nothing blocks the loop: 50 checks on 1 s intervals, one of them verifying its remediation with a probe that
hangs for 10 s. The probe runs outside every lock, so the other 49 checks keep their schedule: the p99
lateness of their ticks stays under 1 s.

Lateness is measured where a tick is undeniable: each check's http source GETs its own path on a local
server, which records when; a tick is late by how much the gap to the previous one exceeds the interval.
"""

from __future__ import annotations

import itertools
import json
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.daemon import DaemonProcess, wait_for

pytestmark = pytest.mark.slow

CHECKS = 49
PROBE_SECONDS = 10.0

PROBE = "import pathlib, sys, time; pathlib.Path(sys.argv[1]).touch(); time.sleep(float(sys.argv[2]))"
HEAL = "import pathlib, sys; pathlib.Path(sys.argv[1]).touch()"


class Metrics:
    """Serves ``{"v": value}`` at ``/<check>`` and records when each check asked."""

    def __init__(self, healed: Path) -> None:
        self.healed = healed
        self.hits: dict[str, list[float]] = {}
        self.lock = threading.Lock()
        metrics = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                name = self.path.strip("/")
                with metrics.lock:
                    metrics.hits.setdefault(name, []).append(time.monotonic())
                bad = name == "slow" and not metrics.healed.exists()
                body = json.dumps({"v": 1000.0 if bad else 100.0}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _check(name: str, url: str, extra: str = "") -> str:
    return f"""
  - name: {name}
    every: 1s
    source: {{type: http, url: "{url}/{name}", metrics: {{v: "$.v"}}}}
    detectors: [{{type: threshold, above: 500}}]{extra}
"""


@pytest.fixture
def metrics(tmp_path: Path) -> Iterator[Metrics]:
    served = Metrics(tmp_path / "healed")
    yield served
    served.close()


def test_a_hanging_probe_does_not_delay_other_checks(tmp_path: Path, metrics: Metrics) -> None:
    started = tmp_path / "probe-started"
    policy = f"""
    policy:
      cooldown: 0s
      verify:
        settle: 0s
        window: 60s
        command: ["{sys.executable}", "-c", "{PROBE}", "{started}", "{PROBE_SECONDS}"]
        probe_timeout: 20s
      actions:
        - type: command
          argv: ["{sys.executable}", "-c", "{HEAL}", "{tmp_path / "healed"}"]
"""
    checks = "".join(_check(f"c{i:02d}", metrics.url) for i in range(CHECKS)) + _check("slow", metrics.url, policy)
    config = tmp_path / "aiops.yaml"
    config.write_text(f'store: {{url: "sqlite:///{tmp_path}/aiops.db"}}\nstate_dir: {tmp_path}/state\nchecks:{checks}')
    daemon = DaemonProcess(config, tmp_path).start()
    try:
        wait_for(started.exists, 30, "the verification probe starting", daemon.logs)
        # from 1 s into the probe (the remediation's and the probe's interpreters have started by then: the CPU
        # they take is load, not blocking) to 1 s before it ends; then as long again with no probe, as control
        probe_start = time.monotonic()
        during = (probe_start + 1.0, probe_start + PROBE_SECONDS - 1.0)
        control = (probe_start + PROBE_SECONDS + 0.5, probe_start + 2 * PROBE_SECONDS - 1.5)
        time.sleep(control[1] - probe_start)
        assert daemon.proc is not None and daemon.proc.poll() is None
    finally:
        daemon.terminate()
    with metrics.lock:
        hits = {name: list(times) for name, times in metrics.hits.items() if name != "slow"}
    assert len(hits) == CHECKS
    late, p99 = _lateness(hits, *during)
    _, control_p99 = _lateness(hits, *control)
    print(f"p99 lateness: {p99:.3f}s during the probe, {control_p99:.3f}s without it ({len(late)} ticks)")
    # a lock held across the probe would hold every check back for its whole 10 s
    assert late[-1] < PROBE_SECONDS / 2, f"a check waited {late[-1]:.1f}s behind the probe"
    # p99 under 1 s on an unloaded machine; on a loaded one the probe adds nothing to what load alone causes
    assert p99 < max(1.0, control_p99 + 0.5), f"p99 lateness {p99:.2f}s (control {control_p99:.2f}s)"


def _lateness(hits: dict[str, list[float]], begin: float, end: float) -> tuple[list[float], float]:
    """Every tick's lateness in [begin, end] (how far its gap to the previous tick exceeds 1 s), sorted, and
    the p99."""
    late: list[float] = []
    for times in hits.values():
        window = [t for t in times if begin <= t <= end]
        late.extend(max(0.0, b - a - 1.0) for a, b in itertools.pairwise(window))
    late.sort()
    return late, late[int(0.99 * (len(late) - 1))]
