"""Delivers the notification outbox: every message is a row before it is sent, retried with exponential
backoff and jitter (or the receiver's Retry-After), and marked failed only when the receiver's answer
means a retry cannot help (400, 403, 404, 410, ...).

Delivery is at least once, and a message is sent a second time in one case only: its sender died (SIGKILL,
power loss) after the receiver got it and before the ``sent`` record committed. Everything else that could
send a row twice is closed here: a row is claimed before it is sent, and the claim of a sender that is alive
is never taken (not even once it expired: a sender with a fresh heartbeat keeps it); a sent row is recorded
as sent in the one UPDATE right after the receiver's 2xx, and when that record fails the process remembers
the delivery and records it before anything else instead of sending it again; one process runs one tick at a
time. Each attempt of a message carries the same idempotency key (``Idempotency-Key`` header, email
Message-ID), so a receiver can drop the copy that the one remaining case sends.

One tick is a small pipeline, in the spirit of Alertmanager's notification stages:

1. close flapping episodes that went quiet (one ``resolved`` message each);
2. queue repeats of still-firing messages whose repeat interval (growing by ``repeat_backoff``) elapsed;
3. flush groups whose ``group_wait``/``group_interval`` elapsed into one message (the oldest member carries
   it, so it keeps the queue position of its first message);
4. walk pending rows oldest first: a receiver whose oldest row is not due yet (backoff, Retry-After) or
   whose rate limit (``min_interval`` of the notifier, e.g. Slack's ~1 message/s) is spent sends nothing
   more this tick, which keeps every receiver's messages, and so every incident's, in order; silenced
   messages are recorded as ``silenced`` and resolve messages whose firing never went out as ``suppressed``;
5. after a send, record it in the notification log that drives repeats.
"""

from __future__ import annotations

import random
import re
import threading
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any

import structlog

from aiops import faults
from aiops.engine import flapping
from aiops.engine.messages import incident_view
from aiops.engine.routing import flap_closed_payload, outbox_row
from aiops.engine.runtime import Runtime
from aiops.engine.silences import ActiveSilence, active_silences, message_labels, silenced_by
from aiops.errors import DeliveryError
from aiops.messages import payload_to_message
from aiops.plugins import Notifier
from aiops.redact import redact
from aiops.store.records import Incident, OutboxMessage, RepeatLog, json_object
from aiops.store.store import Store, default_owner, owner_is_dead
from aiops.types import IncidentState, json_safe

log = structlog.get_logger("aiops.outbox")

#: Events a repeat re-sends while the incident is still open.
REPEATED_EVENTS = frozenset({"firing", "escalated", "flapping", "group"})
#: Incident states in which repeats continue (a person who acknowledged or silenced it stops them).
REPEAT_STATES = frozenset(
    {IncidentState.FIRING, IncidentState.REMEDIATING, IncidentState.VERIFYING, IncidentState.ESCALATED}
)


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


def repeat_interval(base: float, backoff: float, cap: float, repeats_done: int) -> float:
    """The wait before repeat number ``repeats_done + 1``: escalating back-off, capped.

    >>> [repeat_interval(60, 2.0, 600, n) for n in range(5)]
    [60.0, 120.0, 240.0, 480.0, 600.0]
    """
    return float(min(cap, base * backoff**repeats_done))


