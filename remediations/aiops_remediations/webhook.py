"""Call an HTTP endpoint (signed JSON, Idempotency-Key header) to remediate: trigger a job, a rollback, a deploy."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, Field, field_validator

from aiops.durations import Duration
from aiops.errors import AiopsError
from aiops.messages import incident_payload
from aiops.plugins import Remediation
from aiops.redact import redact, redact_url
from aiops.signed_http import SignedHttpParams, SignedHttpPlugin, send_signed
from aiops.types import ActionContext, IncidentView, Outcome, Plan
from aiops_remediations.templating import render_template


class WebhookRemediationParams(SignedHttpParams):
    """Parameters of the webhook remediation."""

    method: Literal["POST", "PUT"] = Field("POST", description="HTTP method")
    timeout: Duration = Field(30.0, gt=0, description="connect and read timeout, e.g. 30s")
    body: dict[str, Any] | None = Field(
        None,
        description="JSON body template sent instead of the default envelope; strings may hold "
        "{incident.check}, {incident.id}, {incident.fingerprint}, {label.NAME}",
    )
    target: str | None = Field(None, description="what the call touches, for the blast-radius budget")

    @field_validator("method", mode="before")
    @classmethod
    def _upper(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value


def _render(value: Any, incident: IncidentView) -> Any:
    if isinstance(value, str):
        return render_template(value, incident)
    if isinstance(value, Mapping):
        return {str(k): _render(v, incident) for k, v in value.items()}
    if isinstance(value, list):
        return [_render(v, incident) for v in value]
    return value


class WebhookRemediation(SignedHttpPlugin, Remediation):
    """Remediate by calling an HTTP endpoint with signed JSON and an ``Idempotency-Key`` header.

    Why: most fixes already exist behind an API (a CI job that retrains, a deploy tool's rollback, a
    runbook service). The request carries ``Idempotency-Key: <action key>`` and, when a secret is set,
    ``X-Aiops-Signature`` (see :mod:`aiops.signing`). The body is ``{"plan", "incident",
    "idempotency_key"}``, or the rendered ``body`` template when one is configured (to match an existing
    API). 2xx is success; an answer or network failure that :mod:`aiops.http_outcome` calls retryable (429,
    408, 425, 5xx, timeouts, refused connections) comes back as a recoverable failure, retried by the ledger
    under the same key; other 4xx and redirects are final.

    ``resume`` (after a daemon crash mid-call) cannot know whether the first request arrived, so it sends
    the same request again with the same ``Idempotency-Key``: receivers must deduplicate by that key (the
    IETF ``Idempotency-Key`` header convention, as Stripe does), which makes the retry safe.
    """

    Params: ClassVar[type[BaseModel]] = WebhookRemediationParams
    params: WebhookRemediationParams

    def plan(self, incident: IncidentView) -> Plan:
        target = render_template(self.params.target or f"webhook:{self.origin}", incident)
        details: dict[str, Any] = {"method": self.params.method, "url": redact_url(self.params.url)}
        if self.params.body is not None:
            details["body"] = _render(self.params.body, incident)
        return Plan(
            action="webhook",
            description=f"{self.params.method} {redact_url(self.params.url)}",
            target=target,
            details=details,
        )

    def execute(self, plan: Plan, ctx: ActionContext) -> Outcome:
        ctx.save_handle({"idempotency_key": ctx.idempotency_key, "first_sent_at": ctx.now()})
        return self._call(plan, ctx)

    def resume(self, plan: Plan, ctx: ActionContext) -> Outcome | None:
        """Re-send with the same Idempotency-Key; the receiver deduplicates, so this cannot act twice."""
        return self._call(plan, ctx)

    # ------------------------------------------------------------------ internals

    def _call(self, plan: Plan, ctx: ActionContext) -> Outcome:
        if "body" in plan.details:
            payload: Any = plan.details["body"]
        else:
            payload = {
                "plan": {
                    "action": plan.action,
                    "description": plan.description,
                    "target": plan.target,
                    "details": dict(plan.details),
                },
                "incident": incident_payload(ctx.incident),
                "idempotency_key": ctx.idempotency_key,
            }
        try:
            answer = send_signed(
                self.params,
                payload,
                method=self.params.method,
                headers={"Idempotency-Key": ctx.idempotency_key},
                timeout=min(self.params.timeout, max(1.0, ctx.deadline - ctx.now())),
                excerpt_limit=500,
            )
        except AiopsError as exc:
            return Outcome(ok=False, summary=str(exc), recoverable=False, details={"reason": "secret_file"})
        outcome, name = answer.outcome, f"{self.params.method} {self.origin}"
        if outcome.status is None:
            return Outcome(
                ok=False,
                summary=redact(f"{name}: {outcome.detail}", answer.secrets),
                details={"reason": outcome.reason},
                recoverable=outcome.retryable,
            )
        details: dict[str, Any] = {"status": outcome.status, "response": redact(answer.excerpt, answer.secrets)}
        if outcome.ok:
            return Outcome(ok=True, summary=f"{name}: HTTP {outcome.status}", details=details)
        if outcome.retry_after is not None:
            details["retry_after"] = outcome.retry_after
        details["reason"] = outcome.reason
        return Outcome(
            ok=False,
            summary=redact(f"{name}: HTTP {outcome.status}", answer.secrets),
            details=details,
            recoverable=outcome.retryable,
        )
