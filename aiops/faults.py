"""Named crash points at the commit boundaries of an incident's life, for the crash-safety tests.

Why in the product and not only in the tests: the claim "a SIGKILL at any commit boundary loses nothing and
repeats nothing" can only be tested on the real daemon process, killed exactly after a given commit. The
entry points (``aiops run``) call :func:`arm_from_env` once; nothing else reads the environment, so an
embedded daemon or a unit test is never armed by accident. Unarmed, :func:`point` is one comparison.

``AIOPS_FAULT_POINT=action.finished`` kills the process with SIGKILL right after the first commit of that
name; ``action.finished@latency`` only when the point is reached for the check ``latency``.
"""

from __future__ import annotations

import os
import signal

import structlog

log = structlog.get_logger("aiops.faults")

ENV = "AIOPS_FAULT_POINT"

#: Every point the engine declares, in the order of an incident's life.
POINTS = (
    "incident.pending",  # opened, for-duration not met yet
    "incident.firing",  # firing, with its firing message in the outbox
    "action.planned",  # ledger row written; auto: incident remediating; approve: approval message queued
    "action.approved",  # a person's approval recorded
    "action.claimed",  # pending -> running claimed; the incident remediating
    "action.handle_saved",  # the remediation's resume handle saved, the side effect not yet allowed to start
    "action.finished",  # the action's final state and the incident's transition (verifying / next rung)
    "incident.resolved",  # resolved, with its resolved message in the outbox
    "notification.sent",  # an outbox row marked sent
)

_armed: tuple[str, str | None] | None = None


def arm(spec: str | None) -> None:
    """Arm one point (``name`` or ``name@check``); an empty spec disarms. Unknown names are refused."""
    global _armed
    if not spec:
        _armed = None
        return
    name, _, check = spec.partition("@")
    if name not in POINTS:
        raise ValueError(f"{ENV}={spec!r}: unknown fault point; known: {', '.join(POINTS)}")
    _armed = (name, check or None)
    log.warning("fault point armed: this process will kill itself there", point=spec)


def arm_from_env() -> None:
    arm(os.environ.get(ENV, "").strip() or None)


def point(name: str, check: str | None = None) -> None:
    """A commit boundary was just crossed: die here if this point is armed (test builds only)."""
    if _armed is None or _armed[0] != name or (_armed[1] is not None and _armed[1] != check):
        return
    log.warning("fault point reached: SIGKILL", point=name, check=check)
    os.kill(os.getpid(), signal.SIGKILL)
