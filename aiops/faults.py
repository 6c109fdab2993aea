"""Named crash points at the commit boundaries of an incident's life and of a model registry write.

Why in the product and not only in the tests: the claim "a SIGKILL at any commit boundary loses nothing and
repeats nothing" can only be tested on the real daemon process, killed exactly after a given commit. The
command line (``aiops run``) arms the point named in ``AIOPS_FAULT_POINT`` once; nothing else reads the
environment, so an embedded daemon or a unit test is never armed by accident. Unarmed, :func:`point` is one
comparison.

``AIOPS_FAULT_POINT=action.finished`` kills the process with SIGKILL right after the first commit of that
name; ``action.finished:3`` the third time. The registry's points (``promote:replaced``, ...) sit between
the filesystem calls of a registry write, where "SIGKILL at a random moment" would rarely land.
"""

from __future__ import annotations

import os
import signal
from typing import Any

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
    "notification.delivered",  # the receiver answered 2xx, the row not yet marked sent: the one resend window
    "notification.sent",  # an outbox row marked sent
)

#: The model registry's points (:mod:`aiops.registry`), in the order of a registration, a promotion and a
#: rollback; ``tmp-written``/``replaced`` bracket the atomic replace that moves the aliases.
REGISTRY_POINTS = (
    "register:start",
    "register:artefact-written",
    "register:meta-written",
    "register:committed",
    "promote:start",
    "promote:tmp-written",
    "promote:replaced",
    "rollback:start",
    "rollback:tmp-written",
    "rollback:replaced",
)

_armed: tuple[str, int] | None = None
_hits: dict[str, int] = {}


def _log() -> Any:
    """The module's logger, made when a point is armed: unarmed (every process but a crash-safety test) this
    module is imported by the model registry, and importing structlog would cost every CLI call ~0.2 s."""
    import structlog

    return structlog.get_logger("aiops.faults")


def arm(spec: str | None) -> None:
    """Arm one point: ``NAME`` or ``NAME:N`` (the N-th time it is reached); empty disarms."""
    global _armed
    _hits.clear()
    if not spec:
        _armed = None
        return
    name, _, count = spec.rpartition(":")
    if not count.isdigit():  # registry point names contain ':' themselves; only a trailing number is a count
        name, count = spec, ""
    if name not in POINTS and name not in REGISTRY_POINTS:
        _armed = None  # not a point of this version: nothing to arm (a typo must not kill anything)
        return
    _armed = (name, int(count) if count else 1)
    _log().warning("fault point armed: this process will kill itself there", point=spec)


def point(name: str, check: str | None = None) -> None:
    """A commit boundary was just crossed: die here if this point is armed (crash-safety tests only)."""
    if _armed is None or _armed[0] != name:
        return
    _hits[name] = _hits.get(name, 0) + 1
    if _hits[name] < _armed[1]:
        return
    _log().warning("fault point reached: SIGKILL", point=name, check=check)
    os.kill(os.getpid(), signal.SIGKILL)
