"""Real daemons sharing one real PostgreSQL store with short check leases, polling a local JSON endpoint that
records which replica asked for which check (for the lease takeover and zombie tests)."""

from __future__ import annotations

import json
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
state_dir: {work}/state
state: {{checkpoint: 0s}}
cluster: {{lease: {lease}s}}
checks:
{checks}
"""

CHECK = """  - name: {name}
    every: {every}s
    timeout: 30s
    source:
      type: http
      url: "{source}/{name}"
      metrics: {{value: "$.value"}}
      headers: {{X-Replica: "{replica}"}}
    detectors: [{{type: threshold, above: 500}}]
"""


@dataclass(frozen=True)
class Poll:
    """One request of a check's source: which check, which replica (by its config name), when."""

    check: str
    replica: str
    at: float


class CheckSource:
    """The checks' JSON endpoint: answers ``{"value": 1}`` (healthy) and records every poll. :meth:`trap` holds
    the next poll of one check by one replica until :meth:`spring`, then answers an anomaly (``1000``)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.polls: list[Poll] = []
        self._trap: tuple[str, str] | None = None
        self.caught = threading.Event()
        self._release = threading.Event()
        source = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                check, replica = self.path.strip("/"), self.headers.get("X-Replica", "")
                value = 1000.0 if source._hold(check, replica) else 1.0
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


def replica(tmp_path: Path, name: str, url: str, source: str, checks: list[str]) -> Replica:
    work = tmp_path / name
    work.mkdir(exist_ok=True)
    config = work / "aiops.yaml"
    blocks = "".join(CHECK.format(name=c, every=EVERY, source=source, replica=name) for c in checks)
    config.write_text(CONFIG.format(url=url, work=work, lease=LEASE, checks=blocks))
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
