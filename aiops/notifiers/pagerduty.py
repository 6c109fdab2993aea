"""PagerDuty Events API v2 notifier: trigger, acknowledge and resolve under one stable dedup key."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, ClassVar

from pydantic import BaseModel, Field, field_validator, model_validator

from aiops.errors import AiopsError, DeliveryError
from aiops.notifiers._http import HttpNotifier, HttpParams, facts, truncate
from aiops.signing import load_secret
from aiops.types import Delivery, Message

EVENTS_URL = "https://events.pagerduty.com/v2/enqueue"
SUMMARY_MAX = 1024
DEDUP_MAX = 255
PD_SEVERITIES = ("critical", "error", "warning", "info")
#: aiops event -> PagerDuty event_action
ACTIONS = {"resolved": "resolve", "acknowledged": "acknowledge"}


class PagerDutyParams(HttpParams):
    url: str = Field(EVENTS_URL, description="Events API v2 endpoint (change only for a proxy or a test)")
    routing_key: str | None = Field(None, description="integration key of an Events API v2 integration (a secret)")
    routing_key_file: str | None = Field(None, description="file holding the routing key")
    severity_map: dict[str, str] = Field(
        default_factory=lambda: {"critical": "critical", "warning": "warning", "info": "info"},
        description="aiops severity -> PagerDuty severity (critical, error, warning, info)",
    )
    escalated_severity: str = Field("critical", description="PagerDuty severity once aiops escalates to a person")
    source: str | None = Field(None, description="payload.source (default: the incident's host/instance or check)")

    @field_validator("severity_map")
    @classmethod
    def _map(cls, value: dict[str, str]) -> dict[str, str]:
        bad = sorted(v for v in value.values() if v not in PD_SEVERITIES)
        if bad:
            raise ValueError(f"PagerDuty severities are {', '.join(PD_SEVERITIES)}, not {', '.join(bad)}")
        return value

    @model_validator(mode="after")
    def _key(self) -> PagerDutyParams:
        if bool(self.routing_key) == bool(self.routing_key_file):
            raise ValueError("set exactly one of routing_key or routing_key_file")
        return self


def dedup_key(message: Message) -> str:
    """One PagerDuty alert per aiops incident: every trigger, acknowledge and resolve of it uses this key.

    >>> from aiops.types import IncidentView, IncidentState, Severity
    >>> inc = IncidentView(7, "abc123", "latency", IncidentState.FIRING, Severity.WARNING, "s", {}, 0.0)
    >>> dedup_key(Message("firing", inc, "t", "x", "abc123:7:firing"))
    'aiops/abc123/7'
    """
    return f"aiops/{message.incident.fingerprint}/{message.incident.id}"[:DEDUP_MAX]


class PagerDutyNotifier(HttpNotifier):
    """PagerDuty Events API v2: trigger, acknowledge and resolve under one stable ``dedup_key`` per incident.

    ``trigger`` while firing (re-sent triggers update the same alert), ``acknowledge`` when a person took
    it, ``resolve`` when healthy.

    Why one key per incident (not per message): PagerDuty deduplicates by it, so repeats and retries update
    one alert instead of paging again, and the resolve closes exactly the alert the trigger opened. 202 is
    accepted; 400 (invalid event) is final; 429 and 5xx are retried.
    """

    Params: ClassVar[type[BaseModel]] = PagerDutyParams

    @classmethod
    def test_params(cls) -> list[dict[str, Any]]:
        return [{"routing_key": "R0UT1NGKEY"}]

    kind = "pagerduty"

    def secrets(self) -> list[str]:
        out = super().secrets()
        if self.params.routing_key:
            out.append(self.params.routing_key)
        return out

    def _routing_key(self) -> str:
        try:
            key = load_secret(self.params.routing_key, self.params.routing_key_file)
        except AiopsError as exc:
            raise DeliveryError(str(exc), recoverable=False, reason="secret_file") from None
        assert key is not None
        return key.decode()

    def severity(self, message: Message) -> str:
        if message.event == "escalated":
            return self.params.escalated_severity if self.params.escalated_severity in PD_SEVERITIES else "critical"
        mapped = self.params.severity_map.get(str(message.incident.severity), "warning")
        return str(mapped)

    def render(self, message: Message, routing_key: str = "") -> dict[str, Any]:
        inc = message.incident
        action = ACTIONS.get(message.event, "trigger")
        doc: dict[str, Any] = {"routing_key": routing_key, "event_action": action, "dedup_key": dedup_key(message)}
        if action != "trigger":
            return doc
        labels = dict(inc.labels)
        source = self.params.source or labels.get("instance") or labels.get("host") or inc.check
        doc["payload"] = {
            "summary": truncate(message.title, SUMMARY_MAX),
            "source": source,
            "severity": self.severity(message),
            "timestamp": datetime.fromtimestamp(inc.opened_at, UTC).isoformat(timespec="milliseconds"),
            "component": labels.get("series") or labels.get("model") or inc.check,
            "group": inc.check,
            "class": str((list(inc.evidence.get("findings") or []) or [{}])[0].get("kind") or "anomaly"),
            "custom_details": {name: value for name, value in facts(message)} | {"text": message.text},
        }
        doc["client"] = "aiops"
        links = [{"href": url, "text": name} for name, url in sorted(message.links.items())]
        if links:
            doc["links"] = links
            if "incident" in message.links:
                doc["client_url"] = message.links["incident"]
        return doc

    def send(self, message: Message) -> Delivery:
        from aiops.messages import payload_to_message

        key = self._routing_key()
        members = [payload_to_message(m) for m in message.details.get("group") or []] or [message]
        result: Delivery | None = None
        for member in members:  # PagerDuty has no group event: one event per incident, each under its own key
            result = self.post_json(self.params.url, self.render(member, key), dedup_key=member.dedup_key)
        assert result is not None
        return result
