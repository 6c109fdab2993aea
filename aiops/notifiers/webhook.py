"""Generic JSON webhook notifier, signed with HMAC-SHA256 when a secret is configured."""

from __future__ import annotations

import time
from typing import Any, ClassVar

from pydantic import BaseModel

from aiops.errors import AiopsError, DeliveryError
from aiops.messages import incident_payload
from aiops.notifiers._http import delivery_headers, delivery_of
from aiops.plugins import Notifier
from aiops.signed_http import SignedHttpParams, SignedHttpPlugin, send_signed
from aiops.types import Delivery, Message, json_safe


class WebhookParams(SignedHttpParams):
    """Parameters of the webhook notifier."""


class WebhookNotifier(SignedHttpPlugin, Notifier):
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
    params: WebhookParams

    @property
    def receiver(self) -> str:
        return f"webhook {self.origin}"

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
        now = time.time()
        try:
            answer = send_signed(
                self.params, self.render(message, now), headers=delivery_headers(message), now=now
            )
        except AiopsError as exc:
            raise DeliveryError(str(exc), recoverable=False, reason="secret_file") from None
        return delivery_of(answer.outcome, answer.excerpt, self.receiver, answer.secrets)
