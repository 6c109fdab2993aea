"""One incident's whole life on a real daemon process, optionally SIGKILLed at a named commit boundary
(``AIOPS_FAULT_POINT``, see :mod:`aiops.faults`) and restarted; what the store and a real webhook receiver
hold at the end, for comparison with an uncrashed run.

The metric (a CSV the file source tails) is high until the remediation — a ``command`` that appends one
line to ``executions.log`` — has run; then it is normal, so the incident verifies and resolves.
"""

from __future__ import annotations

import sys
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests
import sqlalchemy as sa

from aiops.store.store import Store
from tests.e2e.daemon import DaemonProcess
from tests.servers import WebhookReceiver

TOKEN = "crash-t0ken"

HEAL = """
import sys, time
from pathlib import Path
work = Path(sys.argv[1])
time.sleep(float(sys.argv[2]))
with open(work / "executions.log", "a") as f:
    f.write("ran\\n")
"""

CONFIG = """
store: {{url: "{url}"}}
state_dir: {work}/state
server: {{token: "{token}"}}
notifiers:
  hook: {{type: webhook, url: "{hook}"}}
checks:
  - name: crash
    every: 0.25s
    source: {{type: file, path: "{work}/metrics.csv", value_columns: [latency]}}
    detectors: [{{type: threshold, above: 500}}]
    policy:
      for: 0.5s
      cooldown: 0s
      verify: {{settle: 0.3s, window: 60s}}
      notify: [hook]
      actions:
        - type: command
          argv: ["{python}", "{work}/heal.py", "{work}", "{heal_seconds}"]
          timeout: 30s
          mode: {mode}
          approval_timeout: 1h
"""


@dataclass(frozen=True)
class LifeEnd:
    """What one run left behind."""

    incidents: int
    final_state: str
    states: tuple[str, ...]  # the audit trail's to_state sequence
    action_states: tuple[str, ...]
    executions: int
    messages: dict[str, int]  # event -> distinct dedup keys the receiver got
    deliveries: dict[str, int]  # event -> requests (at-least-once: a kill mid-send may repeat one)
    interrupted: bool


class Metric:
    """Appends a latency row every 50 ms: high until the remediation ran, normal after."""

    def __init__(self, work: Path) -> None:
        self.path = work / "metrics.csv"
        self.executions = work / "executions.log"
        self.path.write_text("timestamp,latency\n")
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        with self.path.open("a") as out:
            while not self._stop.wait(0.05):
                value = 100.0 if self.executions.exists() else 1000.0
                out.write(f"{time.time():.4f},{value}\n")
                out.flush()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(2)


def new_store_url(kind: str, work: Path, postgres_url: str | None) -> str:
    if kind == "sqlite":
        return f"sqlite:///{work}/aiops.db"
    assert postgres_url is not None
    name = "crash_" + uuid.uuid4().hex[:12]
    admin = sa.create_engine(postgres_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return postgres_url.rsplit("/", 1)[0] + "/" + name


class Life:
    def __init__(self, work: Path, store_url: str, mode: str, heal_seconds: float = 0.0) -> None:
        self.work = work
        self.store_url = store_url
        self.mode = mode
        self.receiver = WebhookReceiver()
        (work / "heal.py").write_text(HEAL)
        self.config = work / "aiops.yaml"
        self.config.write_text(
            CONFIG.format(
                url=store_url,
                work=work,
                token=TOKEN,
                hook=self.receiver.url,
                python=sys.executable,
                mode=mode,
                heal_seconds=heal_seconds,
            )
        )
        self.metric = Metric(work)
        self.daemon = DaemonProcess(self.config, work)

    def close(self) -> None:
        self.metric.stop()
        self.receiver.close()
        if self.daemon.proc is not None and self.daemon.proc.poll() is None:
            self.daemon.kill()

    # -- driving -------------------------------------------------------------------------------------

    def run(self, point: str | None, timeout: float = 40.0) -> LifeEnd:
        deadline = time.monotonic() + timeout
        if point:
            self.daemon.start(wait_ready=False, extra_env={"AIOPS_FAULT_POINT": point})
            while self.daemon.proc is not None and self.daemon.proc.poll() is None:
                self._approve_waiting()
                assert time.monotonic() < deadline, f"never reached fault point {point}:\n{self.daemon.logs()}"
                time.sleep(0.1)
            assert self.daemon.proc is not None
            assert self.daemon.proc.returncode == -9, f"exit {self.daemon.proc.returncode}:\n{self.daemon.logs()}"
        self.daemon.start(wait_ready=True)
        while not self.done():
            self._approve_waiting()
            assert time.monotonic() < deadline, f"{self.mode}/{point}: not done in {timeout}s:\n{self.daemon.logs()}"
            time.sleep(0.1)
        assert self.daemon.terminate() == 0
        return self.collect()

    def _approve_waiting(self) -> None:
        """A person approving whatever waits (approve mode); the daemon may die under the request."""
        if self.mode != "approve":
            return
        headers = {"Authorization": f"Bearer {TOKEN}"}
        try:
            waiting = requests.get(
                f"{self.daemon.url}/api/v1/actions", params={"state": "awaiting_approval"}, headers=headers, timeout=2
            )
            if waiting.status_code != 200:
                return
            for action in waiting.json()["actions"]:
                requests.post(f"{self.daemon.url}/api/v1/actions/{action['id']}/approve", headers=headers, timeout=5)
        except requests.RequestException:
            pass

    def done(self) -> bool:
        events = {r.json.get("event") for r in self.receiver.requests if isinstance(r.json, dict)}
        if "resolved" not in events:
            return False
        store = Store(self.store_url)
        try:
            return store.outbox_pending() == 0 and not store.list_incidents(open_only=True)
        finally:
            store.close()

    def collect(self) -> LifeEnd:
        store = Store(self.store_url)
        try:
            # the daemon's own problems (a tick skipped on a loaded machine: check_overrun) notify on their own;
            # what is compared is the life of the detector's incident
            incidents = [i for i in store.list_incidents(limit=100) if i.kind.startswith("detector:")]
            first = incidents[-1]
            states = tuple(t.to_state.value for t in store.transitions(first.id))
            actions = store.list_actions(limit=100)
        finally:
            store.close()
        keys: dict[str, set[str]] = {}
        deliveries: Counter[str] = Counter()
        for r in self.receiver.requests:
            if isinstance(r.json, dict) and not dict(r.json.get("incident", {}).get("labels", {})).get("problem"):
                event = str(r.json.get("event"))
                keys.setdefault(event, set()).add(r.headers.get("x-aiops-dedup-key", ""))
                deliveries[event] += 1
        log = self.work / "executions.log"
        return LifeEnd(
            incidents=len(incidents),
            final_state=first.state.value,
            states=states,
            action_states=tuple(a.state.value for a in actions),
            executions=len(log.read_text().splitlines()) if log.exists() else 0,
            messages={k: len(v) for k, v in sorted(keys.items())},
            deliveries=dict(sorted(deliveries.items())),
            interrupted=any("interrupted" in (a.error or "") for a in actions),
        )


def describe(end: LifeEnd) -> dict[str, Any]:
    """The parts of a run that must not depend on where (or whether) it was killed."""
    return {
        "incidents": end.incidents,
        "final_state": end.final_state,
        "states": end.states,
        "action_states": end.action_states,
        "executions": end.executions,
        "messages": end.messages,
        "interrupted": end.interrupted,
    }
