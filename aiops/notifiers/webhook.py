"""Generic JSON webhook notifier, signed with HMAC-SHA256 when a secret is configured."""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import requests
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from aiops import __version__
from aiops.durations import Duration
from aiops.errors import AiopsError, DeliveryError
from aiops.http_outcome import HttpOutcome, classify_error, classify_status
from aiops.messages import incident_payload
from aiops.plugins import Notifier
from aiops.redact import redact, url_origin, url_secrets, validate_http_url
from aiops.signing import load_secret, signature_headers
from aiops.types import Delivery, Message, json_safe


class WebhookParams(BaseModel):
    """Parameters of the webhook notifier."""

    model_config = ConfigDict(extra="forbid")

    url: str = Field(description="receiver URL (http or https); treated as a secret in logs and errors")
    secret: str | None = Field(None, description="HMAC-SHA256 signing secret (prefer secret_file or ${ENV})")
    secret_file: str | None = Field(None, description="file holding the signing secret, re-read on each send")
    timeout: Duration = Field(10.0, gt=0, description="connect and read timeout per request, e.g. 10s")
    headers: dict[str, str] = Field(default_factory=dict, description="extra HTTP headers (values are redacted)")

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        return validate_http_url(value)

    @model_validator(mode="after")
    def _one_secret(self) -> WebhookParams:
        if self.secret and self.secret_file:
            raise ValueError("set either secret or secret_file, not both")
        return self


class WebhookNotifier(Notifier):
    """POST each notification as signed JSON to an HTTP endpoint; the glue to anything that speaks HTTP.

    Why: every chat, paging and ticketing system can receive a webhook, and a small receiver can turn it
    into anything else, so this one channel reaches everything. The body is versioned JSON (``"version":
    "1"``), ``Idempotency-Key`` (the same on every attempt of one message, also in the body) lets the receiver
    drop the second copy that at-least-once delivery can produce, ``X-Aiops-Dedup-Key`` names the event, and
    ``X-Aiops-Signature`` (see :mod:`aiops.signing`) lets it reject forged or replayed requests. 2xx is
    delivered; what is retried (429 with its ``Retry-After``, 408, 425, 5xx, timeouts, refused connections)
    and what is final (other 4xx, redirects) is :mod:`aiops.http_outcome`'s rule, shared by every notifier
    and remediation. Error messages never contain the URL's path, query or userinfo, nor the secret.
    """

    Params: ClassVar[type[BaseModel]] = WebhookParams

    @classmethod
    def test_params(cls) -> list[dict[str, Any]]:
        return [{"url": "http://127.0.0.1:9/hook"}]

    def __init__(
        self,
        *,
        url: str,
        secret: str | None = None,
        secret_file: str | None = None,
        timeout: float | str = 10.0,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self.params: WebhookParams = self.validate_params(
            {
                "url": url,
                "secret": secret,
                "secret_file": secret_file,
                "timeout": timeout,
                "headers": dict(headers or {}),
            }
        )
        self.receiver = f"webhook {url_origin(self.params.url)}"

    def _secrets(self, secret: bytes | None = None) -> list[str]:
        values = url_secrets(self.params.url) + list(self.params.headers.values())
        if self.params.secret:
            values.append(self.params.secret)
        if secret:
            values.append(secret.decode(errors="replace"))
        return values

    def render(self, message: Message, now: float | None = None) -> dict[str, Any]:
        """The JSON document sent for a message."""
        payload = {
            "version": "1",
            "event": message.event,
            "dedup_key": message.dedup_key,
            "idempotency_key": message.idempotency_key or None,
            "title": message.title,
            "text": message.text,
            "incident": incident_payload(message.incident),
            "details": dict(message.details),
            "links": dict(message.links),
            "sent_at": time.time() if now is None else now,
        }
        result: dict[str, Any] = json_safe(payload)
        return result

    def send(self, message: Message) -> Delivery:
        try:
            secret = load_secret(self.params.secret, self.params.secret_file)
        except AiopsError as exc:
            raise DeliveryError(str(exc), recoverable=False, reason="secret_file") from None
        now = time.time()
        body = json.dumps(self.render(message, now), separators=(",", ":"), allow_nan=False).encode()
        headers = {
            "User-Agent": f"aiops/{__version__}",
            **self.params.headers,
            "Content-Type": "application/json",
            **delivery_headers(message),
            **signature_headers(secret, body, now),
        }
        try:
            response = requests.post(
                self.params.url,
                data=body,
                headers=headers,
                timeout=self.params.timeout,
                allow_redirects=False,  # a redirect would carry the signed body and headers elsewhere
            )
        except requests.RequestException as exc:
            raise unanswered(exc, self.params.timeout, self.receiver, self._secrets(secret)) from None
        with response:
            excerpt = _excerpt(response)
            outcome = classify_status(response.status_code, response.headers)
        return delivered_or_raise(outcome, excerpt, self.receiver, self._secrets(secret))


def delivery_headers(message: Message) -> dict[str, str]:
    """The headers that identify a message to its receiver: ``X-Aiops-Dedup-Key`` (the event) and, when the
    outbox sends it, ``Idempotency-Key`` (the IETF httpapi header): equal on every attempt of that message,
    so a receiver can drop the copy that is sent again when a replica dies between the send and its record."""
    headers = {"X-Aiops-Dedup-Key": message.dedup_key}
    if message.idempotency_key:
        headers["Idempotency-Key"] = message.idempotency_key
    return headers


def delivered_or_raise(outcome: HttpOutcome, excerpt: str, receiver: str, secrets: Sequence[str]) -> Delivery:
    """The :class:`Delivery` of a 2xx answer, else the :class:`DeliveryError` the outbox acts on: retried
    (honouring ``Retry-After``) when :mod:`aiops.http_outcome` calls the answer retryable, else final."""
    if outcome.ok:
        return Delivery(receiver=receiver, status=outcome.status, detail=redact(excerpt, secrets))
    said = f": {excerpt}" if excerpt else ""
    if outcome.retryable:
        text = f"HTTP {outcome.status}, will retry{said}"
    elif outcome.redirect:
        text = f"HTTP {outcome.status} redirect; configure the final URL{said}"
    else:
        text = f"HTTP {outcome.status}{said}"
    raise DeliveryError(
        redact(f"{receiver}: {text}", secrets),
        recoverable=outcome.retryable,
        reason=outcome.reason,
        retry_after=outcome.retry_after,
    )


def unanswered(exc: requests.RequestException, timeout: float, receiver: str, secrets: Sequence[str]) -> DeliveryError:
    """The error for a request that got no answer, retryable or not as :func:`classify_error` says."""
    outcome = classify_error(exc, timeout)
    return DeliveryError(
        redact(f"{receiver}: {outcome.detail}", secrets), recoverable=outcome.retryable, reason=outcome.reason
    )


def _excerpt(response: requests.Response, limit: int = 200) -> str:
    try:
        text = response.text
    except Exception:  # undecodable body: the status code says enough
        return ""
    text = " ".join(text.split())
    return text[:limit] + ("..." if len(text) > limit else "")
