"""The base class of remediations."""

from __future__ import annotations

from abc import abstractmethod

from aiops.plugins.base import Plugin
from aiops.types import ActionContext, IncidentView, Outcome, Plan


class Remediation(Plugin):
    """Acts on an incident. ``plan`` is pure; ``execute`` is idempotent under ``ctx.idempotency_key``.

    A remediation is built fresh for each execution (and started with the daemon's context), so nothing
    leaks from one execution into the next.
    """

    @abstractmethod
    def plan(self, incident: IncidentView) -> Plan:
        """What would be done, shown in dry runs and approval requests; no side effect."""

    @abstractmethod
    def execute(self, plan: Plan, ctx: ActionContext) -> Outcome:
        """Do it. Save a handle (``ctx.save_handle``) before the side effect when a crash could leave it
        running, so :meth:`resume` can find out how it ended."""

    def resume(self, plan: Plan, ctx: ActionContext) -> Outcome | None:
        """After a crash, for an execution that had saved a handle: the outcome if the handle proves how the
        execution ended (or waits for it to end), or None when it cannot know, in which case the ledger
        marks the execution ``failed: interrupted`` rather than risk running it twice. Default: None."""
        return None
