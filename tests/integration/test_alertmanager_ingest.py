"""A real Alertmanager sends its webhook to a real daemon (in process, real HTTP, real store): an alert posted
to Alertmanager opens an aiops incident carrying the alert's labels, and resolving it resolves the incident."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import requests

from aiops.config.loader import load_config
from aiops.daemon import Daemon
from tests.servers import free_port

pytestmark = pytest.mark.servers

TOKEN = "am-t0ken-xyz"

CONFIG = """
store: {{url: "sqlite:///{work}/aiops.db"}}
state_dir: {work}/state
server: {{listen: "127.0.0.1:{port}", token: "{token}"}}
checks:
  - name: prom-alerts
    every: 0.3s
    source: {{type: alertmanager, matchers: ['alertname=~"ModelLatency.*"']}}
    detectors: [{{type: alert}}]
    policy: {{cooldown: 0s}}
"""

AM_CONFIG = """
route:
  receiver: aiops
  group_by: [alertname, instance]
  group_wait: 0s
  group_interval: 1s
  repeat_interval: 1h
receivers:
  - name: aiops
    webhook_configs:
      - url: "{url}/api/v1/alertmanager"
        send_resolved: true
        http_config:
          authorization: {{type: Bearer, credentials: "{token}"}}
"""


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _wait(predicate: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


@pytest.fixture
def daemon(tmp_path: Path) -> Iterator[Daemon]:
    port = free_port()
    path = tmp_path / "aiops.yaml"
    path.write_text(CONFIG.format(work=tmp_path, port=port, token=TOKEN))
    d = Daemon(load_config(path))
    d.start()
    try:
        yield d
    finally:
        d.shutdown()


def test_alert_through_real_alertmanager_opens_and_resolves_an_incident(
    daemon: Daemon, alertmanager_factory: Callable[[str], tuple[Any, str]]
) -> None:
    assert daemon._server is not None
    api = daemon._server.url
    _, am = alertmanager_factory(AM_CONFIG.format(url=api, token=TOKEN))
    labels = {"alertname": "ModelLatencyHigh", "severity": "critical", "instance": "model-1", "job": "serving"}
    alert = {"labels": labels, "annotations": {"summary": "p99 above 2s"}, "startsAt": _iso(time.time() - 30)}
    other = {"labels": {"alertname": "DiskFull", "instance": "db"}, "startsAt": _iso(time.time())}
    r = requests.post(f"{am}/api/v2/alerts", json=[alert, other], timeout=5)
    assert r.status_code == 200, r.text

    def incidents() -> list[dict[str, Any]]:
        return requests.get(f"{api}/api/v1/incidents", timeout=5).json()["incidents"]

    opened = _wait(lambda: [i for i in incidents() if i["state"] == "firing"], 20, "an incident from the alert")
    assert len(opened) == 1  # DiskFull does not match the source's matchers
    inc = opened[0]
    assert inc["check_name"] == "prom-alerts"
    assert inc["labels"] == labels
    assert inc["severity"] == "critical"
    assert "p99 above 2s" in inc["summary"]

    # Resolve it in Alertmanager (endsAt in the past): the resolved webhook heals the incident.
    resolved = {**alert, "endsAt": _iso(time.time() - 1)}
    assert requests.post(f"{am}/api/v2/alerts", json=[resolved], timeout=5).status_code == 200
    _wait(
        lambda: [i for i in incidents() if i["id"] == inc["id"] and i["state"] == "resolved"],
        20,
        "the incident to resolve after the alert resolved",
    )


def test_webhook_needs_the_token_and_a_valid_payload(daemon: Daemon) -> None:
    assert daemon._server is not None
    url = f"{daemon._server.url}/api/v1/alertmanager"
    assert requests.post(url, json={"version": "4", "alerts": []}, timeout=5).status_code == 401
    auth = {"Authorization": f"Bearer {TOKEN}"}
    r = requests.post(url, json={"version": "3", "alerts": []}, headers=auth, timeout=5)
    assert r.status_code == 400 and "version 4" in r.json()["error"]
    r = requests.post(url, json={"version": "4", "alerts": [{"status": "firing"}]}, headers=auth, timeout=5)
    assert r.status_code == 400 and r.json()["error"].startswith("alerts.0.labels")
