"""What every HTTP notifier shares: one POST, one classification of the answer, secrets kept out of errors.

Why one place: the redaction of webhook URLs (whose path *is* the credential for Slack, Discord, Teams) must
never be forgotten by one provider. Whether an answer is final or worth retrying is not decided here either:
:mod:`aiops.http_outcome` holds that rule for every notifier and remediation.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import Any, ClassVar, TypeVar

import requests
from pydantic import BaseModel, ConfigDict, Field, field_validator

from aiops import __version__
from aiops.durations import Duration
from aiops.errors import DeliveryError
from aiops.http_outcome import HttpOutcome, classify_error, classify_status
from aiops.plugins import Notifier
from aiops.redact import redact, url_origin, url_secrets, validate_http_url
from aiops.signed_http import excerpt
from aiops.text import abbreviate
from aiops.types import Delivery, Message


class HttpParams(BaseModel):
    """Parameters every webhook-style notifier takes."""

    model_config = ConfigDict(extra="forbid")

    url: str = Field(description="webhook URL; a secret (its path is the credential): use ${ENV}")
    timeout: Duration = Field(10.0, gt=0, description="connect and read timeout per request, e.g. 10s")
    min_interval: Duration = Field(0.0, ge=0, description="rate limit: at least this long between two messages")

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        return validate_http_url(value)


class HttpNotifier(Notifier):
    """Base of the webhook-style notifiers: subclasses implement :meth:`render` (the provider's format)."""

    Params: ClassVar[type[BaseModel]] = HttpParams
    kind = "http"

    @classmethod
    def test_params(cls) -> list[dict[str, Any]]:
        """A webhook URL on the provider's example domain: all a chat webhook needs (the suite never sends)."""
        return [{"url": f"https://{cls.kind}.example/hooks/x"}]

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        self.min_interval = float(self.params.min_interval)
        self.receiver = f"{self.kind} {url_origin(self.params.url)}"

    # -- for subclasses ----------------------------------------------------------------------------------

    def render(self, message: Message) -> Any:
        raise NotImplementedError

    def secrets(self) -> list[str]:
        """Every configured value that must never appear in an error message or a log line."""
        return url_secrets(self.params.url)

    def send(self, message: Message) -> Delivery:
        return self.post_json(self.params.url, self.render(message), message=message)

    # -- the shared POST ---------------------------------------------------------------------------------

    def post_json(
        self,
        url: str,
        document: Any,
        *,
        message: Message | None = None,
        headers: Mapping[str, str] | None = None,
        files: Mapping[str, tuple[str, bytes, str]] | None = None,
        retry_after_from_body: Callable[[Any], float | None] | None = None,
    ) -> Delivery:
        """POST ``document`` as JSON (or as multipart with ``payload_json`` when ``files`` are given); the
        request carries ``message``'s dedup and idempotency keys as headers."""
        body = json.dumps(document, separators=(",", ":"), allow_nan=False)
        hdrs = {"User-Agent": f"aiops/{__version__}", **dict(headers or {})}
        if message is not None:
            hdrs.update(delivery_headers(message))
        kwargs: dict[str, Any]
        if files:
            kwargs = {"data": {"payload_json": body}, "files": dict(files)}
        else:
            hdrs["Content-Type"] = "application/json"
            kwargs = {"data": body.encode()}
        try:
            response = requests.post(url, headers=hdrs, timeout=self.params.timeout, allow_redirects=False, **kwargs)
        except requests.RequestException as exc:
            return delivery_of(classify_error(exc, self.params.timeout), "", self.receiver, self.secrets())
        with response:
            said = excerpt(response)
            outcome = classify_status(response.status_code, response.headers)
            if outcome.status == 429 and outcome.retry_after is None and retry_after_from_body is not None:
                with contextlib.suppress(ValueError):
                    outcome = replace(outcome, retry_after=retry_after_from_body(response.json()))
        return delivery_of(outcome, said, self.receiver, self.secrets())


def delivery_headers(message: Message) -> dict[str, str]:
    """The headers that identify a message to its receiver: ``X-Aiops-Dedup-Key`` (the event) and, when the
    outbox sends it, ``Idempotency-Key`` (the IETF httpapi header): equal on every attempt of that message,
    so a receiver can drop the copy that is sent again when a replica dies between the send and its record."""
    headers = {"X-Aiops-Dedup-Key": message.dedup_key}
    if message.idempotency_key:
        headers["Idempotency-Key"] = message.idempotency_key
    return headers


def delivery_of(outcome: HttpOutcome, excerpt: str, receiver: str, secrets: Sequence[str]) -> Delivery:
    """The :class:`Delivery` of a 2xx answer, else the :class:`DeliveryError` the outbox acts on: retried
    (honouring ``Retry-After``) when :mod:`aiops.http_outcome` calls the exchange retryable, else final.
    ``excerpt`` is the start of the answer's body (empty when nothing answered)."""
    if outcome.ok:
        return Delivery(receiver=receiver, status=outcome.status, detail=redact(excerpt, secrets))
    said = f": {excerpt}" if excerpt else ""
    if outcome.status is None:
        text = outcome.detail
    elif outcome.retryable:
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


# -- rendering helpers shared by the chat notifiers -------------------------------------------------------------

T = TypeVar("T")

SEVERITY_COLOR = {"critical": "#d62728", "warning": "#ff7f0e", "info": "#1f77b4"}
RESOLVED_COLOR = "#2ca02c"
SEVERITY_EMOJI = {"critical": ":red_circle:", "warning": ":large_orange_circle:", "info": ":large_blue_circle:"}


def by_severity(message: Message, resolved: T, per_severity: Mapping[str, T], otherwise: T) -> T:
    """A channel's marker of a message (a colour, an emoji): ``resolved`` once healthy, else the incident's
    severity's, else ``otherwise``.

    Why one rule: every channel shows the same thing the same way, a resolved message never in alarm colours.
    """
    if message.event == "resolved":
        return resolved
    return per_severity.get(str(message.incident.severity), otherwise)


def color_of(message: Message) -> str:
    return by_severity(message, RESOLVED_COLOR, SEVERITY_COLOR, "#7f7f7f")


def truncate(text: str, limit: int) -> str:
    """``text`` cut to a channel's ``limit`` after a whole word, marking the cut (line breaks kept).

    >>> truncate("abcdef", 4), truncate("abc", 4), truncate("mean_area (distribution moved)", 16)
    ('abc…', 'abc', 'mean_area…')
    """
    return abbreviate(text, limit, one_line=False)


def facts(message: Message) -> list[tuple[str, str]]:
    """(name, value) pairs every channel shows: check, severity, state, labels, evidence, drift, plan."""
    inc = message.incident
    out = [
        ("Check", inc.check),
        ("Severity", str(inc.severity)),
        ("State", str(inc.state)),
        ("Incident", f"#{inc.id}"),
    ]
    labels = ", ".join(f"{k}={v}" for k, v in sorted(inc.labels.items()))
    if labels:
        out.append(("Labels", labels))
    evidence = message.details.get("evidence") or []
    if evidence:
        out.append(("Evidence", "\n".join(str(x) for x in evidence)))
    features = message.details.get("top_features") or []
    if features:
        out.append(
            (
                "Top drifted features",
                "\n".join(
                    f"{f['name']}: {f.get('test') or 'stat'}={_num(f.get('statistic'))}, p={_num(f.get('p_value'))}"
                    for f in features
                ),
            )
        )
    doing = message.details.get("doing")
    if doing:
        out.append(("aiops", str(doing)))
    return out


def _num(value: Any) -> str:
    return f"{value:.3g}" if isinstance(value, int | float) else "n/a"


def link_list(message: Message) -> list[tuple[str, str]]:
    """(label, url) of the message's links, in a stable order: incident first, then approve, deny, then the
    verdicts (useful, noise)."""
    order = {"incident": 0, "approve": 1, "deny": 2, "useful": 3, "noise": 4}
    names = {
        "incident": "Open incident",
        "approve": "Approve",
        "deny": "Deny",
        "useful": "Mark useful",
        "noise": "Mark noise",
    }
    return [(names.get(k, k.title()), v) for k, v in sorted(message.links.items(), key=lambda kv: order.get(kv[0], 9))]


def group_lines(message: Message) -> list[str]:
    """One line per member of a grouped message (empty for a single message)."""
    return [str(m.get("title", "")) for m in message.details.get("group") or []]
