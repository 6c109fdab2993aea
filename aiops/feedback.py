"""Operators' verdicts and remediation effectiveness as the daemon serves them (the HTTP API's
:class:`~aiops.http.backend.FeedbackBackend`), over the store modules that keep and compute them.

Why a class of its own: the daemon only forwards to it (one line per endpoint), so the engine's facade stays
as it is, and the web console can call the same methods from its own routes.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from typing import Any

from aiops.effectiveness import effectiveness
from aiops.errors import AiopsError
from aiops.store import verdicts as v
from aiops.store.store import Store


def require_check(name: str, known: Collection[str]) -> None:
    """An :class:`AiopsError` (``invalid``) naming the known checks when ``name`` is not one of them.

    >>> require_check("cpu", ["cpu"])
    >>> require_check("cpx", ["cpu", "disk"])
    Traceback (most recent call last):
    ...
    aiops.errors.AiopsError: unknown check 'cpx'; known: cpu, disk
    """
    if name not in known:
        listed = ", ".join(sorted(known)) or "none configured"
        raise AiopsError(f"unknown check {name[:100]!r}; known: {listed}", reason="invalid")


class Feedback:
    """Verdicts and effectiveness over one store. ``known_checks`` is read on every call (a reload changes it)."""

    def __init__(self, store: Store, now: Callable[[], float], known_checks: Callable[[], Collection[str]]) -> None:
        self.store = store
        self.now = now
        self.known_checks = known_checks

    def record_verdict(self, incident_id: int, verdict: str, actor: str, comment: str) -> dict[str, Any]:
        return v.mark_incident(self.store, incident_id, verdict, actor=actor, comment=comment, now=self.now()).to_dict()

    def record_missed(self, check: str, starts_at: float, ends_at: float, actor: str, comment: str) -> dict[str, Any]:
        require_check(check, self.known_checks())
        recorded = v.mark_missed(self.store, check, starts_at, ends_at, actor=actor, comment=comment, now=self.now())
        return recorded.to_dict()

    def list_verdicts(self, check: str | None, verdict: str | None, limit: int) -> list[dict[str, Any]]:
        kind = v.VerdictKind.parse(verdict) if verdict else None
        return [r.to_dict() for r in v.list_verdicts(self.store, check=check, verdict=kind, limit=limit)]

    def effectiveness(self, since: float) -> list[dict[str, Any]]:
        return [e.to_dict() for e in effectiveness(self.store, since)]

    def with_verdicts(self, incidents: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """``incidents`` (dicts with an ``id``), each given its current ``verdict`` (the newest; None without
        one): what a list of incidents shows, with one query for the whole page."""
        history = v.verdicts_of_incidents(self.store, [int(i["id"]) for i in incidents])
        for item in incidents:
            given = history.get(int(item["id"]))
            item["verdict"] = given[-1].verdict.value if given else None
        return incidents

    def verdicts_of(self, incident_id: int) -> list[dict[str, Any]]:
        """Every verdict of one incident, oldest first (the last one counts): shown with the incident."""
        return [r.to_dict() for r in v.verdicts_of_incidents(self.store, [incident_id]).get(incident_id, [])]


class FeedbackFacade:
    """The :class:`~aiops.http.backend.FeedbackBackend` methods of a backend holding a :class:`Feedback` as
    ``self.feedback``: the daemon mixes this in, so each endpoint is one forwarding method."""

    feedback: Feedback

    def record_verdict(self, incident_id: int, verdict: str, actor: str, comment: str) -> dict[str, Any]:
        return self.feedback.record_verdict(incident_id, verdict, actor, comment)

    def record_missed(self, check: str, starts_at: float, ends_at: float, actor: str, comment: str) -> dict[str, Any]:
        return self.feedback.record_missed(check, starts_at, ends_at, actor, comment)

    def list_verdicts(self, check: str | None, verdict: str | None, limit: int) -> list[dict[str, Any]]:
        return self.feedback.list_verdicts(check, verdict, limit)

    def effectiveness(self, since: float) -> list[dict[str, Any]]:
        return self.feedback.effectiveness(since)
