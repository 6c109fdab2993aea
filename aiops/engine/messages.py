"""Channel-neutral notification messages built from the engine's incidents (the record, its JSON form and
its picture are public, in :mod:`aiops.messages`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aiops.durations import format_duration
from aiops.store.records import Incident
from aiops.types import IncidentView, Message, json_safe, series_key


def incident_view(row: Incident) -> IncidentView:
    """What plugins see of an incident: the stable subset, not the store's bookkeeping."""
    return IncidentView(
        id=row.id,
        fingerprint=row.fingerprint,
        check=row.check_name,
        state=row.state,
        severity=row.severity,
        summary=row.summary,
        labels=dict(row.labels),
        opened_at=row.opened_at,
        evidence=dict(row.evidence),
        attempts=row.attempts,
        rung=row.rung,
    )


_TITLES = {
    "firing": "[FIRING] {check}: {summary}",
    "resolved": "[RESOLVED] {check}: {summary}",
    "escalated": "[ESCALATED] {check}: needs a person — {summary}",
    "approval": "[APPROVAL NEEDED] {check}: {summary}",
    "action": "[ACTION] {check}: {summary}",
    "acknowledged": "[ACKNOWLEDGED] {check}: {summary}",
}


def build_message(
    event: str,
    incident: Incident,
    text: str,
    *,
    dedup_key: str,
    details: Mapping[str, Any] | None = None,
    external_url: str | None = None,
    link_token: str | None = None,
) -> Message:
    """A channel-neutral message with what a person needs to act: the evidence in numbers, the top drifted
    features, what aiops did or wants to do, and links (the incident; approve/deny when approval is needed;
    signed useful/noise verdict links when the API token is set).

    Everything is computed here, once, and stored in the outbox row, so every channel shows the same facts
    and a retry days later still shows what was true when the message was written.
    """
    view = incident_view(incident)
    extra: dict[str, Any] = dict(details or {})
    resolution = extra.get("resolution")
    if event == "resolved" and isinstance(resolution, Mapping):
        title = f"[RESOLVED] {view.check}: {resolved_summary(resolution)}"
    else:
        title = _TITLES.get(event, "{check}: {summary}").format(check=view.check, summary=view.summary)
    lines = evidence_lines(view.evidence)
    if lines:
        extra.setdefault("evidence", lines)
    features = top_features(view.evidence)
    if features:
        extra.setdefault("top_features", features)
    doing = _doing(event, incident, extra, text)
    if doing:
        extra.setdefault("doing", doing)
    series = _series(view.evidence)
    if series:
        extra.setdefault("series", series)
    links: dict[str, str] = {}
    if external_url:
        base = external_url.rstrip("/")
        links["incident"] = f"{base}/api/v1/incidents/{view.id}"
        action_id = extra.get("action_id")
        if event == "approval" and action_id is not None and link_token:
            # signed, expiring links that open a confirmation page: decidable from the alert itself
            from aiops.approval_links import signed_path

            links["approve"] = base + signed_path(link_token, int(action_id), "approve")
            links["deny"] = base + signed_path(link_token, int(action_id), "deny")
        if link_token:
            from aiops.verdict_links import verdict_links

            links.update(verdict_links(base, link_token, view.id))
    return Message(
        event=event,
        incident=view,
        title=title,
        text=text,
        dedup_key=dedup_key,
        details=json_safe(extra),
        links=links,
    )


def resolution(incident: Incident, current: Mapping[str, float], now: float) -> dict[str, Any]:
    """What a RESOLVED message must say, so nobody reading it on a phone thinks it is still broken: what
    resolved, its value now (from the tick that found it healthy) and how long the problem lasted. The firing
    text is kept as ``was``.

    >>> from aiops.testing import incident_record
    >>> r = resolution(incident_record(summary="p95 = 155.9 is anomalous", opened_at=100.0, evidence={"findings": [
    ...     {"detector": "default", "labels": {"series": "p95", "job": "api"}}]}), {'p95{job="api"}': 98.2}, 350.0)
    >>> resolved_summary(r)
    'p95{job="api"} back to normal (now 98.2) after 4m10s'
    """
    found = incident.evidence.get("findings")
    findings = list(found) if isinstance(found, list) else []
    first: Mapping[str, Any] = findings[0] if findings else {}
    labels = {str(k): str(v) for k, v in dict(first.get("labels") or {}).items()}
    value: float | None = None
    if "series" in labels:
        what = series_key(labels.pop("series"), labels)
        value = current.get(what)
        unit = ""
    elif "column" in labels:
        what = f"{labels['column']} ({labels.get('problem', first.get('kind', 'problem'))})"
        value, unit = current.get("rows"), " new rows checked"
    elif "check_part" in labels:
        what = labels["check_part"].replace("_", " ")
        value, unit = current.get("rows"), " new rows checked"
    else:
        what, unit = str(first.get("kind") or "the problem"), ""
    return {
        "what": what,
        "current": None if value is None else f"{_fmt(value)}{unit}",
        "lasted_seconds": max(0.0, now - (incident.opened_at or now)),
        "was": incident.summary,
    }