class OutboxDispatcher:
    def __init__(
        self,
        store: Store,
        runtime_ref: Callable[[], Runtime],
        now: Callable[[], float],
        *,
        on_result: Callable[[str, str], None] | None = None,
        max_attempts: int = 50,
        max_backoff: float = 300.0,
        owner: str | None = None,
        claim_for: float = 120.0,
        alive: Callable[[str], bool] | None = None,
    ) -> None:
        self.store = store
        self.owner = owner or default_owner()  # this replica, as it claims a row before sending it
        # How long a claim protects a send when its holder's liveness cannot be known (no heartbeat).
        self.claim_for = claim_for
        # Whether a replica is alive by its heartbeat: the claim of a live sender is never taken, even
        # expired. None (a lone dispatcher, e.g. a backtest): expiry and local process death only.
        self.alive = alive
        self.runtime_ref = runtime_ref
        self.now = now
        self.on_result = on_result
        self.max_attempts = max_attempts
        self.max_backoff = max_backoff
        self._last_sent: dict[str, float] = {}  # per receiver, for its rate limit
        # Delivered, but the store did not take the ``sent`` record: id -> (attempts, sent at). Recorded at
        # the next tick before anything else; this process never sends them again.
        self._unrecorded: dict[int, tuple[int, float]] = {}
        # One tick at a time per process: the final flush at shutdown may start while a scheduled tick still
        # runs, and both would pass the claim (it is this replica's own) and send the same row.
        self._one_tick = threading.Lock()

    def tick(self) -> int:
        """Run the pipeline once; returns how many messages were sent."""
        with self._one_tick:
            self._record_sent()
            return self._tick()

    def _tick(self) -> int:
        runtime = self.runtime_ref()
        settings = runtime.config.settings
        for stage in (self._close_flaps, self._queue_repeats):
            try:
                stage(runtime)
            except Exception as exc:  # a bookkeeping stage must never stop delivery itself
                log.error("outbox stage failed", stage=stage.__name__, error=repr(exc))
        rows = self.store.pending_notifications()
        if any(r.group_key for r in rows):
            try:
                if self._flush_groups(rows):
                    rows = self.store.pending_notifications()
            except Exception as exc:
                log.error("outbox stage failed", stage="flush_groups", error=repr(exc))
        silences = active_silences(
            self.store.list_silences(active_at=self.now()), getattr(settings, "silences", []), self.now()
        )
        sent = 0
        blocked: set[str] = set()
        for row in rows:
            name = row.notifier
            if name in blocked:
                continue
            if row.group_key:
                continue  # waits for its group's flush; it holds no receiver back meanwhile
            now = self.now()
            if row.next_attempt_at > now:
                blocked.add(name)  # an older message is waiting: nothing newer may overtake it
                continue
            notifier = runtime.notifiers.get(name)
            if notifier is None:
                self._finish(row, "failed", f"notifier {name!r} is not configured any more")
                self._result(name, "failed")
                continue
            interval = float(notifier.min_interval or 0.0)
            last = self._last_sent.get(name)
            if interval > 0 and last is not None and now - last < interval:
                blocked.add(name)
                continue
            full = self._claim(row.id, now)
            if full is None:
                blocked.add(name)  # another replica is sending it (or sent it): its successors wait behind it
                continue
            row = full
            if self._filtered(row, name, silences):
                continue
            outcome = self._send(row, name, notifier, runtime.config.secrets)
            if outcome == "sent":
                sent += 1
            elif outcome == "retry":
                blocked.add(name)  # a final failure does not hold the receiver's later messages back
        return sent

    # -- one row -----------------------------------------------------------------------------------------

    def _claim(self, notification_id: int, now: float) -> OutboxMessage | None:
        """Claim a pending row for this replica and return it; None when another live replica holds it or it
        is no longer pending. A claim is taken from its holder only when the holder is gone: a process of
        this host that no longer exists (this daemon before a crash: taken at once, so a restart resends
        without waiting), or a claim past its ``claim_until`` whose holder has no fresh heartbeat."""
        until = now + self.claim_for
        if not self.store.claim_notification(notification_id, self.owner, until):
            current = self.store.get_notification(notification_id)
            if current is None or current.state != "pending" or current.claimed_by is None:
                return None
            holder = str(current.claimed_by)
            if not self._gone(holder, current.claim_until, now):
                return None
            if not self.store.claim_notification(notification_id, self.owner, until, taken_from=holder):
                return None
            # The one way a message reaches its receiver twice: the holder may have sent it and died before
            # its record committed. Receivers drop the copy by its idempotency key.
            log.warning(
                "sending again a message whose sender died while holding it; the receiver may get it twice",
                dedup_key=current.dedup_key,
                idempotency_key=idempotency_key(current),
                dead_sender=holder,
            )
        full = self.store.get_notification(notification_id)
        return full if full is not None and full.state == "pending" else None

    def _gone(self, holder: str, claim_until: float | None, now: float) -> bool:
        """Whether the replica holding a claim is gone, so its claim may be taken."""
        if owner_is_dead(holder):
            return True
        expired = claim_until is None or claim_until < now
        return expired and (self.alive is None or not self.alive(holder))

    def _filtered(self, row: OutboxMessage, name: str, silences: list[ActiveSilence]) -> bool:
        """Silenced, or a resolve whose firing was never sent: recorded, not sent."""
        event = row.event
        if event == "resolved":
            if row.incident_id is not None and not self._announced(name, row.incident_id):
                self._finish(row, "suppressed", "the firing message was never sent (silenced or held)")
                return True
            return False
        if event == "approval":
            return False  # an approval waits on a person: it is never silenced
        silence = silenced_by(silences, message_labels(row.body))
        if silence is not None:
            self._finish(row, "silenced", f"silenced by {silence.id} {silence.comment}".strip())
            log.info("notification silenced", notifier=name, dedup_key=row.dedup_key, silence=silence.id)
            return True
        return False

    def _announced(self, name: str, incident_id: int) -> bool:
        return any(
            r.event != "resolved" and r.state in ("sent", "grouped")
            for r in self.store.notification_states(name, incident_id)
        )

    def _send(self, row: OutboxMessage, name: str, notifier: Notifier, secrets: list[str]) -> str:
        """Deliver one row; returns its outcome: ``sent``, ``retry`` or ``failed``."""
        now = self.now()
        attempts = row.attempts + 1
        try:
            notifier.send(replace(payload_to_message(row.body), idempotency_key=idempotency_key(row)))
        except DeliveryError as exc:
            error = redact(str(exc), secrets)
            if not exc.recoverable or attempts >= self.max_attempts:
                self.store.update_notification(row.id, {"state": "failed", "attempts": attempts, "last_error": error})
                log.error("notification failed for good", notifier=name, kind=row.event, reason=exc.reason, error=error)
                self._result(name, "failed")
                return "failed"
            delay = max(exc.retry_after or 0.0, backoff_delay(attempts, cap=self.max_backoff))
            self.store.update_notification(
                row.id,
                {"attempts": attempts, "last_error": error, "next_attempt_at": now + delay, "claimed_by": None},
            )
            log.warning(
                "notification will be retried",
                notifier=name,
                kind=row.event,
                attempt=attempts,
                retry_in=round(delay, 2),
                reason=exc.reason,
                error=error,
            )
            self._result(name, "retry")
            return "retry"
        except Exception as exc:  # a notifier bug: retry later, never drop, never crash the loop
            error = redact(f"{exc.__class__.__name__}: {exc}", secrets)
            self.store.update_notification(
                row.id,
                {
                    "attempts": attempts,
                    "last_error": error,
                    "next_attempt_at": now + backoff_delay(attempts, cap=self.max_backoff),
                    "claimed_by": None,
                },
            )
            log.error("notifier raised", notifier=name, error=error)
            self._result(name, "retry")
            return "retry"
        incident: dict[str, Any] = dict(json_object(row.body.get("incident")))
        faults.point("notification.delivered", str(incident.get("check", "")))
        self._unrecorded[row.id] = (attempts, now)  # delivered: from here on it is recorded, never re-sent
        self._record_sent()
        faults.point("notification.sent", str(incident.get("check", "")))
        self._last_sent[name] = now
        self._result(name, "sent")
        try:
            self._log_sent(row, name, notifier, now)
        except Exception as exc:
            log.error("notification log update failed", notifier=name, error=repr(exc))
        return "sent"

    def _record_sent(self) -> None:
        """Record as sent every message this process delivered, right after the receiver's 2xx: the shorter
        the time between the two, the smaller the window in which a crash leaves a delivered message to be
        sent again. When the store refuses the record, the delivery stays in memory and this runs again first
        thing next tick, so the message is never sent twice by this process; its claim (this replica's, and
        alive) keeps the other replicas from sending it meanwhile."""
        for row_id, (attempts, at) in list(self._unrecorded.items()):
            self.store.update_notification(
                row_id, {"state": "sent", "attempts": attempts, "sent_at": at, "last_error": None}
            )
            del self._unrecorded[row_id]

    def _finish(self, row: OutboxMessage, state: str, reason: str) -> None:
        self.store.update_notification(row.id, {"state": state, "last_error": reason})

    # -- repeats -----------------------------------------------------------------------------------------

    @staticmethod
    def _repeat_timing(row: OutboxMessage, notifier: Notifier) -> tuple[float, float, float]:
        """(interval, backoff, cap) from the row's route, else the notifier's own resend interval
        (Alertmanager needs re-posting while firing), else no repeats."""
        route: Mapping[str, Any] = row.route or {}
        base = float(route.get("repeat_interval") or 0.0)
        if base > 0:
            return base, float(route.get("repeat_backoff", 2.0)), float(route.get("max_repeat_interval", 86400.0))
        own = float(notifier.resend_interval or 0.0)
        return own, 1.0, max(own, 1.0)

    def _log_sent(self, row: OutboxMessage, name: str, notifier: Notifier, now: float) -> None:
        payload: dict[str, Any] = dict(row.body)  # a rendered message (message_to_payload)
        event = row.event
        incident_ids = [row.incident_id] if row.incident_id is not None else []
        if event == "group":
            members = payload.get("details", {}).get("group", [])
            for m in members:
                self._log_one(m["event"], int(m["incident"]["id"]), str(m["dedup_key"]), row, name, notifier, now)
            return
        for incident_id in incident_ids:
            self._log_one(event, incident_id, row.dedup_key, row, name, notifier, now)

    def _log_one(
        self,
        event: str,
        incident_id: int,
        dedup_key: str,
        row: OutboxMessage,
        name: str,
        notifier: Notifier,
        now: float,
    ) -> None:
        if event == "resolved":
            self.store.forget_notify_log(incident_id, name)
            return
        if event not in REPEATED_EVENTS:
            return
        base, backoff, cap = self._repeat_timing(row, notifier)
        repeat = int(str(json_object(row.body.get("details")).get("repeat") or 0))
        nxt = now + repeat_interval(base, backoff, cap, repeat) if base > 0 else None
        self.store.log_notification(name, incident_id, dedup_key, now, nxt, repeat=repeat > 0)

    def _queue_repeats(self, runtime: Runtime) -> None:
        now = self.now()
        for entry in self.store.due_repeats(now):
            incident = self.store.get_incident(entry.incident_id)
            name = entry.notifier
            if incident is None or incident.state is IncidentState.RESOLVED or name not in runtime.notifiers:
                self.store.forget_notify_log(entry.incident_id, name)
                continue
            original = self.store.notification_by_key(name, entry.dedup_key)
            if original is None:
                self.store.forget_notify_log(entry.incident_id, name)
                continue
            base, _backoff, _cap = self._repeat_timing(original, runtime.notifiers[name])
            if incident.state not in REPEAT_STATES:  # acknowledged or silenced: look again later
                self.store.update_notify_log(entry.id, {"next_repeat_at": now + max(base, 60.0)})
                continue
            n = entry.repeats + 1
            payload = self._repeat_payload(original, incident, entry, n)
            event = original.event if original.event != "group" else "firing"
            self.store.enqueue_notification(outbox_row(name, incident.id, event, payload, now, original.route))
            # next_repeat_at stays empty until this repeat is sent: a receiver that is down gets one queued
            # repeat, not one per interval.
            self.store.update_notify_log(entry.id, {"next_repeat_at": None, "repeats": n})

    @staticmethod
    def _repeat_payload(original: OutboxMessage, incident: Incident, entry: RepeatLog, n: int) -> dict[str, Any]:
        payload: dict[str, Any] = dict(original.body)
        if payload.get("event") == "group":  # repeat only this incident's own message
            for member in payload.get("details", {}).get("group", []):
                if int(member["incident"]["id"]) == incident.id:
                    payload = dict(member)
        view = incident_view(incident)
        inc = dict(payload["incident"])
        inc.update(state=str(view.state), summary=view.summary, attempts=view.attempts, rung=view.rung)
        details = dict(payload.get("details") or {})
        details["repeat"] = n
        base_key = entry.dedup_key.split(":repeat-")[0]
        title = re.sub(r"^\[REPEAT \d+\] ", "", str(payload["title"]))
        payload.update(
            incident=json_safe(inc), details=details, title=f"[REPEAT {n}] {title}", dedup_key=f"{base_key}:repeat-{n}"
        )
        return payload

    # -- grouping ----------------------------------------------------------------------------------------

    def _flush_groups(self, rows: list[OutboxMessage]) -> bool:
        """Flush the groups that are due; True when any row changed."""
        now = self.now()
        changed = False
        groups: dict[tuple[str, str], list[OutboxMessage]] = {}
        for row in rows:
            if row.group_key:
                groups.setdefault((row.notifier, row.group_key), []).append(row)
        for (name, key), members in groups.items():
            first = members[0]
            route: Mapping[str, Any] = first.route or {}
            if now < first.created_at + float(route.get("group_wait", 0.0)):
                continue
            flushed = self.store.group_flushed_at(name, key)
            if flushed is not None and now < flushed + float(route.get("group_interval", 0.0)):
                continue
            changed = True
            if len(members) == 1:
                self.store.flush_group(first.id, [], {}, name, key, now)
                continue
            payloads = [self.store.get_notification(m.id) for m in members]
            payload = group_payload([m.body for m in payloads if m is not None], key)
            if self.store.flush_group(
                first.id,
                [m.id for m in members[1:]],
                {"payload": payload, "event": "group"},
                name,
                key,
                now,
            ):
                log.info("notifications grouped", notifier=name, group=key, members=len(members))
        return changed

    # -- flapping ----------------------------------------------------------------------------------------

    def _close_flaps(self, runtime: Runtime) -> None:
        cfg = getattr(runtime.config.settings, "flapping", None)
        if cfg is None or not cfg.enabled:
            return
        now = self.now()
        for flap in flapping.quiet_episodes(self.store, cfg, now):
            payload = flap_closed_payload(flap, now)
            for receiver in flap.receivers:
                self.store.enqueue_notification(
                    {
                        "notifier": receiver,
                        "dedup_key": payload["dedup_key"],
                        "incident_id": payload["incident"]["id"],
                        "event": "resolved",
                        "payload": payload,
                        "state": "pending",
                        "attempts": 0,
                        "next_attempt_at": now,
                        "created_at": now,
                    }
                )
            self.store.save_flap(flap.fingerprint, {"ended_at": now})
            log.info("flapping ended", fingerprint=flap.fingerprint, check=flap.check_name)

    def _result(self, notifier: str, outcome: str) -> None:
        if self.on_result is not None:
            self.on_result(notifier, outcome)


