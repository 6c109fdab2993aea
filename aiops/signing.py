"""HMAC-SHA256 request signing shared by the webhook notifier and the webhook remediation.

Why: a receiver of aiops webhooks must be able to tell that a request came from this daemon and was not
replayed later by someone who captured it. The header carries the signing time, and the MAC covers the
time *and* the body (``f"{t}.".encode() + body``), the scheme Stripe and Slack use, so an old request cannot
be re-sent with a new timestamp. :func:`verify` compares in constant time and rejects stale timestamps.

Header format: ``X-Aiops-Signature: t=<unix seconds>,v1=<hex hmac>``; several ``v1=`` entries may be given
(a receiver accepts any), which lets a sender rotate secrets without downtime.

>>> header = sign(b"s3cret", b'{"event":"firing"}', 1700000000)
>>> header
't=1700000000,v1=7968948c97e4cc94cd4e1989daa839863ea993006a7ec58d3511c11c6181ca77'
>>> verify(b"s3cret", b'{"event":"firing"}', header, now=1700000042)
True
>>> verify(b"s3cret", b'{"event":"resolved"}', header, now=1700000042)  # body changed
False
>>> verify(b"s3cret", b'{"event":"firing"}', header, now=1700000000 + 3600)  # replayed an hour later
False
>>> verify(b"other", b'{"event":"firing"}', header, now=1700000042)
False
"""

from __future__ import annotations

import hashlib
import hmac
import time
from pathlib import Path

from aiops.errors import AiopsError

SIGNATURE_HEADER = "X-Aiops-Signature"
DEFAULT_TOLERANCE = 300.0


def _key(secret: bytes | str) -> bytes:
    return secret.encode() if isinstance(secret, str) else bytes(secret)


def _mac(secret: bytes | str, body: bytes, timestamp: int) -> str:
    return hmac.new(_key(secret), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


def sign(secret: bytes | str, body: bytes, timestamp: int) -> str:
    """The ``X-Aiops-Signature`` header value for ``body`` sent at ``timestamp`` (unix seconds).

    >>> sign(b"k", b"", 0)[:5]
    't=0,v'
    """
    ts = int(timestamp)
    return f"t={ts},v1={_mac(secret, body, ts)}"


def verify(
    secret: bytes | str,
    body: bytes,
    header: str | None,
    now: float,
    tolerance: float = DEFAULT_TOLERANCE,
) -> bool:
    """Whether ``header`` is a valid signature of ``body`` made within ``tolerance`` seconds of ``now``.

    Never raises on malformed input (a receiver must answer 401, not crash); compares in constant time.

    >>> verify(b"k", b"x", "garbage", now=0), verify(b"k", b"x", None, now=0)
    (False, False)
    >>> verify(b"k", b"x", sign(b"k", b"x", 100), now=100 - 299)  # small clock skew either way is fine
    True
    """
    if not header:
        return False
    timestamp: int | None = None
    candidates: list[str] = []
    for part in header.split(","):
        name, sep, value = part.strip().partition("=")
        if not sep:
            continue
        if name == "t":
            try:
                timestamp = int(value)
            except ValueError:
                return False
        elif name == "v1":
            candidates.append(value.strip().lower())
    if timestamp is None or not candidates:
        return False
    if abs(float(now) - timestamp) > tolerance:
        return False
    expected = _mac(secret, body, timestamp)
    ok = False
    for candidate in candidates:  # check every candidate so timing does not reveal which one matched
        ok = hmac.compare_digest(expected, candidate) or ok
    return ok


def signature_headers(secret: bytes | str | None, body: bytes, now: float | None = None) -> dict[str, str]:
    """``{X-Aiops-Signature: ...}`` for a body, or ``{}`` when no secret is configured.

    >>> signature_headers(None, b"{}")
    {}
    >>> list(signature_headers(b"k", b"{}", now=5))
    ['X-Aiops-Signature']
    """
    if not secret:
        return {}
    ts = int(time.time() if now is None else now)
    return {SIGNATURE_HEADER: sign(secret, body, ts)}


def load_secret(secret: str | None, secret_file: str | None) -> bytes | None:
    """The signing secret from the inline value or the file (read on every call, so a rotated secret file
    is picked up without a restart); trailing newlines in the file are ignored.

    Raises :class:`AiopsError` (not recoverable) without echoing the file's content when it is unreadable.

    >>> load_secret("abc", None), load_secret(None, None)
    (b'abc', None)
    """
    if secret:
        return secret.encode()
    if secret_file:
        try:
            data = Path(secret_file).read_bytes()
        except OSError as exc:
            raise AiopsError(
                f"cannot read secret_file {secret_file}: {exc.strerror or type(exc).__name__}",
                recoverable=False,
                reason="secret_file",
            ) from None
        data = data.rstrip(b"\r\n")
        if not data:
            raise AiopsError(f"secret_file {secret_file} is empty", recoverable=False, reason="secret_file")
        return data
    return None


def check_one_secret(secret: str | None, secret_file: str | None, name: str = "secret") -> None:
    """Refuse a configuration giving a secret both inline and as a file (which one would win is a guess).

    >>> check_one_secret("abc", None)
    >>> check_one_secret("abc", "/run/secrets/hook", "password")
    Traceback (most recent call last):
    ...
    ValueError: set either password or password_file, not both
    """
    if secret and secret_file:
        raise ValueError(f"set either {name} or {name}_file, not both")
