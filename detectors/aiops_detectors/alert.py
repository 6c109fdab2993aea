"""Turns firing Prometheus/Alertmanager alerts (rows of the ``alertmanager`` source) into findings."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field

from aiops.plugins import Detector
from aiops.types import Finding, Frame, Severity, json_safe

_SEVERITIES = {
    "critical": Severity.CRITICAL,
    "page": Severity.CRITICAL,
    "error": Severity.CRITICAL,
    "warning": Severity.WARNING,
    "warn": Severity.WARNING,
    "info": Severity.INFO,
    "none": Severity.INFO,
}


class AlertParams(BaseModel):
    """Parameters of the alert detector."""

    model_config = ConfigDict(extra="forbid")

    severity_label: str = Field("severity", description="alert label that gives the finding's severity")
    default_severity: Severity = Field(Severity.WARNING, description="severity when the label is absent or unknown")


class AlertDetector(Detector):
    """A finding per firing alert, labelled with the alert's labels; a resolved alert is healthy.

    Why: it lets an existing Prometheus alert rule drive an aiops policy (notify, remediate, verify). The
    finding's labels are the alert's labels, so each alert (per instance, per job...) is its own incident,
    and the incident resolves when Alertmanager reports the alert resolved.

    >>> rows = ({"status": "firing", "labels": {"alertname": "HighLatency", "severity": "critical"},
    ...          "annotations": {"summary": "p99 latency above 2s"}},
    ...         {"status": "resolved", "labels": {"alertname": "DiskFull"}, "annotations": {}})
    >>> [(f.labels["alertname"], f.severity.value, f.summary) for f in
    ...  AlertDetector().evaluate(Frame(source="alertmanager", collected_at=0.0, rows=rows))]
    [('HighLatency', 'critical', 'HighLatency: p99 latency above 2s')]
    """

    Params: ClassVar[type[BaseModel]] = AlertParams
    name = "alert"

    def __init__(self, *, severity_label: str = "severity", default_severity: Severity = Severity.WARNING) -> None:
        self.params: AlertParams = self.validate_params(
            {"severity_label": severity_label, "default_severity": default_severity}
        )

    def evaluate(self, frame: Frame) -> list[Finding]:
        findings = []
        for row in frame.rows:
            if row.get("status") != "firing" or not isinstance(row.get("labels"), Mapping):
                continue
            labels = {str(k): str(v) for k, v in row["labels"].items()}
            annotations = row.get("annotations") if isinstance(row.get("annotations"), Mapping) else {}
            assert isinstance(annotations, Mapping)
            name = labels.get("alertname", "alert")
            text = annotations.get("summary") or annotations.get("description") or "firing"
            severity = _SEVERITIES.get(labels.get(self.params.severity_label, "").lower(), self.params.default_severity)
            findings.append(
                Finding(
                    kind="alert",
                    detector=self.name,
                    summary=f"{name}: {text}",
                    severity=severity,
                    labels=labels,
                    evidence=json_safe(
                        {
                            "annotations": dict(annotations),
                            "starts_at": row.get("starts_at"),
                            "fingerprint": row.get("fingerprint"),
                            "generator_url": row.get("generator_url"),
                        }
                    ),
                    observed_at=frame.collected_at,
                )
            )
        return findings

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        pass
