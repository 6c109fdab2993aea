"""Alertmanager notifier: posts aiops incidents as alerts to ``/api/v2/alerts``."""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime
from typing import Any, ClassVar

from pydantic import BaseModel, Field

from aiops.durations import Duration
from aiops.notifiers._http import HttpNotifier, HttpParams, truncate
from aiops.types import Delivery, Message

_LABEL_NAME = re.compile(r"[^A-Za-z0-9_]")


def label_name(name: str) -> str:
    """A valid Prometheus label name: invalid characters become ``_``, a leading digit gets a ``_``.

    >>> label_name("model.version"), label_name("9lives")
    ('model_version', '_9lives')
    """
    out = _LABEL_NAME.sub("_", name) or "_"
    return f"_{out}" if out[0].isdigit() else out


def iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class AlertmanagerParams(HttpParams):
    url: str = Field(description="Alertmanager base URL, e.g. http://alertmanager:9093")
    resend_interval: Duration = Field(60.0, gt=0, description="re-post a firing alert this often")
    ttl: Duration = Field(0.0, ge=0, description="endsAt of a firing alert: now + ttl (default 4 x resend_interval)")
    headers: dict[str, str] = Field(default_factory=dict, description="extra headers, e.g. Authorization")
    extra_labels: dict[str, str] = Field(default_factory=dict, description="labels added to every alert")


class AlertmanagerNotifier(HttpNotifier):
    """Posts incidents as alerts to Alertmanager's ``/api/v2/alerts``, to reuse its routing and silences.

    Teams that already run Alertmanager keep their routing tree, silences and inhibition rules.

    Why re-post while firing: Alertmanager resolves an alert whose ``endsAt`` passed, so a firing alert
    carries ``endsAt = now + ttl`` and is re-posted every ``resend_interval`` (the outbox's repeat stage does
    it); the resolve message posts the same labels with ``endsAt`` = now. Labels identify the alert:
    ``alertname`` (the check), ``severity``, ``aiops_incident``, ``aiops_fingerprint`` and the incident's own
    labels.
    """

    Params: ClassVar[type[BaseModel]] = AlertmanagerParams

    @classmethod
    def test_params(cls) -> list[dict[str, Any]]:
        return [{"url": "http://127.0.0.1:9093"}]

    kind = "alertmanager"

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        self.resend_interval = float(self.params.resend_interval)
        self.api = self.params.url.rstrip("/") + "/api/v2/alerts"

    def secrets(self) -> list[str]:
        return super().secrets() + list(self.params.headers.values())

    def alert(self, message: Message, now: float) -> dict[str, Any]:
        inc = message.incident
        labels = {label_name(k): str(v) for k, v in inc.labels.items()}
        labels.update({label_name(k): v for k, v in self.params.extra_labels.items()})
        labels.update(
            {
                "alertname": inc.check,
                "severity": str(inc.severity),
                "aiops_incident": str(inc.id),
                "aiops_fingerprint": inc.fingerprint,
            }
        )
        ttl = self.params.ttl or 4 * self.resend_interval
        resolved = message.event == "resolved"
        alert: dict[str, Any] = {
            "labels": labels,
            "annotations": {
                "summary": truncate(inc.summary, 1000),
                "description": truncate(message.text, 4000),
                "aiops_event": message.event,
                "aiops_state": str(inc.state),
            },
            "startsAt": iso(inc.opened_at),
            "endsAt": iso(now if resolved else now + ttl),
        }
        evidence = message.details.get("evidence")
        if evidence:
            alert["annotations"]["evidence"] = truncate("\n".join(str(x) for x in evidence), 4000)
        if "incident" in message.links:
            alert["generatorURL"] = message.links["incident"]
        return alert

    def render(self, message: Message, now: float | None = None) -> list[dict[str, Any]]:
        from aiops.messages import payload_to_message

        when = time.time() if now is None else now
        members = [payload_to_message(m) for m in message.details.get("group") or []] or [message]
        return [self.alert(m, when) for m in members]

    def send(self, message: Message) -> Delivery:
        return self.post_json(self.api, self.render(message), message=message, headers=self.params.headers)
