"""The receiver is down for a simulated 10 minutes (connection refused, then 500s, then 429s with
Retry-After) while 200 incidents fire and resolve; the daemon's notification path is restarted in the
middle. After recovery every notification arrives exactly once per dedup key (the receiver drops the rare
at-least-once duplicate by key), in order per incident, and the signature of each verifies.

The clock is :class:`aiops.testing.FakeClock`, so the 10 minutes (and the recovery after them) run in
seconds; the HTTP traffic, the SQLite store and the signed webhook notifier are real.
"""

from __future__ import annotations

import itertools
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from aiops.config.loader import parse_config
from aiops.engine.checks import CheckResult
from aiops.engine.incidents import IncidentManager
from aiops.engine.outbox import OutboxDispatcher
from aiops.engine.runtime import build_runtime
from aiops.signing import verify
from aiops.store.store import Store
from aiops.testing import FakeClock
from aiops.types import Finding, Severity
from tests.servers import free_port

SECRET = "outage-signing-secret-0123"
INCIDENTS = 200
OUTAGE = 600.0  # seconds of simulated time
RETRY_AFTER = 45


class FlakyReceiver:
    """A receiver on a fixed port that can be absent (connection refused), answer 500, answer 429 with
    Retry-After, or accept. It deduplicates by ``X-Aiops-Dedup-Key`` like a real consumer should."""

    def __init__(self, port: int, clock: FakeClock) -> None:
        self.port = port
        self.clock = clock
        self.mode = "down"
        self.lock = threading.Lock()
        self.first_seen: dict[str, dict[str, Any]] = {}  # dedup key -> first accepted body
        self.accepted_order: list[str] = []
        self.duplicates = 0
        self.answers: list[tuple[float, int]] = []  # (fake time, status) of every request
        self.bad_signatures = 0
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                status, headers = receiver.answer(self.headers, body)
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def answer(self, headers: Any, body: bytes) -> tuple[int, dict[str, str]]:
        with self.lock:
            now = self.clock.now()
            if self.mode == "500":
                self.answers.append((now, 500))
                return 500, {}
            if self.mode == "429":
                self.answers.append((now, 429))
                return 429, {"Retry-After": str(RETRY_AFTER)}
            self.answers.append((now, 200))
            if not verify(
                SECRET.encode(),
                body,
                headers.get("X-Aiops-Signature"),
                now=float(headers.get("X-Aiops-Signature", "t=0").split(",")[0][2:]),
            ):
                self.bad_signatures += 1
            key = headers.get("X-Aiops-Dedup-Key")
            if key in self.first_seen:
                self.duplicates += 1
            else:
                self.first_seen[key] = json.loads(body)
                self.accepted_order.append(key)
            return 200, {}


class Daemon:
    """The notification path of a daemon: incident manager + outbox dispatcher on its own Store object."""

    def __init__(self, db: Path, config_text: str, clock: FakeClock) -> None:
        self.config = parse_config(config_text, "outage.yaml", env={})
        self.runtime = build_runtime(self.config)
        self.store = Store(f"sqlite:///{db}")
        self.store.migrate()
        self.incidents = IncidentManager(self.store, lambda: self.runtime, clock.now)
        self.outbox = OutboxDispatcher(self.store, lambda: self.runtime, clock.now, max_backoff=30.0)

    def close(self) -> None:
        self.store.close()


def finding(model: int) -> Finding:
    return Finding(
        kind="threshold",
        detector="threshold",
        summary=f"model m{model:03d} error rate high",
        severity=Severity.CRITICAL,
        labels={"model": f"m{model:03d}"},
        evidence={"value": 0.3},
    )


def test_outage_restart_and_recovery_lose_nothing_and_repeat_nothing(tmp_path: Path) -> None:
    clock = FakeClock()
    port = free_port()
    receiver = FlakyReceiver(port, clock)
    config = f"""
notifiers:
  hook: {{type: webhook, url: "http://127.0.0.1:{port}/hook", secret: "{SECRET}", timeout: 2s}}
checks:
  - name: fleet
    every: 10s
    source: {{type: file, path: "{tmp_path}/unused.jsonl"}}
    detectors: [{{type: threshold, above: 1}}]
    policy: {{notify: [hook]}}
"""
    daemon = Daemon(tmp_path / "aiops.db", config, clock)
    start = clock.now()
    opened = {i: start + i * 2.5 for i in range(INCIDENTS)}  # one new incident every 2.5 s for 500 s
    lasts = 40.0  # each is bad for 40 s, then healthy again: it resolves
    restarted = False
    pending_at_restart = 0
    try:
        step = 0
        while clock.now() - start < OUTAGE:
            clock.advance(1.0)
            step += 1
            t = clock.now() - start
            receiver.mode = "down" if t < 200 else "500" if t < 400 else "429"
            if receiver.mode != "down" and receiver._server is None:
                receiver.start()
            if step % 10 == 0:  # the check runs every 10 s
                bad = [finding(i) for i, at in opened.items() if at <= clock.now() < at + lasts]
                daemon.incidents.observe(CheckResult(check="fleet", outcome="ok", findings=bad, healthy_data=True))
            daemon.outbox.tick()
            if t >= 300 and not restarted:  # restart in the middle of the outage: a fresh Store object
                pending_at_restart = daemon.store.outbox_pending()
                daemon.close()
                daemon = Daemon(tmp_path / "aiops.db", config, clock)
                restarted = True
                assert daemon.store.outbox_pending() == pending_at_restart
        # let the last incidents resolve (the check keeps running) and the receiver recover
        assert receiver.first_seen == {}, "nothing may be accepted during the outage"
        receiver.mode = "up"
        for _ in range(900):
            clock.advance(1.0)
            step += 1
            if step % 10 == 0:
                daemon.incidents.observe(CheckResult(check="fleet", outcome="ok", findings=[], healthy_data=True))
            daemon.outbox.tick()
            if daemon.store.outbox_pending() == 0 and len(receiver.first_seen) >= 2 * INCIDENTS:
                break
    finally:
        receiver.stop()
    store = daemon.store
    incidents = store.list_incidents(limit=1000)
    assert len(incidents) == INCIDENTS and all(i.state == "resolved" for i in incidents)
    rows = store.list_notifications(limit=10_000)
    assert len(rows) == 2 * INCIDENTS and {r.state for r in rows} == {"sent"}
    expected = {r.dedup_key for r in rows}
    assert set(receiver.first_seen) == expected  # every notification arrived ...
    assert len(receiver.accepted_order) == len(expected)  # ... exactly once per dedup key
    assert receiver.bad_signatures == 0
    # in order per incident: its firing before its resolve
    position = {key: i for i, key in enumerate(receiver.accepted_order)}
    for inc in incidents:
        prefix = f"{inc.fingerprint}:{inc.id}:"
        assert position[prefix + "firing"] < position[prefix + "resolved"]
    # the outage really was each kind of failure, and Retry-After was honoured
    statuses = [s for _, s in receiver.answers]
    assert 500 in statuses and 429 in statuses
    times_429 = [t for t, s in receiver.answers if s == 429]
    assert all(b - a >= RETRY_AFTER for a, b in itertools.pairwise(times_429))
    assert min(t for t, _ in receiver.answers) - start >= 200  # before that the port was closed ...
    assert sum(r.attempts for r in rows) > len(receiver.answers)  # ... and attempts were refused
    assert restarted and pending_at_restart > 0
