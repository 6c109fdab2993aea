"""What an HTTP answer means for whoever sent the request: delivered, worth retrying (and when), or final.

Why one classifier: every notifier and every remediation that calls an HTTP endpoint asks the same question
of the answer, and when each answered it on its own the answers drifted (one retried 425, another did not
retry 408). Like Alertmanager's single retrier for every integration, the rule lives here once:

- 2xx: success.
- 429 (rate limited) and every 5xx: retryable; the receiver's ``Retry-After`` (delta-seconds or an HTTP
  date) says when.
- 408 (Request Timeout): retryable. The server gave up waiting for the request; RFC 9110 §15.5.9 says the
  client may repeat it, and nothing was processed.
- 425 (Too Early): retryable. RFC 8470 §5.2: the server refused to process a request sent as TLS early
  data and the client is expected to send it again (normal retries never use early data).
- Network failures (timeout, refused or reset connection): retryable; nothing says the request was wrong.
- Every other 4xx, and 3xx (redirects are not followed: they would carry a signed body elsewhere): final,
  because retrying sends the same wrong request.

The caller decides what to do with the record (raise a :class:`~aiops.errors.DeliveryError`, return a
recoverable :class:`~aiops.types.Outcome`, ...), but no caller decides again what is retryable.
"""

from __future__ import annotations

import email.utils
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass

import requests

#: 4xx answers that say "the same request, later, may succeed".
RETRYABLE_4XX = frozenset({408, 425, 429})
#: The longest ``Retry-After`` honoured: a receiver asking for more is treated as asking for a day.
MAX_RETRY_AFTER = 86400.0


@dataclass(frozen=True)
class HttpOutcome:
    """The meaning of one HTTP exchange: ``ok`` (2xx), else ``retryable`` or final, and the wait asked for.

    ``reason`` is a short stable token for logs and metrics: ``http_<status>``, ``timeout``, ``connection``
    or ``request``. ``status`` is None when no answer arrived. ``detail`` says what happened, for people
    (``HTTP 503``, ``timed out after 10s``; it may name a host: redact it like any message about the request).
    """

    ok: bool
    retryable: bool
    retry_after: float | None
    reason: str
    status: int | None = None
    detail: str = ""

    @property
    def redirect(self) -> bool:
        return self.status is not None and 300 <= self.status < 400


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


def is_retryable_status(status: int) -> bool:
    """429, 408, 425 and 5xx: the same request may succeed later."""
    return status >= 500 or status in RETRYABLE_4XX


def classify_status(status: int, headers: Mapping[str, str] | None = None, *, now: float | None = None) -> HttpOutcome:
    """The outcome of an answer with this status (``headers`` give ``Retry-After``; matched case-insensitively).

    >>> classify_status(503, {"retry-after": "7"})
    HttpOutcome(ok=False, retryable=True, retry_after=7.0, reason='http_503', status=503, detail='HTTP 503')
    >>> classify_status(404).retryable, classify_status(204).ok
    (False, True)
    """
    ok, retryable, retry_after = 200 <= status < 300, is_retryable_status(status), None
    if retryable:
        header = next((v for k, v in (headers or {}).items() if k.lower() == "retry-after"), None)
        retry_after = parse_retry_after(header, now)
    return HttpOutcome(ok, retryable, retry_after, reason=f"http_{status}", status=status, detail=f"HTTP {status}")


def classify_error(exc: requests.RequestException, timeout: float | None = None) -> HttpOutcome:
    """The outcome of a request that got no answer: timeouts and connection failures are retryable; any
    other ``requests`` error (an invalid URL, a body it cannot send) is final.

    >>> classify_error(requests.ReadTimeout(), timeout=5)
    HttpOutcome(ok=False, retryable=True, retry_after=None, reason='timeout', status=None, detail='timed out after 5s')
    """
    if isinstance(exc, requests.Timeout):
        after = f" after {timeout:g}s" if timeout is not None else ""
        return HttpOutcome(ok=False, retryable=True, retry_after=None, reason="timeout", detail=f"timed out{after}")
    if isinstance(exc, requests.ConnectionError):
        said = f"connection failed: {root_cause(exc)}"
        return HttpOutcome(ok=False, retryable=True, retry_after=None, reason="connection", detail=said)
    said = f"request failed: {type(exc).__name__}"
    return HttpOutcome(ok=False, retryable=False, retry_after=None, reason="request", detail=said)


def root_cause(exc: BaseException) -> str:
    """The innermost cause's class and message (e.g. ``ConnectionRefusedError: [Errno 111] ...``): what a
    person needs from the chain of wrappers ``requests`` and ``urllib3`` put around a socket error."""
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