def resolved_summary(resolution: Mapping[str, Any]) -> str:
    """One line: ``WHAT back to normal (now VALUE) after DURATION``."""
    now = f" (now {resolution['current']})" if resolution.get("current") else ""
    return f"{resolution['what']} back to normal{now} after {format_duration(float(resolution['lasted_seconds']))}"


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def evidence_lines(evidence: Mapping[str, Any], limit: int = 6) -> list[str]:
    """Short human lines with the numbers behind an incident, one per finding.

    >>> evidence_lines({"findings": [{"detector": "threshold", "evidence": {"value": 512.0, "upper": 100,
    ...     "score": 1.0}}]})
    ['threshold: value=512, upper=100, score=1']
    """
    out: list[str] = []
    keys = ("value", "expected", "lower", "upper", "limit", "z", "score", "p_value", "statistic")
    for finding in list(evidence.get("findings") or [])[:limit]:
        ev = finding.get("evidence") or {}
        parts = [f"{k}={_fmt(ev[k])}" for k in keys if ev.get(k) is not None]
        drifted = [n for n, c in dict(ev.get("columns") or {}).items() if isinstance(c, Mapping) and c.get("drift")]
        if drifted:
            parts.append(f"drifted columns: {len(drifted)}/{len(ev.get('columns') or {})}")
        if parts:
            out.append(f"{finding.get('detector', 'detector')}: {', '.join(parts)}")
    return out


def top_features(evidence: Mapping[str, Any], limit: int = 5) -> list[dict[str, Any]]:
    """The most drifted features across drift findings: drifted first, then by p-value (smallest first) or
    statistic (largest first).

    >>> top_features({"findings": [{"evidence": {"columns": {
    ...     "age": {"test": "ks", "statistic": 0.4, "p_value": 1e-9, "drift": True},
    ...     "income": {"test": "ks", "statistic": 0.05, "p_value": 0.4, "drift": False}}}}]})[0]["name"]
    'age'
    """
    rows: list[dict[str, Any]] = []
    for finding in evidence.get("findings") or []:
        for name, col in dict((finding.get("evidence") or {}).get("columns") or {}).items():
            if not isinstance(col, Mapping):
                continue
            rows.append(
                {
                    "name": str(name),
                    "test": col.get("test"),
                    "statistic": col.get("statistic"),
                    "p_value": col.get("p_value"),
                    "drift": bool(col.get("drift")),
                }
            )

    def key(r: dict[str, Any]) -> tuple[int, float, float]:
        p = r["p_value"] if isinstance(r["p_value"], int | float) else 1.0
        stat = r["statistic"] if isinstance(r["statistic"], int | float) else 0.0
        return (0 if r["drift"] else 1, float(p), -float(stat))

    rows.sort(key=key)
    return rows[:limit]


def _doing(event: str, incident: Incident, details: Mapping[str, Any], text: str) -> str:
    plan = details.get("plan")
    description = plan.get("description") if isinstance(plan, Mapping) else None
    if event == "approval" and description:
        return f"wants to run: {description} (waiting for approval)"
    if event == "escalated":
        return f"stopped acting, a person is needed: {text}"
    if event == "resolved":
        was = details.get("resolution", {}).get("was") if isinstance(details.get("resolution"), Mapping) else None
        return f"resolved: {text}" + (f" (it was: {was})" if was else "")
    if incident.guard_note:
        return incident.guard_note
    if incident.rung or incident.attempts:
        return f"remediation rung {incident.rung}, {incident.attempts} attempt(s) so far"
    return ""


def _series(evidence: Mapping[str, Any]) -> dict[str, Any] | None:
    """A plot-ready slice of the series if a finding carries one (``series: {timestamps, values}``)."""
    for finding in evidence.get("findings") or []:
        ev = finding.get("evidence") or {}
        s = ev.get("series")
        if isinstance(s, Mapping) and s.get("values"):
            return {"timestamps": list(s.get("timestamps") or []), "values": list(s["values"])}
    return None
