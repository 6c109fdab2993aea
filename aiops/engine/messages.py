"""Channel-neutral notification messages, and their round trip through the outbox's JSON column."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aiops.types import IncidentState, IncidentView, Message, Severity, json_safe


def incident_view(row: Mapping[str, Any]) -> IncidentView:
    return IncidentView(
        id=int(row["id"]),
        fingerprint=str(row["fingerprint"]),
        check=str(row["check_name"]),
        state=IncidentState(row["state"]),
        severity=Severity(row["severity"]),
        summary=str(row["summary"]),
        labels=dict(row["labels"] or {}),
        opened_at=float(row["opened_at"]),
        evidence=dict(row["evidence"] or {}),
        attempts=int(row["attempts"] or 0),
        rung=int(row["rung"] or 0),
    )


_TITLES = {
    "firing": "[FIRING] {check}: {summary}",
    "resolved": "[RESOLVED] {check}: {summary}",
    "escalated": "[ESCALATED] {check}: needs a person — {summary}",
    "approval": "[APPROVAL NEEDED] {check}: {summary}",
    "action": "[ACTION] {check}: {summary}",
}


def build_message(
    event: str,
    incident: Mapping[str, Any],
    text: str,
    *,
    dedup_key: str,
    details: Mapping[str, Any] | None = None,
    external_url: str | None = None,
) -> Message:
    view = incident_view(incident)
    title = _TITLES.get(event, "{check}: {summary}").format(check=view.check, summary=view.summary)
    links: dict[str, str] = {}
    if external_url:
        base = external_url.rstrip("/")
        links["incident"] = f"{base}/api/v1/incidents/{view.id}"
    return Message(
        event=event,
        incident=view,
        title=title,
        text=text,
        dedup_key=dedup_key,
        details=dict(details or {}),
        links=links,
    )


def message_to_payload(message: Message) -> dict[str, Any]:
    inc = message.incident
    result = json_safe(
        {
            "event": message.event,
            "title": message.title,
            "text": message.text,
            "dedup_key": message.dedup_key,
            "details": dict(message.details),
            "links": dict(message.links),
            "incident": {
                "id": inc.id,
                "fingerprint": inc.fingerprint,
                "check": inc.check,
                "state": str(inc.state),
                "severity": str(inc.severity),
                "summary": inc.summary,
                "labels": dict(inc.labels),
                "opened_at": inc.opened_at,
                "evidence": dict(inc.evidence),
                "attempts": inc.attempts,
                "rung": inc.rung,
            },
        }
    )
    assert isinstance(result, dict)
    return result


def payload_to_message(payload: Mapping[str, Any]) -> Message:
    inc = payload["incident"]
    view = IncidentView(
        id=int(inc["id"]),
        fingerprint=str(inc["fingerprint"]),
        check=str(inc["check"]),
        state=IncidentState(inc["state"]),
        severity=Severity(inc["severity"]),
        summary=str(inc["summary"]),
        labels=dict(inc["labels"]),
        opened_at=float(inc["opened_at"]),
        evidence=dict(inc.get("evidence") or {}),
        attempts=int(inc.get("attempts", 0)),
        rung=int(inc.get("rung", 0)),
    )
    return Message(
        event=str(payload["event"]),
        incident=view,
        title=str(payload["title"]),
        text=str(payload["text"]),
        dedup_key=str(payload["dedup_key"]),
        details=dict(payload.get("details") or {}),
        links=dict(payload.get("links") or {}),
    )
