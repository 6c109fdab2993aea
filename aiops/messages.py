"""Messages as they travel to notifiers: the one typed record (:class:`aiops.types.Message`), its JSON form in
the outbox, and the picture a channel that takes images attaches.

Why a public module of its own: a notifier (built in or third-party) needs these and nothing else from the
engine that builds the message, so it depends on this small module instead of the engine's internals.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aiops.types import IncidentState, IncidentView, Message, Severity, json_safe


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


def render_plot(message: Message, *, width: float = 5.0, height: float = 2.2) -> bytes | None:
    """A small PNG for channels that take images (email, Discord): the series with the anomalous point and
    the expected band, or the top drifted features' statistics. None when there is nothing to draw or
    matplotlib is not installed (it is an optional, lazily imported dependency)."""
    details = message.details
    series = details.get("series")
    features = details.get("top_features")
    first = (list(message.incident.evidence.get("findings") or []) or [{}])[0].get("evidence") or {}
    if not series and not features and first.get("value") is None:
        return None
    try:
        import io

        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    fig, ax = plt.subplots(figsize=(width, height), dpi=80)
    try:
        if series:
            xs = series.get("timestamps") or list(range(len(series["values"])))
            ax.plot(xs, series["values"], lw=1.2, color="#1f77b4")
            if first.get("timestamp") is not None and first.get("value") is not None:
                ax.scatter([first["timestamp"]], [first["value"]], color="#d62728", zorder=3)
        elif features:
            names = [f["name"] for f in features][::-1]
            stats = [float(f["statistic"] or 0.0) for f in features][::-1]
            colors = ["#d62728" if f["drift"] else "#7f7f7f" for f in features][::-1]
            ax.barh(names, stats, color=colors)
            ax.set_xlabel("drift statistic")
        else:
            ax.scatter([0], [float(first["value"])], color="#d62728", zorder=3, label="observed")
            lo, hi = first.get("lower"), first.get("upper")
            if isinstance(lo, int | float) or isinstance(hi, int | float):
                ax.axhspan(
                    float(lo if lo is not None else first["value"]),
                    float(hi if hi is not None else 0),
                    color="#2ca02c",
                    alpha=0.2,
                    label="expected",
                )
            ax.set_xticks([])
            ax.legend(loc="best", fontsize=7)
        ax.set_title(message.incident.check, fontsize=9)
        ax.tick_params(labelsize=7)
        fig.tight_layout()
        buf = io.BytesIO()
        fig.savefig(buf, format="png")
        return buf.getvalue()
    finally:
        plt.close(fig)


def incident_payload(incident: IncidentView) -> dict[str, Any]:
    """The JSON picture of an incident that webhooks send (stable field set, version "1")."""
    return {
        "id": incident.id,
        "fingerprint": incident.fingerprint,
        "check": incident.check,
        "state": str(incident.state),
        "severity": str(incident.severity),
        "summary": incident.summary,
        "labels": dict(incident.labels),
        "opened_at": incident.opened_at,
        "attempts": incident.attempts,
        "rung": incident.rung,
    }
