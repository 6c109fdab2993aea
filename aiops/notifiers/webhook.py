"""Generic JSON webhook notifier, signed with HMAC-SHA256 when a secret is configured."""

from __future__ import annotations

import email.utils
import json
import math
import time
from collections.abc import Mapping
from typing import Any, ClassVar

import requests
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from aiops import __version__
from aiops.durations import Duration
from aiops.errors import AiopsError, DeliveryError
from aiops.redact import redact, url_origin, url_secrets
from aiops.signing import load_secret, signature_headers
from aiops.types import Delivery, IncidentView, Message, json_safe

#: Answers a retry cannot fix: the request or the configuration is wrong.
FINAL_STATUSES = frozenset({400, 401, 403, 404, 405, 410, 413, 422})
MAX_RETRY_AFTER = 86400.0


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header: delta-seconds or an HTTP date; None if absent/invalid.

    >>> parse_retry_after("120"), parse_retry_after(None), parse_retry_after("soon")
    (120.0, None, None)
    >>> parse_retry_after("Wed, 21 Oct 2015 07:28:30 GMT", now=1445412480.0)
    30.0
    """
    if value is None:
        return None
    text = value.strip()
    if not text:
        return None
    try:
        seconds = float(text)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return None
        seconds = when.timestamp() - (time.time() if now is None else now)
    if not math.isfinite(seconds):
        return None
    return min(max(seconds, 0.0), MAX_RETRY_AFTER)


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


def validate_http_url(value: str) -> str:
    """Pydantic helper: an absolute http(s) URL (the message never repeats the URL, which may be secret)."""
    text = value.strip()
    if not text.lower().startswith(("http://", "https://")) or len(text.split("://", 1)[1]) == 0:
        raise ValueError("must be an absolute http:// or https:// URL")
    return text


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


class WebhookNotifier:
    """POST each notification as signed JSON to an HTTP endpoint; the glue to anything that speaks HTTP.

    Why: every chat, paging and ticketing system can receive a webhook, and a small receiver can turn it
    into anything else, so this one channel reaches everything. The body is versioned JSON (``"version":
    "1"``), ``X-Aiops-Dedup-Key`` lets the receiver drop duplicates (the outbox delivers at least once), and
    ``X-Aiops-Signature`` (see :mod:`aiops.signing`) lets it reject forged or replayed requests. 2xx is
    delivered; 400/401/403/404/405/410/413/422 are final (retrying cannot fix them); 429 (with its
    ``Retry-After``), 408, 5xx, timeouts and connection errors are retried by the outbox. Error messages never
    contain the URL's path, query or userinfo, nor the secret.
    """

    Params: ClassVar[type[BaseModel]] = WebhookParams

    def __init__(
        self,
        *,
        url: str,
        secret: str | None = None,
        secret_file: str | None = None,
        timeout: float | str = 10.0,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self.params = WebhookParams.model_validate(
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

    def _fail(self, text: str, secret: bytes | None, **kwargs: Any) -> DeliveryError:
        return DeliveryError(redact(f"{self.receiver}: {text}", self._secrets(secret)), **kwargs)

    def render(self, message: Message, now: float | None = None) -> dict[str, Any]:
        """The JSON document sent for a message."""
        payload = {
            "version": "1",
            "event": message.event,
            "dedup_key": message.dedup_key,
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
            "X-Aiops-Dedup-Key": message.dedup_key,
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
        except requests.Timeout:
            raise self._fail(
                f"timed out after {self.params.timeout:g}s", secret, recoverable=True, reason="timeout"
            ) from None
        except requests.ConnectionError as exc:
            raise self._fail(
                f"connection failed: {_root_cause(exc)}", secret, recoverable=True, reason="connection"
            ) from None
        except requests.RequestException as exc:
            raise self._fail(
                f"request failed: {type(exc).__name__}", secret, recoverable=False, reason="request"
            ) from None
        with response:
            status = response.status_code
            excerpt = _excerpt(response)
            retry_after = parse_retry_after(response.headers.get("Retry-After"))
        if 200 <= status < 300:
            return Delivery(receiver=self.receiver, status=status, detail=redact(excerpt, self._secrets(secret)))
        reason = f"http_{status}"
        said = f": {excerpt}" if excerpt else ""
        if status == 429 or status == 408 or status >= 500:
            raise self._fail(
                f"HTTP {status}, will retry{said}",
                secret,
                recoverable=True,
                reason=reason,
                retry_after=retry_after,
            )
        if 300 <= status < 400:
            raise self._fail(
                f"HTTP {status} redirect; configure the final URL{said}",
                secret,
                recoverable=False,
                reason=reason,
            )
        # FINAL_STATUSES and any other 4xx: the request itself is wrong, retrying sends the same request.
        raise self._fail(f"HTTP {status}{said}", secret, recoverable=False, reason=reason)


def _excerpt(response: requests.Response, limit: int = 200) -> str:
    try:
        text = response.text
    except Exception:  # undecodable body: the status code says enough
        return ""
    text = " ".join(text.split())
    return text[:limit] + ("..." if len(text) > limit else "")


def _root_cause(exc: BaseException) -> str:
    """The innermost cause's class and message (e.g. ``ConnectionRefusedError: [Errno 111] ...``)."""
    seen: set[int] = set()
    cur: BaseException = exc
    while id(cur) not in seen:
        seen.add(id(cur))
        nxt = cur.__cause__ or cur.__context__
        if nxt is None:
            break
        cur = nxt
    reason = getattr(cur, "reason", None)
    if isinstance(reason, BaseException):
        cur = reason
    return f"{type(cur).__name__}: {cur}"
