"""Deterministic crash points for fault-injection tests.

Why: "SIGKILL at a random moment" rarely lands inside the few microseconds between two filesystem calls
that matter. Each step of a registry operation calls :func:`point`; a test sets ``AIOPS_FAULT_POINT`` to
``NAME`` (or ``NAME:N`` for the N-th time it is reached) and the process SIGKILLs itself right there, exactly
as an OOM killer or a power cut would. Unset, a point costs one dict lookup.
"""

from __future__ import annotations

import os
import signal

_hits: dict[str, int] = {}


def point(name: str) -> None:
    """SIGKILL this process if ``AIOPS_FAULT_POINT`` names this point (and its hit count is reached)."""
    spec = os.environ.get("AIOPS_FAULT_POINT")
    if not spec:
        return
    target, _, count = spec.rpartition(":")
    if not count.isdigit():  # point names contain ':' themselves; only a trailing number is a count
        target, count = spec, ""
    if target != name:
        return
    _hits[name] = _hits.get(name, 0) + 1
    if _hits[name] >= (int(count) if count else 1):
        os.kill(os.getpid(), signal.SIGKILL)
