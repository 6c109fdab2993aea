"""Constant-time token comparison, shared by the API's bearer check and the console's login form.

Why one function: both must compare bytes (a non-ASCII header or form value never raises) in constant time,
and a second hand-written comparison is where a timing leak or an ``==`` would creep in.
"""

from __future__ import annotations

import hmac


def tokens_match(given: bytes, token: str) -> bool:
    """Whether ``given`` is the configured ``token``, compared in constant time."""
    return hmac.compare_digest(given, token.encode())
