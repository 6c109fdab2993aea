"""What a failed HTTP read means for a source: the :mod:`aiops.http_outcome` rule, worded for a check.

Why the shared classifier here too: whether the next tick may succeed is the same question a notifier asks
of an answer (429, 408, 425 and 5xx: yes; another 4xx: the same query fails again), and answering it per
source made the sources drift from each other and from the notifiers.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import requests
import requests.adapters
import requests.utils
from urllib3.connectionpool import ConnectionPool

from aiops.errors import SourceError
from aiops.http_outcome import classify_error, classify_status
from aiops.redact import redact


def request_failed(where: str, exc: requests.RequestException, timeout: float) -> SourceError:
    """A request that got no answer. Timeouts and connection failures are recoverable; a TLS failure is not
    (a certificate or CA problem is configuration, it does not pass with time), nor a request that could
    not be sent at all."""
    if isinstance(exc, requests.exceptions.SSLError):
        return SourceError(f"{where}: TLS error: {redact(str(exc))[:300]}", recoverable=False)
    outcome = classify_error(exc, timeout)
    said = f"no answer within {timeout:g}s" if outcome.reason == "timeout" else f"{type(exc).__name__}: {exc}"
    return SourceError(f"{where}: {redact(said)[:300]}", recoverable=outcome.retryable)


def answer_failed(where: str, response: requests.Response, what: str = "") -> SourceError | None:
    """None for a 2xx answer, else why it failed: 401/403 name the credentials, and the rest is recoverable
    exactly when :func:`~aiops.http_outcome.classify_status` calls it retryable. ``what`` adds what the
    body was not (e.g. ``", not a Prometheus answer"``)."""
    status = response.status_code
    if status in (401, 403):
        return SourceError(f"{where}: HTTP {status}: check the credentials", recoverable=False)
    outcome = classify_status(status, response.headers)
    if outcome.ok:
        return None
    return SourceError(f"{where}: HTTP {status}{what}: {redact(response.text[:200])!r}", recoverable=outcome.retryable)


def settle_environment(session: requests.Session, url: str, verify: bool | str) -> dict[str, Any]:
    """Read what the environment says about requests to ``url`` once, for a session that polls it every tick:
    returns the ``proxies`` and ``verify`` to pass with each request, and sets the session's ``.netrc``
    credentials (a request's own ``auth`` still wins) and ``trust_env = False``.

    Why once: with ``trust_env`` requests reads the proxy variables (decoding the whole environment) and
    looks for a ``.netrc`` file on every request, about half the CPU of polling a local JSON endpoint. A
    daemon's environment does not change while it runs; a reload builds new sources, which read it again.
    """
    settings = session.merge_environment_settings(url, {}, None, verify, None)
    if session.auth is None:
        session.auth = requests.utils.get_netrc_auth(url)
    session.trust_env = False
    return {"proxies": settings["proxies"], "verify": settings["verify"]}


class OneUrlAdapter(requests.adapters.HTTPAdapter):
    """The transport of a session that polls the same URL, with the same TLS and proxy settings, every tick:
    the urllib3 connection pool of each URL is looked up once, not on every request.

    Why: requests finds the pool for every request (parsing the URL, normalising a pool key of a dozen fields,
    the pool manager's lookup under its lock), about 7 % of the CPU of a check run polling a local endpoint.
    Only valid for a session whose requests all pass the same ``verify``, ``proxies`` and ``cert`` (a source
    settles them once, see :func:`settle_environment`); a pool the pool manager closed is looked up again."""

    KEEP = 8  # URLs remembered (the polled one, and where it redirects to)

    def __init__(self) -> None:
        super().__init__()
        self._pools: dict[str | None, ConnectionPool] = {}

    def get_connection_with_tls_context(
        self,
        request: requests.PreparedRequest,
        verify: bool | str | None,
        proxies: Mapping[str, str] | None = None,
        cert: Any = None,
    ) -> ConnectionPool:
        pool = self._pools.get(request.url)
        if pool is None or getattr(pool, "pool", None) is None:  # an HTTP(S) pool's queue is None once closed
            pool = super().get_connection_with_tls_context(request, verify, proxies=proxies, cert=cert)
            if len(self._pools) < self.KEEP:
                self._pools[request.url] = pool
        return pool
