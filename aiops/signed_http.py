"""One signed JSON request to a configured URL: what the webhook notifier and the webhook remediation send.

Why one client: both post versioned JSON to a user's endpoint, signed with :mod:`aiops.signing` when a
secret is set, never follow a redirect (it would carry the signed body and headers elsewhere), and must keep
the URL's credentials, the extra headers' values and the secret out of every message. Written twice, the two
drifted (one honoured ``425``, the other did not); here the request is built and its answer classified
(:mod:`aiops.http_outcome`) once, and each caller only turns the :class:`SignedAnswer` into its own result (a
:class:`~aiops.types.Delivery` or an :class:`~aiops.types.Outcome`).
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import requests
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from aiops import __version__
from aiops.durations import Duration
from aiops.http_outcome import HttpOutcome, classify_error, classify_status
from aiops.plugins import Plugin
from aiops.redact import url_origin, url_secrets, validate_http_url
from aiops.signing import check_one_secret, load_secret, signature_headers
from aiops.types import json_safe


class SignedHttpParams(BaseModel):
    """Where to send and how to sign: the parameters every signed-JSON plugin takes."""

    model_config = ConfigDict(extra="forbid")

    url: str = Field(description="the URL to call (http or https); treated as a secret in logs and errors")
    secret: str | None = Field(None, description="HMAC-SHA256 signing secret (prefer secret_file or ${ENV})")
    secret_file: str | None = Field(None, description="file holding the signing secret, re-read on every request")
    timeout: Duration = Field(10.0, gt=0, description="connect and read timeout per request, e.g. 10s")
    headers: dict[str, str] = Field(default_factory=dict, description="extra HTTP headers (values are redacted)")

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        return validate_http_url(value)

    @model_validator(mode="after")
    def _one_secret(self) -> SignedHttpParams:
        check_one_secret(self.secret, self.secret_file)
        return self


class SignedHttpPlugin(Plugin):
    """What a plugin of any kind that sends signed JSON to one configured URL shares: its parameters (a
    :class:`SignedHttpParams`), where it sends to as logs and errors may show it, and test parameters."""

    params: SignedHttpParams

    @classmethod
    def test_params(cls) -> list[dict[str, Any]]:
        return [{"url": "http://127.0.0.1:9/hook"}]

    @property
    def origin(self) -> str:
        """The URL's scheme, host and port: what may be shown of it (its path and query can be a credential)."""
        return url_origin(self.params.url)


@dataclass(frozen=True)
class SignedAnswer:
    """How one signed request went: its :class:`HttpOutcome` (``status`` None when nothing answered), the
    start of the answer's body with white space folded, and every value the caller must redact from what it
    says about the exchange."""

    outcome: HttpOutcome
    excerpt: str
    secrets: list[str]


def send_signed(
    params: SignedHttpParams,
    payload: Any,
    *,
    method: str = "POST",
    headers: Mapping[str, str] | None = None,
    timeout: float | None = None,
    now: float | None = None,
    excerpt_limit: int = 200,
) -> SignedAnswer:
    """Send ``payload`` as compact JSON with the configured and the given ``headers``, signed at ``now``.

    Raises :class:`~aiops.errors.AiopsError` (not recoverable, reason ``secret_file``) when the secret file
    cannot be read; every other failure is in the answer's outcome.
    """
    secret = load_secret(params.secret, params.secret_file)
    body = json.dumps(json_safe(payload), separators=(",", ":"), allow_nan=False).encode()
    sent_headers = {
        "User-Agent": f"aiops/{__version__}",
        **params.headers,
        "Content-Type": "application/json",
        **dict(headers or {}),
        **signature_headers(secret, body, time.time() if now is None else now),
    }
    secrets = url_secrets(params.url) + list(params.headers.values())
    if secret:
        secrets.append(secret.decode(errors="replace"))
    wait = params.timeout if timeout is None else timeout
    try:
        response = requests.request(
            method, params.url, data=body, headers=sent_headers, timeout=wait, allow_redirects=False
        )
    except requests.RequestException as exc:
        return SignedAnswer(classify_error(exc, wait), "", secrets)
    with response:
        return SignedAnswer(
            classify_status(response.status_code, response.headers), excerpt(response, excerpt_limit), secrets
        )


def excerpt(response: requests.Response, limit: int = 200) -> str:
    """The start of an answer's body, white space folded, cut at ``limit`` characters (marked ``...``); empty
    when the body cannot be decoded (the status code says enough then)."""
    try:
        text = response.text
    except Exception:  # undecodable body
        return ""
    text = " ".join(text.split())
    return text[:limit] + ("..." if len(text) > limit else "")
