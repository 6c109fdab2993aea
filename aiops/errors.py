"""One exception hierarchy, rooted at :class:`AiopsError`.

Every error that can cross a stage boundary says whether a retry can help (``recoverable``), so that the
retry loops (outbox, ledger, scheduler) never have to guess from a message string.
"""

from __future__ import annotations


class AiopsError(Exception):
    """Base of every error aiops raises on purpose; the CLI turns it into one line and exit 1."""

    recoverable: bool = False
    reason: str = "error"

    def __init__(self, message: str, *, recoverable: bool | None = None, reason: str | None = None) -> None:
        super().__init__(message)
        if recoverable is not None:
            self.recoverable = recoverable
        if reason is not None:
            self.reason = reason


class ConfigError(AiopsError):
    """The configuration is invalid; carries every problem found, each with file and line."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(self.problems) if self.problems else "invalid configuration")


class PluginNotFound(AiopsError):
    """No entry point of that name in that group; the message lists the names that exist."""

    def __init__(self, group: str, name: str, known: list[str]) -> None:
        self.group, self.name, self.known = group, name, sorted(known)
        kind = group.split(".")[-1].rstrip("s")
        listed = ", ".join(self.known) or "none installed"
        super().__init__(f"unknown {kind} {name!r}; known: {listed}")


class SourceError(AiopsError):
    """Collecting telemetry failed. ``recoverable`` is true when the next tick may well succeed."""

    recoverable = True
    reason = "source_unavailable"


class DetectorError(AiopsError):
    """A detector could not evaluate a frame (bad parameters, unusable state)."""


class RemediationError(AiopsError):
    """A remediation failed. Only recoverable ones are retried under the same idempotency key."""


class PlanRefused(RemediationError):
    """A remediation refuses to plan with this incident's data: a templated value failed its rules (it
    starts with ``-``, does not fit its ``match`` pattern, ...). The engine holds the action and writes the
    reason on the incident: the data is suspect, not the action, so neither a retry nor the next rung is
    the answer; a person is."""

    reason = "plan_refused"


class DeliveryError(AiopsError):
    """A notification could not be delivered.

    ``retry_after`` carries the receiver's ``Retry-After`` (seconds) when it gave one.
    """

    def __init__(
        self,
        message: str,
        *,
        recoverable: bool = True,
        reason: str = "delivery_failed",
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message, recoverable=recoverable, reason=reason)
        self.retry_after = retry_after


class StoreError(AiopsError):
    """The durable store is unreachable or inconsistent."""

    recoverable = True
    reason = "store"


class InvalidInput(ValueError):
    """A request's body or parameter that its schema refuses; ``field`` is the dotted path at fault.

    A ValueError (not an :class:`AiopsError`) because it is raised by pure validation code that callers
    outside the daemon (a parser used in a script) already treat as bad input.
    """

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(f"{field}: {message}" if field else message)
        self.field = field


class LeaseLost(AiopsError):
    """A write carried a fencing token older than its lease's current one: another replica took the check (or
    the singleton job) over, so this replica's decision is discarded whole. Never retried: the new owner
    decides from now on."""

    recoverable = False
    reason = "lease_lost"
