"""Telling the serving side that the champion moved: an HTTP hook or a command.

Shared by ``retrain`` and ``rollback``. A reload is idempotent by nature (load whatever the alias points at
now), so after a crash it is simply sent again; the ``Idempotency-Key`` header lets a server that cares
drop the duplicate.
"""

from __future__ import annotations

import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import requests

from aiops.http_outcome import classify_error, classify_status
from aiops.redact import redact_url


@dataclass(frozen=True)
class ReloadFailure:
    """Why serving was not told; ``retryable`` when the hook's answer says a later try may work (503, a
    refused connection...: :mod:`aiops.http_outcome`'s rule), so the action is retried under its key."""

    reason: str
    retryable: bool = False


def reload_serving(
    *,
    url: str | None,
    argv: Sequence[str] | None,
    payload: Mapping[str, Any],
    key: str,
    timeout: float,
) -> ReloadFailure | None:
    """Call the reload hook(s); returns None on success, else what failed (secrets redacted)."""
    if url:
        try:
            resp = requests.post(
                url, json=dict(payload), headers={"Idempotency-Key": key}, timeout=timeout, allow_redirects=False
            )
        except requests.RequestException as exc:
            unreachable = f"reload hook {redact_url(url)} unreachable: {exc.__class__.__name__}"
            return ReloadFailure(unreachable, classify_error(exc).retryable)
        with resp:
            outcome = classify_status(resp.status_code, resp.headers)
        if not outcome.ok:
            return ReloadFailure(f"reload hook {redact_url(url)} answered {resp.status_code}", outcome.retryable)
    if argv:
        rendered = [str(a).format_map(_Safe(payload)) for a in argv]
        try:
            done = subprocess.run(rendered, capture_output=True, timeout=timeout, check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            return ReloadFailure(f"reload command failed: {exc.__class__.__name__}")
        if done.returncode != 0:
            stderr = done.stderr.decode(errors="replace")[-200:]
            return ReloadFailure(f"reload command exited {done.returncode}: {stderr}")
    return None


class _Safe(dict[str, Any]):
    """``str.format_map`` mapping that leaves unknown ``{placeholders}`` as they are."""

    def __init__(self, data: Mapping[str, Any]) -> None:
        super().__init__({k: v for k, v in data.items()})

    def __missing__(self, key: str) -> str:
        return "{" + key + "}"