def idempotency_key(row: OutboxMessage) -> str:
    """The key every delivery attempt of an outbox row carries, whichever replica makes it: the row's dedup
    key (the event) and its id (the message: two receivers' rows of one event are two messages)."""
    return f"{row.dedup_key}/{row.id}"


def group_payload(members: list[Mapping[str, Any]], key: str) -> dict[str, Any]:
    """One message for a group: the first member's incident, a title counting firing/resolved, one line
    per member in the text, and every member's own payload under ``details.group`` (so Alertmanager and
    PagerDuty can still send one alert per incident under its own dedup key)."""
    firing = [m for m in members if m["event"] != "resolved"]
    resolved = [m for m in members if m["event"] == "resolved"]
    first = members[0]
    counts = []
    if firing:
        counts.append(f"FIRING:{len(firing)}")
    if resolved:
        counts.append(f"RESOLVED:{len(resolved)}")
    label_part = key.split(":", 1)[-1]
    lines = [f"- {m['title']}" for m in members]
    details = {"group": [json_safe(dict(m)) for m in members], "group_key": key}
    return {
        **json_safe(dict(first)),
        "event": "group",
        "title": f"[{' '.join(counts)}] {label_part}",
        "text": "\n".join(lines),
        "dedup_key": f"group:{first['dedup_key']}",
        "details": details,
    }
