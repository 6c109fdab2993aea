"""Delivers the notification outbox: every message is a row before it is sent, retried with exponential
backoff and jitter (or the receiver's Retry-After), and marked failed only when the receiver's answer
means a retry cannot help (400, 403, 404, 410, ...). Delivery is at-least-once across restarts; each
message carries a dedup key so receivers can drop the rare duplicate.
"""

from __future__ import annotations

import random
from collections.abc import Callable

import structlog

from aiops.engine.messages import payload_to_message
from aiops.engine.runtime import Runtime
from aiops.errors import DeliveryError
from aiops.redact import redact
from aiops.store.store import Store

log = structlog.get_logger("aiops.outbox")


def backoff_delay(attempts: int, *, base: float = 2.0, cap: float = 300.0, rng: random.Random | None = None) -> float:
    """Full-jitter exponential backoff: uniform in [base*2^(n-1)/2, base*2^(n-1)], capped.

    >>> 1.0 <= backoff_delay(1, rng=random.Random(0)) <= 2.0
    True
    >>> backoff_delay(30, rng=random.Random(0)) <= 300.0
    True
    """
    rng = rng or random.Random()
    ceiling = min(cap, base * (2 ** max(0, attempts - 1)))
    return rng.uniform(ceiling / 2, ceiling)


class OutboxDispatcher:
    def __init__(
        self,
        store: Store,
        runtime_ref: Callable[[], Runtime],
        now: Callable[[], float],
        *,
        on_result: Callable[[str, str], None] | None = None,
        max_attempts: int = 50,
    ) -> None:
        self.store = store
        self.runtime_ref = runtime_ref
        self.now = now
        self.on_result = on_result
        self.max_attempts = max_attempts

    def tick(self) -> int:
        """Send what is due, in order; returns how many were sent."""
        sent = 0
        runtime = self.runtime_ref()
        secrets = runtime.config.secrets
        blocked: set[str] = set()  # one failing receiver must not reorder its own messages
        for row in self.store.due_notifications(self.now()):
            name = str(row["notifier"])
            if name in blocked:
                continue
            notifier = runtime.notifiers.get(name)
            now = self.now()
            if notifier is None:
                self.store.update_notification(
                    int(row["id"]), {"state": "failed", "last_error": f"notifier {name!r} is not configured any more"}
                )
                self._result(name, "failed")
                continue
            try:
                notifier.send(payload_to_message(row["payload"]))
            except DeliveryError as exc:
                attempts = int(row["attempts"]) + 1
                error = redact(str(exc), secrets)
                if not exc.recoverable or attempts >= self.max_attempts:
                    self.store.update_notification(
                        int(row["id"]), {"state": "failed", "attempts": attempts, "last_error": error}
                    )
                    log.error(
                        "notification failed for good",
                        notifier=name,
                        kind=row["event"],
                        reason=exc.reason,
                        error=error,
                    )
                    self._result(name, "failed")
                else:
                    delay = max(exc.retry_after or 0.0, backoff_delay(attempts))
                    self.store.update_notification(
                        int(row["id"]), {"attempts": attempts, "last_error": error, "next_attempt_at": now + delay}
                    )
                    log.warning(
                        "notification will be retried",
                        notifier=name,
                        kind=row["event"],
                        attempt=attempts,
                        retry_in=round(delay, 2),
                        error=error,
                    )
                    self._result(name, "retry")
                blocked.add(name)
                continue
            except Exception as exc:  # a notifier bug: retry later, never drop, never crash the loop
                attempts = int(row["attempts"]) + 1
                error = redact(f"{exc.__class__.__name__}: {exc}", secrets)
                self.store.update_notification(
                    int(row["id"]),
                    {"attempts": attempts, "last_error": error, "next_attempt_at": now + backoff_delay(attempts)},
                )
                log.error("notifier raised", notifier=name, error=error)
                self._result(name, "retry")
                blocked.add(name)
                continue
            self.store.update_notification(
                int(row["id"]),
                {"state": "sent", "attempts": int(row["attempts"]) + 1, "sent_at": now, "last_error": None},
            )
            self._result(name, "sent")
            sent += 1
        return sent

    def _result(self, notifier: str, outcome: str) -> None:
        if self.on_result is not None:
            self.on_result(notifier, outcome)
