"""systemd's notify protocol with the daemon as a process: READY=1 once the API answers, RELOADING=1 then
READY=1 around a SIGHUP reload, STOPPING=1 on SIGTERM, and exit 0 within 10 s."""

from __future__ import annotations

import signal
import socket
import time
from pathlib import Path

import pytest
import requests

from tests.e2e.daemon import DaemonProcess

CONFIG = """
store: {{url: "sqlite:///{work}/aiops.db"}}
state_dir: {work}/state
checks:
  - name: host
    every: 5s
    source: {{type: host, metrics: [host_cpu_percent]}}
    detectors: [{{type: threshold, above: 1000}}]
"""


def _next_state(sock: socket.socket) -> str:
    return sock.recv(256).decode()


def test_ready_reloading_and_stopping_are_notified(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    notify_path = tmp_path / "notify.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(str(notify_path))
        sock.settimeout(30)
        monkeypatch.setenv("NOTIFY_SOCKET", str(notify_path))
        config = tmp_path / "aiops.yaml"
        config.write_text(CONFIG.format(work=tmp_path))
        daemon = DaemonProcess(config, tmp_path).start(wait_ready=False)
        try:
            assert _next_state(sock) == "READY=1", daemon.logs()
            assert requests.get(f"{daemon.url}/livez", timeout=5).text == "ok"  # READY means the API answers
            assert daemon.proc is not None
            daemon.proc.send_signal(signal.SIGHUP)
            assert [_next_state(sock), _next_state(sock)] == ["RELOADING=1", "READY=1"]
            started = time.monotonic()
            assert daemon.terminate(timeout=10) == 0
            assert time.monotonic() - started < 10
            assert _next_state(sock) == "STOPPING=1"
        finally:
            if daemon.proc and daemon.proc.poll() is None:
                daemon.kill()
