"""Signed "useful" / "noise" links in every notification, so an on-call engineer can judge a page from the
page itself, without a login or the CLI.

Same scheme as the approval links (:mod:`aiops.approval_links`): the incident id, the verdict and an expiry,
signed with HMAC-SHA256 under the key derived from the API token; opening the link (GET) only shows a
confirmation page (chat tools prefetch links, and a prefetch must never record anything), whose button POSTs
the same signed query. The signed message starts with ``verdict:``, so an approval link's signature never
validates a verdict link, nor the other way round. A verdict is often given after the fact (the noise is
obvious only the next morning), so these links live a week.
"""

from __future__ import annotations

import time
from typing import Final
from urllib.parse import urlencode

from aiops.approval_links import check_signed, parse_expiry, sign_message

VERDICT_LINK_TTL: Final = 7 * 86400.0
LINK_VERDICTS: Final = ("useful", "noise")  # "missed" has no incident, hence no message to carry a link


def _message(incident_id: int, verdict: str, expires: int) -> str:
    return f"verdict:{incident_id}:{verdict}:{expires}"


def signed_path(
    token: str, incident_id: int, verdict: str, *, now: float | None = None, ttl: float = VERDICT_LINK_TTL
) -> str:
    """``/verdict/ID?verdict=noise&expires=T&sig=HEX``.

    >>> signed_path("t", 7, "noise", now=1000.0).startswith("/verdict/7?verdict=noise&expires=605800&sig=")
    True
    """
    if verdict not in LINK_VERDICTS:
        raise ValueError(f"verdict must be one of {', '.join(LINK_VERDICTS)}")
    expires = int((time.time() if now is None else now) + ttl)
    sig = sign_message(token, _message(incident_id, verdict, expires))
    return f"/verdict/{incident_id}?" + urlencode({"verdict": verdict, "expires": expires, "sig": sig})


def verify(
    token: str, incident_id: int, verdict: str, expires: str, sig: str, *, now: float | None = None
) -> str | None:
    """None when the link is valid, else why not (bad verdict, expired, tampered).

    >>> from urllib.parse import parse_qs, urlsplit
    >>> q = {k: v[0] for k, v in parse_qs(urlsplit(signed_path("t", 7, "useful", now=0.0)).query).items()}
    >>> verify("t", 7, "useful", q["expires"], q["sig"], now=10.0) is None
    True
    >>> verify("t", 7, "noise", q["expires"], q["sig"], now=10.0)
    'bad signature'
    >>> verify("t", 7, "useful", q["expires"], q["sig"], now=1e9)
    'link expired'
    """
    if verdict not in LINK_VERDICTS:
        return "bad verdict"
    expiry = parse_expiry(expires)
    if expiry is None:
        return "bad expiry"
    return check_signed(token, _message(incident_id, verdict, expiry), expiry, sig, now=now)


def verdict_links(base_url: str, token: str, incident_id: int, *, now: float | None = None) -> dict[str, str]:
    """``{"useful": URL, "noise": URL}`` for a message about incident ``incident_id``.

    >>> sorted(verdict_links("https://aiops.example", "t", 3))
    ['noise', 'useful']
    """
    base = base_url.rstrip("/")
    return {verdict: base + signed_path(token, incident_id, verdict, now=now) for verdict in LINK_VERDICTS}
