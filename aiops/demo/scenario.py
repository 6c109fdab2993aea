"""The orchestrator of ``aiops demo``: starts the real parts, injects faults on a timeline, measures.

Parts (all real): the model service and the feature pipeline as subprocesses, the filesystem registry,
the SQLite prediction log, a local webhook receiver, and the aiops daemon itself (in this process, so the
live view can read its store). Each scenario injects one fault and waits until the daemon has detected,
remediated and verified it (or escalated, where that is the intended outcome); time-to-detect and
time-to-heal are taken from the daemon's own audit trail (incident ``opened_at`` / ``resolved_at``), in
demo seconds (wall seconds x speed).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import requests

from aiops.demo import config as democonfig
from aiops.demo.common import DRIFT_COLUMNS, DRIFT_FACTOR, FEATURES, MODEL, TABLE, BadModel, Layout, write_control
from aiops.text import abbreviate
from aiops.types import IncidentState

SCENARIOS = ("drift", "bad-deploy", "pipeline-kill", "flapping")
CHECK_OF = {
    "drift": "feature-drift",
    "bad-deploy": "serving-latency",
    "pipeline-kill": "prediction-log-freshness",
    "flapping": "model-errors",
}
EXPECTED = {"drift": "healed", "bad-deploy": "healed", "pipeline-kill": "healed", "flapping": "escalated"}
DESCRIPTION = {
    "drift": "covariate drift: the upstream recalibrated its size sensors (x1.4 on 4 features)",
    "bad-deploy": "a deploy promotes a bad model version (slow and wrong)",
    "pipeline-kill": "the feature pipeline process is killed (SIGKILL)",
    "flapping": "the model service's upstream flaps: errors on and off",
}
MARKER = ".aiops-demo"
DEFAULT_REPORT = "report.html"
_NUMBER = re.compile(r"\d+(?:\.\d+)?")
Emit = Callable[[str], None]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class ScenarioResult:
    """What one scenario did, in the daemon's own terms (for the JSON summary and the report)."""

    name: str
    fault_at: float
    description: str
    expected: str
    incidents: list[dict[str, Any]] = field(default_factory=list)
    outcome: str = "timeout"
    finished_at: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)


