"""Call an HTTP endpoint (signed JSON, Idempotency-Key header) to remediate: trigger a job, a rollback, a deploy."""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from typing import Any, ClassVar, Literal

import requests
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from aiops import __version__
from aiops.durations import Duration
from aiops.errors import AiopsError
from aiops.http_outcome import classify_error, classify_status
from aiops.messages import incident_payload
from aiops.plugins import Remediation
from aiops.redact import redact, redact_url, url_origin, url_secrets, validate_http_url
from aiops.signing import load_secret, signature_headers
from aiops.types import ActionContext, IncidentView, Outcome, Plan, json_safe
from aiops_remediations.templating import render_template


class WebhookRemediationParams(BaseModel):
    """Parameters of the webhook remediation."""

    model_config = ConfigDict(extra="forbid")

    url: str = Field(description="endpoint to call (http or https); treated as a secret in logs and errors")
    method: Literal["POST", "PUT"] = Field("POST", description="HTTP method")
    secret: str | None = Field(None, description="HMAC-SHA256 signing secret (prefer secret_file or ${ENV})")
    secret_file: str | None = Field(None, description="file holding the signing secret, re-read on each call")
    timeout: Duration = Field(30.0, gt=0, description="connect and read timeout, e.g. 30s")
    headers: dict[str, str] = Field(default_factory=dict, description="extra HTTP headers (values are redacted)")
    body: dict[str, Any] | None = Field(
        None,
        description="JSON body template sent instead of the default envelope; strings may hold "
        "{incident.check}, {incident.id}, {incident.fingerprint}, {label.NAME}",
    )
    target: str | None = Field(None, description="what the call touches, for the blast-radius budget")

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        return validate_http_url(value)

    @field_validator("method", mode="before")
    @classmethod
    def _upper(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value

    @model_validator(mode="after")
    def _one_secret(self) -> WebhookRemediationParams:
        if self.secret and self.secret_file:
            raise ValueError("set either secret or secret_file, not both")
        return self


def _render(value: Any, incident: IncidentView) -> Any:
    if isinstance(value, str):
        return render_template(value, incident)
    if isinstance(value, Mapping):
        return {str(k): _render(v, incident) for k, v in value.items()}
    if isinstance(value, list):
        return [_render(v, incident) for v in value]
    return value


class WebhookRemediation(Remediation):
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

    @classmethod
    def test_params(cls) -> list[dict[str, Any]]:
        return [{"url": "http://127.0.0.1:9/hook"}]

    def __init__(
        self,
        *,
        url: str,
        method: str = "POST",
        secret: str | None = None,
        secret_file: str | None = None,
        timeout: float | str = 30.0,
        headers: Mapping[str, str] | None = None,
        body: Mapping[str, Any] | None = None,
        target: str | None = None,
    ) -> None:
        self.params: WebhookRemediationParams = self.validate_params(
            {
                "url": url,
                "method": method,
                "secret": secret,
                "secret_file": secret_file,
                "timeout": timeout,
                "headers": dict(headers or {}),
                "body": None if body is None else dict(body),
                "target": target,
            }
        )
        self.receiver = url_origin(self.params.url)

    def plan(self, incident: IncidentView) -> Plan:
        target = render_template(self.params.target or f"webhook:{self.receiver}", incident)
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
        try:
            secret = load_secret(self.params.secret, self.params.secret_file)
        except AiopsError as exc:
            return Outcome(ok=False, summary=str(exc), recoverable=False, details={"reason": "secret_file"})
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
        body = json.dumps(json_safe(payload), separators=(",", ":"), allow_nan=False).encode()
        headers = {
            "User-Agent": f"aiops/{__version__}",
            **self.params.headers,
            "Content-Type": "application/json",
            "Idempotency-Key": ctx.idempotency_key,
            **signature_headers(secret, body, time.time()),
        }
        secrets = url_secrets(self.params.url) + list(self.params.headers.values())
        if secret:
            secrets.append(secret.decode(errors="replace"))
        name = f"{self.params.method} {self.receiver}"
        timeout = min(self.params.timeout, max(1.0, ctx.deadline - ctx.now()))
        try:
            response = requests.request(
                self.params.method,
                self.params.url,
                data=body,
                headers=headers,
                timeout=timeout,
                allow_redirects=False,
            )
        except requests.RequestException as exc:
            failure = classify_error(exc, timeout)
            return Outcome(
                ok=False,
                summary=redact(f"{name}: {failure.detail}", secrets),
                details={"reason": failure.reason},
                recoverable=failure.retryable,
            )
        with response:
            text = " ".join(response.text[:1000].split())
            outcome = classify_status(response.status_code, response.headers)
        details: dict[str, Any] = {"status": outcome.status, "response": redact(text[:500], secrets)}
        if outcome.ok:
            return Outcome(ok=True, summary=f"{name}: HTTP {outcome.status}", details=details)
        if outcome.retry_after is not None:
            details["retry_after"] = outcome.retry_after
        details["reason"] = outcome.reason
        return Outcome(
            ok=False,
            summary=redact(f"{name}: HTTP {outcome.status}", secrets),
            details=details,
            recoverable=outcome.retryable,
        )

