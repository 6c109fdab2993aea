"""Real daemons sharing one real PostgreSQL store with short check leases, polling a local JSON endpoint that
records which replica asked for which check (for the lease takeover and zombie tests)."""

from __future__ import annotations

import json
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import requests
import sqlalchemy as sa

from tests.e2e.daemon import DaemonProcess

LEASE = 3.0  # seconds; short, so a takeover shows within a test's budget
EVERY = 1.0  # every check's interval

CONFIG = """
store: {{url: "{url}"}}
state_dir: {state}
state: {{checkpoint: 0s}}
cluster: {{lease: {lease}s}}
flapping: {{enabled: false}}  # a check broken round after round would be held as flapping: its messages must go out
notifiers:
  hook: {{type: webhook, url: "{hook}"}}
checks:
{checks}
"""

# The remediation: waits (so a replica can be killed while it runs), logs its idempotency key, then heals the
# check at the source. Its status files live in the replicas' shared state_dir, so a survivor adopting the
# action of a killed replica reads its outcome from there instead of running it again.
HEAL = """
import os, sys, time, urllib.request
source, check, delay, log = sys.argv[1], sys.argv[2], float(sys.argv[3]), sys.argv[4]
time.sleep(delay)
with open(log, "a") as out:
    out.write(os.environ["AIOPS_IDEMPOTENCY_KEY"] + "\\n")
urllib.request.urlopen(urllib.request.Request(f"{source}/heal/{check}", method="POST"), timeout=5).read()
"""
ACTION_DELAY = 1.5  # seconds the remediation runs

CHECK = """  - name: {name}
    every: {every}s
    timeout: 30s
    source:
      type: http
      url: "{source}/{name}"
      metrics: {{value: "$.value"}}
      headers: {{X-Replica: "{replica}"}}
    detectors: [{{type: threshold, above: 500}}]
    policy:
      cooldown: 0s
      verify: {{settle: 0s, window: 30s}}
      notify: [hook]
      actions:
        - type: command
          argv: ["{python}", "{heal}", "{source}", "{name}", "{delay}", "{log}"]
          timeout: 30s
"""


@dataclass(frozen=True)
class Poll:
    """One request of a check's source: which check, which replica (by its config name), when."""

    check: str
    replica: str
    at: float


class CheckSource:
    """The checks' JSON endpoint: answers ``{"value": 1}`` (healthy) and records every poll. :meth:`trap` holds
    the next poll of one check by one replica until :meth:`spring`, then answers an anomaly (``1000``);
    :meth:`break_check` makes a check answer ``1000`` to everyone until the remediation POSTs ``/heal/CHECK``."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.polls: list[Poll] = []
        self.broken: set[str] = set()
        self._trap: tuple[str, str] | None = None
        self.caught = threading.Event()
        self._release = threading.Event()
        source = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                with source._lock:
                    source.broken.discard(self.path.removeprefix("/heal/"))
                self.send_response(204)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def do_GET(self) -> None:
                check, replica = self.path.strip("/"), self.headers.get("X-Replica", "")
                value = 1000.0 if source._hold(check, replica) or check in source.broken else 1.0
                payload = json.dumps({"value": value}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._server.block_on_close = False
        threading.Thread(target=self._server.serve_forever, name="check-source", daemon=True).start()

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def _hold(self, check: str, replica: str) -> bool:
        with self._lock:
            self.polls.append(Poll(check, replica, time.time()))
            trapped = self._trap == (check, replica)
            if trapped:
                self._trap = None
        if trapped:
            self.caught.set()
            self._release.wait(60)
        return trapped

    def break_check(self, check: str) -> None:
        with self._lock:
            self.broken.add(check)

    def trap(self, check: str, replica: str) -> None:
        with self._lock:
            self._trap = (check, replica)

    def spring(self) -> None:
        self._release.set()

    def polled(self, check: str, *, by_other_than: str, after: float) -> float | None:
        """When ``check`` was first polled after ``after`` by a replica other than ``by_other_than``."""
        with self._lock:
            return next(
                (p.at for p in self.polls if p.check == check and p.replica != by_other_than and p.at > after), None
            )

    def pollers(self, *, after: float) -> dict[str, set[str]]:
        """check -> the replicas that polled it after ``after``."""
        out: dict[str, set[str]] = {}
        with self._lock:
            for p in self.polls:
                if p.at > after:
                    out.setdefault(p.check, set()).add(p.replica)
        return out

    def close(self) -> None:
        self._release.set()
        self._server.shutdown()
        self._server.server_close()


class Replica:
    """A daemon process plus the name its polls carry."""

    def __init__(self, name: str, daemon: DaemonProcess) -> None:
        self.name = name
        self.daemon = daemon

    def cluster(self) -> dict[str, Any]:
        answer = requests.get(f"{self.daemon.url}/api/v1/cluster", timeout=5)
        answer.raise_for_status()
        body: dict[str, Any] = answer.json()
        return body

    def owned(self) -> list[str]:
        return list(self.cluster()["owned"])


def replica(tmp_path: Path, name: str, url: str, source: str, checks: list[str], hook: str) -> Replica:
    """A replica's daemon (not started); its remediations log their keys to ``tmp_path/executions.log``."""
    work = tmp_path / name
    work.mkdir(exist_ok=True)
    heal = tmp_path / "heal.py"
    heal.write_text(HEAL)
    blocks = "".join(
        CHECK.format(
            name=c,
            every=EVERY,
            source=source,
            replica=name,
            python=sys.executable,
            heal=heal,
            delay=ACTION_DELAY,
            log=tmp_path / "executions.log",
        )
        for c in checks
    )
    config = work / "aiops.yaml"
    config.write_text(CONFIG.format(url=url, state=tmp_path / "state", lease=LEASE, hook=hook, checks=blocks))
    return Replica(name, DaemonProcess(config, work))


@contextmanager
def engine(url: str) -> Iterator[sa.Engine]:
    e = sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
    try:
        yield e
    finally:
        e.dispose()


def lease_rows(url: str) -> dict[str, tuple[str | None, int, float]]:
    """check -> (owner, token, expires_at), read from the store."""
    with engine(url) as e, e.connect() as conn:
        rows = conn.execute(sa.text("SELECT name, owner, token, expires_at FROM aiops_leases WHERE kind = 'check'"))
        return {str(r.name): (r.owner, int(r.token), float(r.expires_at)) for r in rows}
