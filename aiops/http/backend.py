"""What the HTTP API needs from the daemon, as a Protocol, so the server can be tested against a fake.

The server never reaches into the engine or the store: every route is one call on this interface. The
daemon implements it; methods are called from the server's worker threads, concurrently, so an
implementation must be thread-safe (the store's sessions and the engine's locks already are).

Errors: a method raises :class:`aiops.errors.AiopsError` to refuse. ``reason="not_found"`` answers 404,
``reason="invalid"`` (or ``"bad_request"``) answers 400, any other reason answers 409 (the request is
understood but conflicts with the current state, e.g. approving an action that already ran); a
:class:`aiops.errors.StoreError` answers 503 without its message. The message of any other refusal is shown to
the caller, so it must not contain secrets (a message quoting SQL or a traceback is replaced by a generic one,
and absolute paths are cut to their last part, see :func:`aiops.http.problems.public_message`).
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable


@runtime_checkable
class ApiBackend(Protocol):
    """The daemon as the HTTP API sees it. Dicts returned must be JSON-serialisable."""

    def ready(self) -> tuple[bool, str]:
        """(True, "") once config is loaded, store reachable, scheduler running; else (False, why)."""
        ...

    def list_incidents(self, state: str | None, limit: int) -> list[dict[str, Any]]:
        """Newest first; ``state=None`` means every state."""
        ...

    def get_incident(self, incident_id: int) -> dict[str, Any] | None:
        """One incident with its ``transitions`` (audit trail) and ``actions``; None when unknown."""
        ...

    def acknowledge(self, incident_id: int, actor: str, comment: str) -> dict[str, Any]:
        """Mark an incident acknowledged by a person; returns the updated incident."""
        ...

    def silence(self, incident_id: int, actor: str, duration_seconds: float, comment: str) -> dict[str, Any]:
        """Silence an incident's notifications for ``duration_seconds``; returns the updated incident."""
        ...

    def approve(self, action_id: int, actor: str, approved: bool) -> dict[str, Any]:
        """Approve (or deny, ``approved=False``) an action awaiting approval; returns the updated action."""
        ...

    def list_actions(self, state: str | None, limit: int) -> list[dict[str, Any]]:
        """Ledger entries, newest first; ``state=None`` means every state."""
        ...

    def reload(self) -> tuple[bool, str]:
        """Reload the configuration; (False, why) keeps the old one running."""
        ...

    def set_paused(self, paused: bool, actor: str) -> None:
        """Turn the global kill switch on or off."""
        ...

    def paused(self) -> bool:
        """Whether the global kill switch is on."""
        ...


@runtime_checkable
class IngestBackend(Protocol):
    """The push endpoints' view of the daemon (``POST /api/v1/ingest`` and ``/api/v1/alertmanager``).

    A separate Protocol so that a backend without a store (a test fake of :class:`ApiBackend`) still serves
    every other route; the server answers 501 for the push endpoints then.
    """

    def append_events(self, rows: list[dict[str, Any]]) -> dict[str, Any]:
        """Durably store validated rows (see :mod:`aiops.sources.ingest`) in one transaction, then return a
        summary such as ``{"accepted": n, "first_id": ..., "last_id": ...}``."""
        ...


@runtime_checkable
class FeedbackBackend(Protocol):
    """Operators' verdicts and remediation effectiveness (``/api/v1/incidents/{id}/verdict``,
    ``/api/v1/verdicts``, ``/api/v1/effectiveness`` and the signed verdict links).

    Separate, like :class:`IngestBackend`, so a backend without a store still serves every other route (the
    server answers 501 for these). :class:`aiops.feedback.Feedback` implements it over a store.
    """

    def record_verdict(self, incident_id: int, verdict: str, actor: str, comment: str) -> dict[str, Any]:
        """Mark an incident useful or noise; returns the stored verdict. ``not_found`` for an unknown id."""
        ...

    def record_missed(self, check: str, starts_at: float, ends_at: float, actor: str, comment: str) -> dict[str, Any]:
        """Record that ``check`` missed a problem in that window; ``invalid`` for an unknown check."""
        ...

    def list_verdicts(self, check: str | None, verdict: str | None, limit: int) -> list[dict[str, Any]]:
        """Verdicts newest first, optionally of one check and one kind."""
        ...

    def effectiveness(self, since: float) -> list[dict[str, Any]]:
        """Per action type and target: runs, healed, heal ratio, median time to heal, escalations."""
        ...


@runtime_checkable
class ClusterBackend(Protocol):
    """The replicas sharing the daemon's store (``GET /api/v1/cluster``); separate like :class:`IngestBackend`,
    so a backend without a store answers 501 there. The daemon's :class:`~aiops.cluster.membership.Membership`
    is the implementation."""

    @property
    def membership(self) -> MembershipView: ...


@runtime_checkable
class LeaseHolder(Protocol):
    """A replica that holds check leases (the daemon's :class:`~aiops.cluster.leases.Leases`): the cluster
    endpoint also says which replica answered and which checks it runs."""

    @property
    def leases(self) -> LeaseView: ...


@runtime_checkable
class LeaseView(Protocol):
    @property
    def replica(self) -> str: ...

    def owned(self) -> list[str]:
        """The checks this replica holds the lease of, sorted."""
        ...


@runtime_checkable
class MembershipView(Protocol):
    def view(self) -> list[dict[str, Any]]:
        """Every registered replica with its heartbeat age and whether it is alive."""
        ...
