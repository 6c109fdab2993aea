"""Run the real daemon as a subprocess for end-to-end tests, and talk to it like a user would."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import requests

from tests.servers import free_port


class DaemonProcess:
    def __init__(self, config_path: Path, workdir: Path, port: int | None = None) -> None:
        self.config_path = config_path
        self.workdir = workdir
        self.port = port or free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = workdir / "daemon.log"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, wait_ready: bool = True, extra_env: dict[str, str] | None = None) -> DaemonProcess:
        env = {**os.environ, "AIOPS_LOG_JSON": "1", **(extra_env or {})}
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "aiops",
                "run",
                "--config",
                str(self.config_path),
                "--listen",
                f"127.0.0.1:{self.port}",
            ],
            cwd=self.workdir,
            env=env,
            stdout=log,
            stderr=log,
            start_new_session=True,
        )
        if wait_ready:
            self.wait_ready()
        return self

    def wait_ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise AssertionError(f"daemon exited with {self.proc.returncode}:\n{self.logs()}")
            try:
                if requests.get(f"{self.url}/readyz", timeout=1).status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.1)
        raise AssertionError(f"daemon not ready within {timeout}s:\n{self.logs()}")

    def logs(self) -> str:
        return self.log_path.read_text(errors="replace")[-6000:] if self.log_path.exists() else ""

    def terminate(self, timeout: float = 10.0) -> int:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=timeout)

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "aiops", *args, "--config", str(self.config_path)],
            cwd=self.workdir,
            capture_output=True,
            text=True,
            timeout=60,
        )

    def incidents(self) -> list[dict[str, Any]]:
        """``aiops incidents --json``, as a user runs it: a new process (about a second of CPU) per call."""
        out = self.cli("incidents", "--json")
        assert out.returncode == 0, out.stderr
        return list(json.loads(out.stdout))

    def api_incidents(self) -> list[dict[str, Any]]:
        """``GET /api/v1/incidents`` (newest first; [] while the daemon does not answer): what to poll, a call
        costs milliseconds where :meth:`incidents` starts a Python process."""
        try:
            resp = requests.get(f"{self.url}/api/v1/incidents", timeout=2)
        except requests.RequestException:
            return []
        return list(resp.json()["incidents"]) if resp.status_code == 200 else []

    def api_resolved(self) -> list[dict[str, Any]]:
        """The resolved incidents, newest first, each with its transitions and actions as :meth:`incidents`
        lists them, read through the API: for polling until an incident resolves."""
        return [self.api_incident(i["id"]) for i in self.api_incidents() if i["state"] == "resolved"]

    def api_incident(self, incident_id: int) -> dict[str, Any]:
        """``GET /api/v1/incidents/ID``: the incident with its transitions, actions and notifications."""
        resp = requests.get(f"{self.url}/api/v1/incidents/{incident_id}", timeout=5)
        assert resp.status_code == 200, resp.text
        return dict(resp.json())


def wait_for(predicate: Any, timeout: float, what: str, logs: Any = None) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    extra = f"\n--- daemon log ---\n{logs()}" if logs else ""
    raise AssertionError(f"timed out after {timeout}s waiting for {what}{extra}")