class WebhookReceiver:
    """A local HTTP receiver for the daemon's notifications; checks each message's signature."""

    def __init__(self, secret: str) -> None:
        self.secret = secret
        self.messages: list[dict[str, Any]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                return None

            def do_POST(self) -> None:
                from aiops.signing import verify

                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                signed = verify(receiver.secret, body, self.headers.get("X-Aiops-Signature"), now=time.time())
                try:
                    data = json.loads(body)
                except ValueError:
                    data = {}
                receiver.messages.append(
                    {
                        "received_at": time.time(),
                        "signature_ok": signed,
                        "title": data.get("title", ""),
                        "event": data.get("event", ""),
                        "text": data.get("text", ""),
                        "incident": (data.get("incident") or {}).get("id"),
                    }
                )
                self.send_response(200 if signed else 401)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.port = free_port()
        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class Sampler(threading.Thread):
    """Samples the service's /stats and the prediction log's row rate for the report's plots."""

    def __init__(self, service: str, db: Path, every: float) -> None:
        super().__init__(name="demo-sampler", daemon=True)
        self.service, self.db, self.every = service, db, every
        self.samples: list[dict[str, Any]] = []
        self._halt = threading.Event()

    def run(self) -> None:
        session = requests.Session()
        while not self._halt.wait(self.every):
            now = time.time()
            sample: dict[str, Any] = {"t": now}
            try:
                stats = session.get(f"{self.service}/stats", timeout=2).json()
                sample.update(
                    p95_latency_ms=stats["p95_latency_ms"], error_rate=stats["error_rate"], version=stats["version"]
                )
            except (requests.RequestException, ValueError, KeyError):
                pass
            try:
                conn = sqlite3.connect(self.db, timeout=5)
                try:
                    count = conn.execute(f"SELECT COUNT(*) FROM {TABLE} WHERE ts > ?", (now - 4 * self.every,))
                    count = count.fetchone()[0]
                    newest = conn.execute(f"SELECT MAX(ts) FROM {TABLE}").fetchone()[0]
                finally:
                    conn.close()
                sample["rows_per_s"] = count / (4 * self.every)
                sample["newest_age"] = None if newest is None else now - float(newest)
            except sqlite3.Error:
                pass
            self.samples.append(sample)

    def stop(self) -> None:
        self._halt.set()


def _same_guard(note: str, held: list[str]) -> bool:
    """Whether a guard note says what an earlier one said, numbers aside: a cooldown's "acted on 12s ago"
    is rewritten every tick, and the log and report should say "held" once per reason, not once per tick.

    >>> _same_guard("cooldown: acted on 12s ago (cooldown 5m)", ["cooldown: acted on 2s ago (cooldown 5m)"])
    True
    """
    shape = _NUMBER.sub("#", note)
    return any(_NUMBER.sub("#", h) == shape for h in held)


class Follower(threading.Thread):
    """Turns the daemon's audit trail into progress lines: every incident transition, as it happens."""

    def __init__(self, run: DemoRun) -> None:
        super().__init__(name="demo-follower", daemon=True)
        self.demo = run
        self.seen: set[int] = set()
        self.messages = 0
        self._halt = threading.Event()

    def run_once(self) -> None:
        store = self.demo.daemon.store
        for row in reversed(store.list_incidents(limit=15)):
            note = row.guard_note
            held = self.demo.guard_notes.setdefault(row.id, [])
            if note and row.state in ("firing", "pending") and not _same_guard(str(note), held):
                held.append(str(note))
                self.demo.emit(f"incident #{row.id} {row.check_name}: held: {note}")
            for t in store.transitions(row.id):
                if t.id in self.seen:
                    continue
                self.seen.add(t.id)
                reason = abbreviate(t.reason, 110)
                self.demo.emit(f"incident #{row.id} {row.check_name}: {t.to_state} ({t.actor}: {reason})")
        for message in self.demo.receiver.messages[self.messages :]:
            self.messages += 1
            self.demo.emit(f"webhook got {abbreviate(str(message['title']), 120)}")

    def run(self) -> None:
        while not self._halt.wait(0.2):
            with contextlib.suppress(Exception):  # the store closes at shutdown
                self.run_once()

    def stop(self) -> None:
        self._halt.set()
        self.join(2)


class DemoRun:
    """One run of the demo: ``setup()``, ``run_scenario(name)`` for each, ``teardown()``."""

    def __init__(self, directory: Path, speed: float, emit: Emit | None = None) -> None:
        self.layout = Layout(directory.resolve())
        self.speed = speed
        self.emit: Emit = emit or (lambda _line: None)
        self.secret = secrets.token_hex(16)
        self.receiver = WebhookReceiver(self.secret)
        self.endpoints = democonfig.Endpoints(
            service=f"http://127.0.0.1:{free_port()}",
            daemon_listen=f"127.0.0.1:{free_port()}",
            webhook=self.receiver.url,
        )
        self.started_at = time.time()
        self.results: list[ScenarioResult] = []
        self.phase = "starting"
        self.champion_accuracy: float | None = None
        self.daemon: Any = None
        self.sampler: Sampler | None = None
        self.follower: Follower | None = None
        self.guard_notes: dict[int, list[str]] = {}  # incident id -> guard decisions that held it back
        self.report_path = self.layout.root / DEFAULT_REPORT  # where this run's report goes (--report)
        self._service: subprocess.Popen[bytes] | None = None
        self._pipeline: subprocess.Popen[bytes] | None = None
        self._log: Any = None

    # -- time ------------------------------------------------------------------------------------------

    def tick(self) -> float:
        """One check interval in wall seconds."""
        return democonfig.TICK / self.speed

    def demo_seconds(self, wall_seconds: float) -> float:
        return round(wall_seconds * self.speed, 1)

    def config_text(self) -> str:
        return democonfig.render(self.layout, self.endpoints, self.speed, self.secret)

    # -- setup -----------------------------------------------------------------------------------------

    def prepare_directory(self) -> None:
        """Start from a clean directory; only one that a previous demo created is ever emptied. The previous
        run's report stays when this run writes its report elsewhere (``--report``): a person who points the
        new report away from the old one wants to keep the old one."""
        root = self.layout.root
        if root.exists() and any(root.iterdir()):
            if not (root / MARKER).exists():
                raise RuntimeError(f"{root} exists and was not created by `aiops demo`; choose another --dir")
            previous = root / DEFAULT_REPORT
            keep = {previous} if previous.resolve() != self.report_path.resolve() else set()
            for child in root.iterdir():
                if child in keep:
                    continue
                if child.is_dir() and not child.is_symlink():
                    shutil.rmtree(child)
                else:
                    child.unlink()
        root.mkdir(parents=True, exist_ok=True)
        (root / MARKER).write_text("created by `aiops demo`; emptied by the next run\n", encoding="utf-8")

    def setup(self) -> None:
        from aiops.demo.common import load_pool, train_champion
        from aiops.demo.pipeline import connect
        from aiops.registry import FilesystemRegistry

        self.prepare_directory()
        self.phase = "training the champion"
        model, accuracy = train_champion()
        self.champion_accuracy = accuracy
        reg = FilesystemRegistry(self.layout.registry)
        version = reg.register(
            MODEL,
            model,
            {"training_window": {"source": "load_breast_cancer"}, "metrics": {"accuracy": accuracy}},
            key="initial-train",
        )
        reg.promote(MODEL, version, key="initial-release", reason="first release")
        load_pool()[FEATURES].to_csv(self.layout.reference, index=False)
        write_control(self.layout, drift=1.0)
        connect(self.layout.db).close()
        self.emit(f"champion v{version} trained on load_breast_cancer: held-out accuracy {accuracy:.3f}")
        self._log = (self.layout.root / "processes.log").open("ab")
        self.phase = "starting the model service"
        port = int(self.endpoints.service.rsplit(":", 1)[1])
        self._service = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "aiops.demo.service",
                "--registry",
                str(self.layout.registry),
                "--port",
                str(port),
                "--window",
                f"{democonfig.STATS_WINDOW / self.speed:.4g}",
            ],
            stdout=self._log,
            stderr=self._log,
            start_new_session=True,
        )
        self._wait_http(f"{self.endpoints.service}/ready", "the model service")
        self.emit(f"model service up at {self.endpoints.service} (/predict, /metrics, /stats)")
        self.phase = "starting the feature pipeline"
        self.start_pipeline()
        self._wait(lambda: self.layout.pipeline_ready.exists(), 60, "the feature pipeline's first batch")
        self.emit(
            f"feature pipeline writing to {self.layout.db} (labels arrive {democonfig.LABEL_DELAY:g} demo-s late)"
        )
        self.receiver.start()
        self.layout.config.write_text(self.config_text(), encoding="utf-8")
        self.phase = "starting aiops"
        self._start_daemon()
        self.sampler = Sampler(self.endpoints.service, self.layout.db, self.tick() / 2)
        self.sampler.start()
        self.follower = Follower(self)
        self.follower.start()
        self.emit(f"aiops daemon watching 4 checks (config {self.layout.config})")

    def start_pipeline(self) -> None:
        argv = [
            sys.executable,
            "-m",
            "aiops.demo.pipeline",
            "--dir",
            str(self.layout.root),
            "--service",
            self.endpoints.service,
            "--interval",
            f"{self.tick() / 2:.4g}",
            "--batch",
            str(democonfig.BATCH_ROWS),
            "--label-delay",
            f"{democonfig.LABEL_DELAY / self.speed:.4g}",
        ]
        self._pipeline = subprocess.Popen(argv, stdout=self._log, stderr=self._log, start_new_session=True)
        self.layout.pipeline_pid.write_text(f"{self._pipeline.pid}\n", encoding="utf-8")

    def _start_daemon(self) -> None:
        from aiops.config.loader import load_config
        from aiops.daemon import Daemon
        from aiops.logs import configure_logging

        config = load_config(str(self.layout.config))
        log = (self.layout.root / "daemon.log").open("a", encoding="utf-8")
        configure_logging("info", True, config.secrets, stream=log)
        self.daemon = Daemon(config, listen=self.endpoints.daemon_listen)
        self.daemon.start()

    def _wait_http(self, url: str, what: str, timeout: float = 60.0) -> None:
        def ok() -> bool:
            try:
                return requests.get(url, timeout=1).status_code == 200
            except requests.RequestException:
                return False

        self._wait(ok, timeout, what)

    def _wait(self, predicate: Callable[[], bool], timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return
            if self._service is not None and self._service.poll() is not None:
                raise RuntimeError(f"the model service exited ({self._service.returncode}); see processes.log")
            time.sleep(0.1)
        raise RuntimeError(f"timed out after {timeout:g}s waiting for {what}")

    # -- scenarios -------------------------------------------------------------------------------------

    def warm_up(self) -> None:
        """A few quiet ticks so every check has a baseline (and nothing is open) before the first fault."""
        self.phase = "warming up: every check healthy"
        time.sleep(6 * self.tick())

    def run_scenario(self, name: str) -> ScenarioResult:
        self.phase = f"{name}: {DESCRIPTION[name]}"
        self.emit(f"== scenario {name}: {DESCRIPTION[name]}")
        result = ScenarioResult(name, time.time(), DESCRIPTION[name], EXPECTED[name])
        self.results.append(result)
        getattr(self, "_scenario_" + name.replace("-", "_"))(result)
        result.finished_at = time.time()
        self._collect(result)
        self.emit(f"== scenario {name}: {result.outcome} (expected {result.expected})")
        time.sleep(2 * self.tick())
        return result

    def _timeout(self, demo_seconds: float) -> float:
        return demo_seconds / self.speed + 30.0

    def _await_final(self, result: ScenarioResult, timeout: float) -> None:
        check = CHECK_OF[result.name]
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            rows = [
                r for r in self.daemon.store.list_incidents(check=check, limit=50) if r.opened_at >= result.fault_at
            ]
            done = [r for r in rows if r.state == "resolved"]
            if done:
                verified = any(
                    t.actor == "verifier" and t.to_state is IncidentState.RESOLVED
                    for t in self.daemon.store.transitions(done[-1].id)
                )
                result.outcome = "healed" if verified else "cleared"
                return
            if any(r.state == "escalated" for r in rows):
                result.outcome = "escalated"
                return
            time.sleep(0.1)
        result.outcome = "timeout"

    def _scenario_drift(self, result: ScenarioResult) -> None:
        write_control(self.layout, drift=DRIFT_FACTOR)
        self.emit(f"fault: pipeline input columns {', '.join(DRIFT_COLUMNS)} now x{DRIFT_FACTOR:g}")
        self._await_final(result, self._timeout(900))

    def _scenario_bad_deploy(self, result: ScenarioResult) -> None:
        from aiops.registry import FilesystemRegistry

        reg = FilesystemRegistry(self.layout.registry)
        good = reg.alias(MODEL, "champion")
        bad = reg.register(
            MODEL,
            BadModel(reg.load(MODEL, good)),
            {"parent": good, "release": "v-bad"},
            key=f"bad-release-{int(result.fault_at)}",
        )
        reg.promote(MODEL, bad, key=f"deploy-{int(result.fault_at)}", reason="a deploy")
        requests.post(f"{self.endpoints.service}/-/reload", timeout=10)
        result.extra["bad_version"] = bad
        self.emit(f"fault: a deploy promoted version {bad} (slow, wrong) over version {good}")
        self._await_final(result, self._timeout(600))
        result.extra["champion_after"] = reg.alias(MODEL, "champion")

    def _scenario_pipeline_kill(self, result: ScenarioResult) -> None:
        pid = int(self.layout.pipeline_pid.read_text().strip())
        self._kill_pipeline(pid, signal.SIGKILL)
        self.emit(f"fault: feature pipeline (pid {pid}) killed with SIGKILL")
        self._await_final(result, self._timeout(600))
        with contextlib.suppress(OSError, ValueError):
            result.extra["new_pid"] = int(self.layout.pipeline_pid.read_text().strip())

    def _scenario_flapping(self, result: ScenarioResult) -> None:
        check = CHECK_OF["flapping"]
        cycles = 0
        self.emit("fault: the service's upstream starts flapping (80 % errors on, off, on, ...)")
        for cycle in range(1, 11):
            cycles = cycle
            for rate in (0.8, 0.0):
                requests.post(f"{self.endpoints.service}/-/fault", json={"error_rate": rate}, timeout=10)
                time.sleep(3 * self.tick())
            rows = [
                r for r in self.daemon.store.list_incidents(check=check, limit=50) if r.opened_at >= result.fault_at
            ]
            escalated = any(
                t.to_state is IncidentState.ESCALATED for r in rows for t in self.daemon.store.transitions(r.id)
            )
            if escalated and len(rows) >= 4:
                break
        requests.post(f"{self.endpoints.service}/-/fault", json={"error_rate": 0.0}, timeout=10)
        self.emit(f"the upstream is stable again after {cycles} flaps")
        result.extra["flap_cycles"] = cycles
        deadline = time.monotonic() + self._timeout(300)
        while time.monotonic() < deadline:
            if not self.daemon.store.list_incidents(check=check, open_only=True, limit=5):
                break
            time.sleep(0.1)
        rows = [r for r in self.daemon.store.list_incidents(check=check, limit=50) if r.opened_at >= result.fault_at]
        escalations = sum(
            1 for r in rows for t in self.daemon.store.transitions(r.id) if t.to_state is IncidentState.ESCALATED
        )
        result.outcome = "escalated" if escalations == 1 else ("escalated" if escalations else "not escalated")
        result.extra["escalations"] = escalations

    # -- measuring -------------------------------------------------------------------------------------

    def _collect(self, result: ScenarioResult) -> None:
        store = self.daemon.store
        check = CHECK_OF[result.name]
        end = result.finished_at or time.time()
        for row in reversed(store.list_incidents(check=check, limit=100)):
            opened = row.opened_at
            if opened < result.fault_at or opened > end:
                continue
            item = {
                k: row.to_json()[k]
                for k in (
                    "id",
                    "state",
                    "summary",
                    "opened_at",
                    "resolved_at",
                    "labels",
                    "evidence",
                    "firing_at",
                    "attempts",
                )
            }
            item["transitions"] = [
                {"to_state": t.to_state.value, "actor": t.actor, "reason": t.reason, "at": t.at}
                for t in store.transitions(row.id)
            ]
            item["actions"] = [
                {
                    "id": a.id,
                    "type": a.action_type,
                    "label": a.action_label,
                    "state": a.state.value,
                    "guard": a.guard,
                    "plan": a.description,
                    "outcome": a.summary,
                    "created_at": a.created_at,
                    "finished_at": a.finished_at,
                }
                for a in reversed(store.list_actions(incident_id=row.id))
            ]
            item["guard_notes"] = list(self.guard_notes.get(row.id, []))
            item["notifications"] = [
                {"event": n.event, "state": n.state.value, "notifier": n.notifier}
                for n in store.list_notifications(incident_id=row.id)
            ]
            result.incidents.append(item)

    def collect_all(self) -> None:
        """Re-read every scenario's incidents at the end, when the last notifications have gone out."""
        deadline = time.monotonic() + 3.0
        while time.monotonic() < deadline and self.daemon.store.outbox_pending():
            time.sleep(0.1)
        for result in self.results:
            result.incidents = []
            self._collect(result)

    def summary(self) -> dict[str, Any]:
        scenarios: dict[str, Any] = {}
        for r in self.results:
            first = r.incidents[0] if r.incidents else None
            actions = [a for inc in r.incidents for a in inc["actions"]]
            executed = [a for a in actions if a["state"] in ("succeeded", "failed")]
            healed_at = None
            if first is not None and first.get("resolved_at") and r.outcome == "healed":
                healed_at = float(first["resolved_at"])
            item: dict[str, Any] = {
                "description": r.description,
                "expected": r.expected,
                "outcome": r.outcome,
                "ok": r.outcome == r.expected,
                "detected": first is not None,
                "action": executed[0]["label"] if executed else None,
                "action_outcome": executed[0]["outcome"] if executed else None,
                "actions": [
                    {"action": a["label"], "state": a["state"], "guard": a["guard"], "outcome": a["outcome"]}
                    for a in actions
                ],
                "verified": r.outcome == "healed",
                "time_to_detect": None if first is None else self.demo_seconds(float(first["opened_at"]) - r.fault_at),
                "time_to_heal": None if healed_at is None else self.demo_seconds(healed_at - r.fault_at),
                "incidents": [inc["id"] for inc in r.incidents],
            }
            if r.name == "flapping":
                escalated_at = [
                    float(t["at"]) for inc in r.incidents for t in inc["transitions"] if t["to_state"] == "escalated"
                ]
                held = [n for inc in r.incidents for n in inc["notifications"] if n["state"] == "held"]
                item.update(
                    escalations=r.extra.get("escalations", 0),
                    openings=len(r.incidents),
                    actions_executed=len(executed),
                    actions_held=[g for inc in r.incidents for g in inc["guard_notes"]],
                    flapping_notified=any(
                        n["event"] == "flapping" for inc in r.incidents for n in inc["notifications"]
                    ),
                    notifications_held=len(held),
                    time_to_escalate=self.demo_seconds(escalated_at[0] - r.fault_at) if escalated_at else None,
                )
                item["ok"] = (
                    r.outcome == "escalated"
                    and item["escalations"] == 1
                    and item["flapping_notified"]
                    and len(executed) == 1
                )
            if r.name == "drift":
                item["promoted"] = any("challenger won" in (a["outcome"] or "") for a in actions)
                item["ok"] = item["ok"] and item["promoted"]
            scenarios[r.name] = item
        return {
            "speed": self.speed,
            "wall_seconds": round(time.time() - self.started_at, 1),
            "demo_seconds": self.demo_seconds(time.time() - self.started_at),
            "champion_accuracy": self.champion_accuracy,
            "all_ok": bool(scenarios) and all(s["ok"] for s in scenarios.values()),
            "scenarios": scenarios,
            "notifications": len(self.receiver.messages),
            "notifications_signed": all(m["signature_ok"] for m in self.receiver.messages),
            "directory": str(self.layout.root),
        }

    # -- teardown --------------------------------------------------------------------------------------

    def _kill_pipeline(self, pid: int, sig: int) -> None:
        """Signal the pipeline only if that pid still is our pipeline (a pid can be recycled)."""
        import psutil

        try:
            if "aiops.demo.pipeline" not in " ".join(psutil.Process(pid).cmdline()):
                return
            os.kill(pid, sig)
        except (psutil.Error, ProcessLookupError, PermissionError):
            return
        if self._pipeline is not None and self._pipeline.pid == pid:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._pipeline.wait(5)

    def teardown(self) -> None:
        """Stop everything this run started; each step on its own, so one failure cannot leak the rest."""
        self.phase = "stopping"
        steps: list[Callable[[], None]] = []
        if self.follower is not None:
            steps.append(self.follower.stop)
        if self.sampler is not None:
            steps.append(self.sampler.stop)
        if self.daemon is not None:
            steps.append(self.daemon.shutdown)
        steps += [self._stop_pipeline, self._stop_service, self.receiver.stop]
        for step in steps:
            try:
                step()
            except Exception as exc:
                self.emit(f"teardown: {getattr(step, '__qualname__', step)} failed: {type(exc).__name__}: {exc}")
        if self._log is not None:
            self._log.close()

    def _stop_pipeline(self) -> None:
        with contextlib.suppress(OSError, ValueError):
            self._kill_pipeline(int(self.layout.pipeline_pid.read_text().strip()), signal.SIGTERM)
        if self._pipeline is not None and self._pipeline.poll() is None:
            self._pipeline.kill()

    def _stop_service(self) -> None:
        if self._service is not None and self._service.poll() is None:
            self._service.terminate()
            try:
                self._service.wait(5)
            except subprocess.TimeoutExpired:
                self._service.kill()
