"""The whole loop with the daemon as a real process: a file source receives a spike, an incident opens, the
``command`` remediation runs once, verification resolves it, and a real HTTP receiver got the firing and
resolved notifications, all visible through ``aiops incidents --json``. Then: SIGKILL mid-remediation."""

from __future__ import annotations

import random
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from aiops.signing import verify
from tests.e2e.daemon import DaemonProcess, wait_for
from tests.servers import WebhookReceiver

HEAL_SCRIPT = """
import os, sys, time
from pathlib import Path
work = Path(sys.argv[1])
time.sleep(float(sys.argv[2]))
with open(work / "executions.log", "a") as f:
    f.write(os.environ["AIOPS_IDEMPOTENCY_KEY"] + "\\n")
(work / "healed").write_text("1")
"""

CONFIG = """
store: {{url: "sqlite:///{work}/aiops.db"}}
state_dir: {work}/state
server: {{listen: "127.0.0.1:9464", token: "t0ken"}}
notifiers:
  hook: {{type: webhook, url: "{hook}", secret: "s3cret"}}
checks:
  - name: ingest
    every: 0.5s
    source: {{type: file, path: "{work}/metrics.csv", value_columns: [latency]}}
    detectors:
      - {{type: robust_zscore, window: 200, min_points: 20, z_threshold: 8}}
    policy:
      cooldown: 0s
      verify: {{settle: 0.5s, window: 30s}}
      notify: [hook]
      actions:
        - type: command
          argv: ["{python}", "{work}/heal.py", "{work}", "{delay}"]
          timeout: 30s
"""


class MetricWriter:
    """Plays a pipeline: appends a latency row every 50 ms; spikes when told, until the heal marker appears."""

    def __init__(self, work: Path) -> None:
        self.path = work / "metrics.csv"
        self.healed = work / "healed"
        self.spiking = False
        self._stop = threading.Event()
        self._rng = random.Random(7)
        self.path.write_text("timestamp,latency\n")
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        with self.path.open("a") as out:
            while not self._stop.wait(0.05):
                if self.healed.exists():
                    self.healed.unlink()
                    self.spiking = False
                value = self._rng.gauss(1000.0 if self.spiking else 100.0, 3.0)
                out.write(f"{time.time():.4f},{value:.3f}\n")
                out.flush()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(2)


@pytest.fixture
def loop_env(tmp_path: Path, webhook_receiver: WebhookReceiver) -> Iterator[tuple[Path, WebhookReceiver, MetricWriter]]:
    (tmp_path / "heal.py").write_text(HEAL_SCRIPT)
    writer = MetricWriter(tmp_path)
    yield tmp_path, webhook_receiver, writer
    writer.stop()


def _write_config(work: Path, hook: str, delay: float) -> Path:
    path = work / "aiops.yaml"
    path.write_text(CONFIG.format(work=work, hook=hook, python=sys.executable, delay=delay))
    return path


def _running_actions(daemon: DaemonProcess) -> list[dict[str, object]]:
    """Polled through the HTTP API: fast enough to catch a seconds-long action while it runs."""
    try:
        resp = requests.get(f"{daemon.url}/api/v1/actions", params={"state": "running"}, timeout=2)
    except requests.RequestException:
        return []
    return list(resp.json()["actions"]) if resp.status_code == 200 else []


def _executions(work: Path) -> list[str]:
    log = work / "executions.log"
    return log.read_text().split() if log.exists() else []


def test_spike_is_detected_remediated_verified_and_notified(
    loop_env: tuple[Path, WebhookReceiver, MetricWriter],
) -> None:
    work, receiver, writer = loop_env
    config = _write_config(work, receiver.url + "/hook", delay=0)
    daemon = DaemonProcess(config, work).start()
    try:
        time.sleep(2.0)  # let the detector learn what normal looks like
        assert daemon.incidents() == []
        writer.spiking = True
        incidents = wait_for(
            lambda: [i for i in daemon.incidents() if i["state"] == "resolved"], 30, "a resolved incident", daemon.logs
        )
        wait_for(lambda: len(receiver.requests) >= 2, 15, "firing and resolved notifications", daemon.logs)
        inc = incidents[0]
        assert [t["to_state"] for t in inc["transitions"]] == ["firing", "remediating", "verifying", "resolved"]
        assert [a["state"] for a in inc["actions"]] == ["succeeded"]
        assert _executions(work) == [inc["actions"][0]["idempotency_key"]]
        events = [r.json["event"] for r in receiver.requests]
        assert events[:2] == ["firing", "resolved"]
        for r in receiver.requests:
            assert verify(b"s3cret", r.body, r.headers["x-aiops-signature"], now=time.time())
        detail = requests.get(f"{daemon.url}/api/v1/incidents/{inc['id']}", timeout=5).json()
        assert detail["state"] == "resolved"
        metrics = requests.get(f"{daemon.url}/metrics", timeout=5).text
        assert 'aiops_actions_total{action="command",outcome="succeeded"} 1.0' in metrics
        started = time.monotonic()
        assert daemon.terminate() == 0
        assert time.monotonic() - started < 10
    finally:
        if daemon.proc and daemon.proc.poll() is None:
            daemon.kill()


