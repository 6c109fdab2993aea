"""A real Alertmanager receives aiops's alerts: firing via its API, re-posted while firing, resolved with
``endsAt``, and forwarded by Alertmanager's own routing to a local webhook."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import requests

from aiops.config.loader import parse_config
from aiops.engine.messages import build_message
from aiops.engine.outbox import OutboxDispatcher
from aiops.engine.routing import enqueue_message
from aiops.engine.runtime import build_runtime
from aiops.messages import message_to_payload
from aiops.plugins import NOTIFIERS, build
from aiops.store.store import Store
from aiops.testing import FakeClock
from tests.servers import WebhookReceiver

pytestmark = pytest.mark.servers

# postableAlerts from Alertmanager's OpenAPI spec (api/v2/openapi.yaml)
POSTABLE_ALERTS = {
    "type": "array",
    "items": {
        "type": "object",
        "required": ["labels"],
        "properties": {
            "labels": {
                "type": "object",
                "additionalProperties": {"type": "string"},
                "minProperties": 1,
                "propertyNames": {"pattern": "^[a-zA-Z_][a-zA-Z0-9_]*$"},
            },
            "annotations": {"type": "object", "additionalProperties": {"type": "string"}},
            "startsAt": {"type": "string", "format": "date-time"},
            "endsAt": {"type": "string", "format": "date-time"},
            "generatorURL": {"type": "string", "format": "uri"},
        },
        "additionalProperties": False,
    },
}

AM_CONFIG = """
route:
  receiver: hook
  group_by: [alertname, aiops_incident]
  group_wait: 100ms
  group_interval: 1s
  repeat_interval: 1h
receivers:
  - name: hook
    webhook_configs:
      - url: "{url}/am"
        send_resolved: true
"""


def incident_row() -> dict[str, Any]:
    now = time.time()
    return {
        "id": 7,
        "fingerprint": "fpam0123456789abcdef0123",
        "check_name": "model-latency",
        "state": "firing",
        "severity": "critical",
        "summary": "p95 latency 512 ms is above 100 ms",
        "labels": {"model.name": "ranker", "env": "prod"},
        "opened_at": now - 30,
        "evidence": {"findings": [{"detector": "threshold", "evidence": {"value": 512.0, "upper": 100.0}}]},
        "attempts": 0,
        "rung": 0,
    }


def am_alerts(url: str) -> list[dict[str, Any]]:
    r = requests.get(f"{url}/api/v2/alerts", params={"filter": "alertname=model-latency"}, timeout=5)
    r.raise_for_status()
    result: list[dict[str, Any]] = r.json()
    return result


def wait_for(predicate: Any, timeout: float = 15.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError("condition not met in time")


def test_real_alertmanager_shows_firing_then_resolved(
    alertmanager_factory: Any, webhook_receiver: WebhookReceiver, tmp_path: Path
) -> None:
    _proc, am_url = alertmanager_factory(AM_CONFIG.format(url=webhook_receiver.url))
    config = parse_config(
        f'notifiers:\n  am: {{type: alertmanager, url: "{am_url}", resend_interval: 60s}}\n', "t.yaml", env={}
    )
    runtime = build_runtime(config)
    store = Store(f"sqlite:///{tmp_path}/aiops.db")
    store.migrate()
    clock = FakeClock(time.time())
    outbox = OutboxDispatcher(store, lambda: runtime, clock.now)
    row = store.create_incident(
        {
            **{k: v for k, v in incident_row().items() if k != "id"},
            "kind": "detector:threshold",
            "updated_at": clock.now(),
            "last_seen_at": clock.now(),
            "healthy_ticks": 0,
            "notified_firing": True,
        },
        actor="test",
        reason="test",
    )
    notifier = runtime.notifiers["am"]

    def enqueue(event: str) -> None:
        msg = build_message(
            event,
            row,
            f"{event}!",
            dedup_key=f"{row.fingerprint}:{row.id}:{event}",
            external_url="https://aiops.example.com",
        )
        jsonschema.validate(notifier.render(msg), POSTABLE_ALERTS, format_checker=jsonschema.FormatChecker())
        enqueue_message(store, config.settings, ["am"], row, msg, message_to_payload(msg), clock.now())

    enqueue("firing")
    assert outbox.tick() == 1
    [alert] = wait_for(lambda: am_alerts(am_url))
    assert alert["status"]["state"] == "active"
    assert alert["labels"]["alertname"] == "model-latency" and alert["labels"]["model_name"] == "ranker"
    assert alert["labels"]["aiops_incident"] == str(row.id) and alert["labels"]["severity"] == "critical"
    assert alert["annotations"]["summary"].startswith("p95 latency")
    assert alert["generatorURL"] == f"https://aiops.example.com/api/v1/incidents/{row.id}"
    first_ends = alert["endsAt"]

    # Alertmanager's own routing forwards it to a webhook
    forwarded = wait_for(lambda: [r.json for r in webhook_receiver.requests if r.json["status"] == "firing"])
    assert forwarded[0]["alerts"][0]["labels"]["aiops_incident"] == str(row.id)

    # while firing, the outbox re-posts every resend_interval, pushing endsAt forward
    clock.advance(61)
    time.sleep(1.1)  # endsAt is computed from the wall clock
    assert outbox.tick() == 1
    [again] = wait_for(lambda: [a for a in am_alerts(am_url) if a["endsAt"] != first_ends])
    assert again["status"]["state"] == "active" and again["endsAt"] > first_ends
    assert store.list_notifications()[-1].dedup_key.endswith(":repeat-1")

    # resolved: endsAt = now, Alertmanager stops showing it active and forwards a resolved notification
    row = store.update_incident(
        row.id, {"resolved_at": clock.now()}, transition=("resolved", "test", "healthy", {}), now=clock.now()
    )
    enqueue("resolved")
    clock.advance(1)
    assert outbox.tick() == 1
    wait_for(lambda: not [a for a in am_alerts(am_url) if a["status"]["state"] == "active"])
    resolved = wait_for(lambda: [r.json for r in webhook_receiver.requests if r.json["status"] == "resolved"])
    assert resolved[0]["alerts"][0]["labels"]["alertname"] == "model-latency"
    # no more repeats once resolved
    clock.advance(600)
    assert outbox.tick() == 0


def test_alertmanager_rejecting_an_alert_is_final(alertmanager_factory: Any, webhook_receiver: WebhookReceiver) -> None:
    from aiops.errors import DeliveryError
    from aiops.types import IncidentState, IncidentView, Message, Severity

    _proc, am_url = alertmanager_factory(AM_CONFIG.format(url=webhook_receiver.url))
    notifier = build(NOTIFIERS, "alertmanager", {"url": am_url})
    inc = IncidentView(1, "fp", "x", IncidentState.FIRING, Severity.WARNING, "s", {}, time.time())
    bad = Message("firing", inc, "t", "x", "k")
    original = notifier.alert

    def broken(message: Message, now: float) -> dict[str, Any]:
        alert = original(message, now)
        alert["labels"] = {}  # Alertmanager requires at least one label
        return alert

    notifier.alert = broken
    with pytest.raises(DeliveryError) as info:
        notifier.send(bad)
    assert info.value.recoverable is False and info.value.reason == "http_400"
