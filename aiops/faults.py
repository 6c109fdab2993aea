"""Named crash points at the commit boundaries of an incident's life, for the crash-safety tests.

Why in the product and not only in the tests: the claim "a SIGKILL at any commit boundary loses nothing and
repeats nothing" can only be tested on the real daemon process, killed exactly after a given commit. The
entry points (``aiops run``) call :func:`arm_from_env` once; nothing else reads the environment, so an
embedded daemon or a unit test is never armed by accident. Unarmed, :func:`point` is one comparison.

``AIOPS_FAULT_POINT=action.finished`` kills the process with SIGKILL right after the first commit of that
name; ``action.finished:3`` the third time. The variable and its syntax are shared with the remediation
plugins' own points (``aiops_remediations.faults``, e.g. ``promote:replaced``): a name the engine does not
declare is left to them.
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

_armed: tuple[str, int] | None = None
_hits: dict[str, int] = {}


def arm(spec: str | None) -> None:
    """Arm one point: ``NAME`` or ``NAME:N`` (the N-th time it is reached); empty disarms."""
    global _armed
    _hits.clear()
    if not spec:
        _armed = None
        return
    name, _, count = spec.rpartition(":")
    if not count.isdigit():  # plugin point names contain ':' themselves; only a trailing number is a count
        name, count = spec, ""
    if name not in POINTS:
        _armed = None  # a plugin's point (same variable): not the engine's business
        return
    _armed = (name, int(count) if count else 1)
    log.warning("fault point armed: this process will kill itself there", point=spec)


def arm_from_env() -> None:
    arm(os.environ.get(ENV, "").strip() or None)


def point(name: str, check: str | None = None) -> None:
    """A commit boundary was just crossed: die here if this point is armed (crash-safety tests only)."""
    if _armed is None or _armed[0] != name:
        return
    _hits[name] = _hits.get(name, 0) + 1
    if _hits[name] < _armed[1]:
        return
    log.warning("fault point reached: SIGKILL", point=name, check=check)
    os.kill(os.getpid(), signal.SIGKILL)
