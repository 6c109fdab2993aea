"""Signed approve/deny links for actions in ``approve`` mode, so a person can decide from the alert itself.

A link carries the action id, the decision and an expiry, signed with HMAC-SHA256 under a key derived from
the API token (which never leaves the daemon). Opening the link (GET) only shows a confirmation page — chat
tools prefetch links, and a prefetch must never approve anything — and the page's button POSTs the same
signed query to take the decision.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from urllib.parse import urlencode

LINK_TTL = 24 * 3600.0


def _key(token: str) -> bytes:
    return hmac.new(token.encode(), b"aiops approval links v1", hashlib.sha256).digest()


def sign_message(token: str, message: str) -> str:
    """HMAC-SHA256 (hex) of a link's ``message`` under the key derived from the API token.

    Shared by every signed link (approvals here, verdicts in :mod:`aiops.verdict_links`); each kind of link
    signs a message of its own shape, so a signature of one kind never validates a link of another.
    """
    return hmac.new(_key(token), message.encode(), hashlib.sha256).hexdigest()


def check_signed(token: str, message: str, expiry: int, sig: str, *, now: float | None = None) -> str | None:
    """None when ``sig`` signs ``message`` and ``expiry`` has not passed, else why not."""
    # Bytes, not str: compare_digest raises TypeError on a non-ASCII str, and a link is attacker-supplied.
    given = sig.encode("utf-8", "replace")
    if not hmac.compare_digest(sign_message(token, message).encode(), given):
        return "bad signature"
    if (time.time() if now is None else now) > expiry:
        return "link expired"
    return None


def parse_expiry(expires: str) -> int | None:
    """The expiry of a link's query as epoch seconds, or None when it is not a plain number."""
    if not (expires.isascii() and expires.isdigit() and len(expires) <= 12):
        return None
    return int(expires)


def _signature(token: str, action_id: int, decision: str, expires: int) -> str:
    return sign_message(token, f"{action_id}:{decision}:{expires}")


def signed_path(token: str, action_id: int, decision: str, *, now: float | None = None, ttl: float = LINK_TTL) -> str:
    """``/decide/ID?decision=approve&expires=T&sig=HEX``.

    >>> p = signed_path("t", 7, "approve", now=1000.0)
    >>> p.startswith("/decide/7?decision=approve&expires=87400&sig=")
    True
    """
    if decision not in ("approve", "deny"):
        raise ValueError("decision must be approve or deny")
    expires = int((time.time() if now is None else now) + ttl)
    query = urlencode(
        {"decision": decision, "expires": expires, "sig": _signature(token, action_id, decision, expires)}
    )
    return f"/decide/{action_id}?{query}"


def verify(
    token: str, action_id: int, decision: str, expires: str, sig: str, *, now: float | None = None
) -> str | None:
    """None when the link is valid, else why not (expired, tampered).

    >>> from urllib.parse import parse_qs, urlsplit
    >>> q = {k: v[0] for k, v in parse_qs(urlsplit(signed_path("t", 7, "deny", now=0.0)).query).items()}
    >>> verify("t", 7, q["decision"], q["expires"], q["sig"], now=10.0) is None
    True
    >>> verify("t", 8, q["decision"], q["expires"], q["sig"], now=10.0)
    'bad signature'
    >>> verify("t", 7, q["decision"], q["expires"], q["sig"], now=1e9)
    'link expired'
    >>> verify("t", 7, q["decision"], q["expires"], "é" * 64, now=10.0)
    'bad signature'
    """
    if decision not in ("approve", "deny"):
        return "bad decision"
    expiry = parse_expiry(expires)
    if expiry is None:
        return "bad expiry"
    return check_signed(token, f"{action_id}:{decision}:{expiry}", expiry, sig, now=now)