def _detected(incidents: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The detector's incidents: the daemon's notices about itself (``check_overrun`` when a starved host ran a
    tick too late) are not what a round is about, as in the crash-point test."""
    return [i for i in incidents if str(i["kind"]).startswith("detector:")]


def _kill_round(config: Path, work: Path, writer: MetricWriter, round_no: int, first: DaemonProcess) -> DaemonProcess:
    """Spike, SIGKILL ``first`` while the command runs, restart: the incident resolves with the action run once.

    Returns the restarted daemon, still running: the next round's spike and kill happen to it, so every round
    costs one daemon start (the part of a round that takes the most time besides the action itself)."""
    writer.spiking = True
    wait_for(lambda: _running_actions(first), 30, f"round {round_no}: a running action", first.logs)
    time.sleep(random.uniform(0.05, 2.5))
    first.kill()
    second = DaemonProcess(config, work)
    try:
        second.start()  # inside the try: a restart that never gets ready is killed too, not left running
        incidents = wait_for(
            lambda: (found := _detected(second.api_incidents())) and found[0]["state"] == "resolved" and found,
            40,
            f"round {round_no}: the incident resolved after restart",
            second.logs,
        )
        assert len(incidents) == round_no + 1
        keys = _executions(work)
        assert len(keys) == round_no + 1, f"round {round_no}: executions {keys}"
        assert len(set(keys)) == len(keys), "an action ran twice"
        newest = second.api_incident(incidents[0]["id"])
        assert [t["to_state"] for t in newest["transitions"]] == ["firing", "remediating", "verifying", "resolved"]
        assert [a["state"] for a in newest["actions"]] == ["succeeded"]
    except BaseException:
        if second.proc is not None and second.proc.poll() is None:
            second.kill()
        raise
    return second


def test_sigterm_mid_remediation_exits_fast_and_the_restart_resumes_it(
    loop_env: tuple[Path, WebhookReceiver, MetricWriter],
) -> None:
    work, receiver, writer = loop_env
    config = _write_config(work, receiver.url + "/hook", delay=12)
    first = DaemonProcess(config, work).start()
    second: DaemonProcess | None = None
    try:
        time.sleep(2.0)
        writer.spiking = True
        wait_for(lambda: _running_actions(first), 30, "a running action", first.logs)
        started = time.monotonic()
        assert first.terminate(timeout=10) == 0
        assert time.monotonic() - started < 10
        second = DaemonProcess(config, work).start()
        daemon = second
        wait_for(
            lambda: (found := daemon.api_incidents()) and found[0]["state"] == "resolved",
            40,
            "the resumed action to heal",
            daemon.logs,
        )
        assert len(_executions(work)) == 1
        assert "resuming action from its handle" in daemon.logs()
        assert daemon.terminate() == 0
    finally:
        for proc in (first, second):
            if proc is not None and proc.proc is not None and proc.proc.poll() is None:
                proc.kill()


@pytest.mark.slow
@pytest.mark.timeout(900)  # 20 rounds: ~8-10 s each on this busy host, more at a load of 20+
def test_sigkill_mid_remediation_runs_it_exactly_once(loop_env: tuple[Path, WebhookReceiver, MetricWriter]) -> None:
    """20 rounds: each kills the daemon (SIGKILL) while the command runs, restarts it, and checks that the
    action completed exactly once and the incident history is intact. The daemon killed in a round is the one
    restarted in the round before, so each kill also lands on a daemon that adopted a dead process's work."""
    work, _receiver, writer = loop_env
    config = _write_config(work, _receiver.url + "/hook", delay=3.0)
    started = time.monotonic()
    daemon = DaemonProcess(config, work).start()
    try:
        time.sleep(2.0)  # let the detector learn what normal looks like
        for round_no in range(20):
            daemon = _kill_round(config, work, writer, round_no, daemon)
            print(f"round {round_no}: {time.monotonic() - started:.1f} s")
        # The command line reads the same history from the store: 20 incidents, each healed by one run.
        history = _detected(daemon.incidents())
        assert len(history) == 20
        assert all(i["state"] == "resolved" for i in history)
        assert all([a["state"] for a in i["actions"]] == ["succeeded"] for i in history)
        assert sorted(a["idempotency_key"] for i in history for a in i["actions"]) == sorted(_executions(work))
        assert daemon.terminate() == 0
    finally:
        if daemon.proc is not None and daemon.proc.poll() is None:
            daemon.kill()
