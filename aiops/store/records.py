"""Typed records the store returns, instead of raw rows.

Why: a row is ``dict[str, Any]`` — every reader re-coerces (``int(row["id"] or 0)``), a typo in a key is a
runtime ``KeyError`` and a state is a bare string. A frozen record with enum states is checked by mypy and
cannot be mutated behind the store's back. ``to_json()`` gives exactly the JSON the API and the CLI always
served for the row.

JSON columns (evidence, labels, plan, payload, ...) stay JSON: they are typed ``JsonObject`` (a read-only
mapping of ``object``), so a reader has to narrow what it takes out of them instead of trusting ``Any``.

>>> t = Transition(1, 7, 100.0, None, IncidentState.FIRING, "detector:threshold", "v is high", {})
>>> t.to_state is IncidentState.FIRING, t.to_json()["to_state"]
(True, 'firing')
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from types import MappingProxyType
from typing import NamedTuple

from aiops.config.models import ActionMode
from aiops.types import ActionState, IncidentState, Severity, json_safe

#: A JSON object column as read back from the store.
JsonObject = Mapping[str, object]


@dataclass(frozen=True)
class Transition:
    """One row of an incident's audit trail: who or what moved it, from where to where, why, with what."""

    id: int
    incident_id: int
    at: float
    from_state: IncidentState | None
    to_state: IncidentState
    actor: str
    reason: str
    evidence: JsonObject = field(default_factory=dict)

    @classmethod
    def from_row(cls, row: Mapping[str, object]) -> Transition:
        evidence = row.get("evidence")
        from_state = row.get("from_state")
        return cls(
            id=_int(row["id"]),
            incident_id=_int(row["incident_id"]),
            at=_float(row["at"]),
            from_state=IncidentState(str(from_state)) if from_state is not None else None,
            to_state=IncidentState(str(row["to_state"])),
            actor=str(row["actor"]),
            reason=str(row["reason"]),
            evidence=_object(evidence),
        )

    def to_json(self) -> dict[str, object]:
        out: dict[str, object] = json_safe(
            {
                "id": self.id,
                "incident_id": self.incident_id,
                "at": self.at,
                "from_state": self.from_state.value if self.from_state is not None else None,
                "to_state": self.to_state.value,
                "actor": self.actor,
                "reason": self.reason,
                "evidence": self.evidence,
            }
        )
        return out


@dataclass(frozen=True)
class Incident:
    """One incident as stored: what is wrong (fingerprint, check, labels), where it stands in its life
    (state, rung, attempts, verification clock) and what a person did to it. Fields are in column order, so
    ``to_json()`` is the row exactly as the API and the CLI always served it."""

    id: int
    fingerprint: str
    check_name: str
    labels: Mapping[str, str]
    state: IncidentState
    severity: Severity
    kind: str
    summary: str
    evidence: JsonObject
    opened_at: float
    updated_at: float
    firing_at: float | None
    resolved_at: float | None
    last_seen_at: float
    rung: int
    attempts: int
    verify_started_at: float | None
    verify_deadline: float | None
    healthy_ticks: int
    acknowledged_by: str | None
    silenced_until: float | None
    guard_note: str | None
    notified_firing: bool

    @classmethod
    def from_row(cls, row: Mapping[str, object]) -> Incident:
        labels = row.get("labels")
        return cls(
            id=_int(row["id"]),
            fingerprint=str(row["fingerprint"]),
            check_name=str(row["check_name"]),
            labels={str(k): str(v) for k, v in labels.items()} if isinstance(labels, Mapping) else {},
            state=IncidentState(str(row["state"])),
            severity=Severity(str(row["severity"])),
            kind=str(row["kind"]),
            summary=str(row["summary"]),
            evidence=_object(row.get("evidence")),
            opened_at=_float(row["opened_at"]),
            updated_at=_float(row["updated_at"]),
            firing_at=_opt_float(row.get("firing_at")),
            resolved_at=_opt_float(row.get("resolved_at")),
            last_seen_at=_float(row["last_seen_at"]),
            rung=_int(row.get("rung") or 0),
            attempts=_int(row.get("attempts") or 0),
            verify_started_at=_opt_float(row.get("verify_started_at")),
            verify_deadline=_opt_float(row.get("verify_deadline")),
            healthy_ticks=_int(row.get("healthy_ticks") or 0),
            acknowledged_by=_opt_str(row.get("acknowledged_by")),
            silenced_until=_opt_float(row.get("silenced_until")),
            guard_note=_opt_str(row.get("guard_note")),
            notified_firing=bool(row.get("notified_firing")),
        )

    def to_json(self) -> dict[str, object]:
        return _record_json(self)

    @property
    def is_detector(self) -> bool:
        """Opened by a detector's finding (the ladder applies), not by a source's or the scheduler's problem."""
        return self.kind.startswith("detector:")

    def silenced_at(self, now: float) -> bool:
        """Whether a person's silence (or acknowledgement with an end) still holds at ``now``."""
        return self.silenced_until is not None and now < self.silenced_until


@dataclass(frozen=True)
class Action:
    """One row of the action ledger: a planned, running or finished remediation of an incident's rung.

    The idempotency key makes the ledger the guarantee that nothing runs twice; ``lease_owner`` and
    ``lease_expires`` say which daemon holds a running action. Fields are in column order (see
    :class:`Incident`)."""

    id: int
    idempotency_key: str
    incident_id: int
    check_name: str
    rung: int
    action_type: str
    action_label: str
    mode: ActionMode
    target: str
    plan: JsonObject
    state: ActionState
    runs: int
    lease_owner: str | None
    lease_expires: float | None
    handle: JsonObject | None
    created_at: float
    updated_at: float
    started_at: float | None
    finished_at: float | None
    deadline: float | None
    approval_deadline: float | None
    decided_by: str | None
    guard: str | None
    outcome: JsonObject | None
    error: str | None

    @classmethod
    def from_row(cls, row: Mapping[str, object]) -> Action:
        handle, outcome = row.get("handle"), row.get("outcome")
        return cls(
            id=_int(row["id"]),
            idempotency_key=str(row["idempotency_key"]),
            incident_id=_int(row["incident_id"]),
            check_name=str(row["check_name"]),
            rung=_int(row.get("rung") or 0),
            action_type=str(row["action_type"]),
            action_label=str(row["action_label"]),
            mode=ActionMode(str(row["mode"])),
            target=str(row.get("target") or ""),
            plan=_object(row.get("plan")),
            state=ActionState(str(row["state"])),
            runs=_int(row.get("runs") or 0),
            lease_owner=_opt_str(row.get("lease_owner")),
            lease_expires=_opt_float(row.get("lease_expires")),
            handle=_object(handle) if handle is not None else None,
            created_at=_float(row["created_at"]),
            updated_at=_float(row["updated_at"]),
            started_at=_opt_float(row.get("started_at")),
            finished_at=_opt_float(row.get("finished_at")),
            deadline=_opt_float(row.get("deadline")),
            approval_deadline=_opt_float(row.get("approval_deadline")),
            decided_by=_opt_str(row.get("decided_by")),
            guard=_opt_str(row.get("guard")),
            outcome=_object(outcome) if outcome is not None else None,
            error=_opt_str(row.get("error")),
        )

    def to_json(self) -> dict[str, object]:
        return _record_json(self)

    @property
    def last_at(self) -> float:
        """When it last did something: finished, else started, else planned."""
        return self.finished_at or self.started_at or self.created_at

    @property
    def description(self) -> str:
        """The plan's one-line description (what it does, to what)."""
        return str(self.plan.get("description", ""))

    @property
    def summary(self) -> str:
        """The outcome's one-line summary, empty until it finished."""
        return str((self.outcome or {}).get("summary") or "")


class NotificationState(enum.StrEnum):
    """Where one outbox row stands. Only ``pending`` rows are ever sent; every other state is final."""

    PENDING = "pending"  # queued (maybe waiting for a retry or its group's flush)
    SENT = "sent"
    FAILED = "failed"  # given up: a permanent error, too many attempts, or its notifier is gone
    HELD = "held"  # flap control: recorded, not sent
    SILENCED = "silenced"  # a silence matched it
    SUPPRESSED = "suppressed"  # a resolve whose firing message was never sent
    GROUPED = "grouped"  # went out inside its group's message (``parent_id``)

    @property
    def delivered(self) -> bool:
        """Reached the receiver, alone or inside a group."""
        return self in (NotificationState.SENT, NotificationState.GROUPED)


@dataclass(frozen=True)
class OutboxMessage:
    """One row of the notification outbox: a rendered message for one receiver, written in the same unit of
    work as the decision that caused it and sent afterwards (at least once, deduplicated by ``dedup_key``).

    ``payload`` is None when the row was listed without it (:meth:`Store.pending_notifications` reads
    every pending row each tick, and the payload is by far its largest part); :meth:`body` says so loudly
    rather than letting an empty message go out."""

    id: int
    notifier: str
    dedup_key: str
    incident_id: int | None
    event: str
    payload: JsonObject | None
    state: NotificationState
    attempts: int
    next_attempt_at: float
    last_error: str | None
    created_at: float
    sent_at: float | None
    group_key: str | None
    route: JsonObject | None
    parent_id: int | None
    claimed_by: str | None = None  # the replica sending it now (see Store.claim_notification)
    claim_until: float | None = None

    @classmethod
    def from_row(cls, row: Mapping[str, object]) -> OutboxMessage:
        route = row.get("route")
        return cls(
            id=_int(row["id"]),
            notifier=str(row["notifier"]),
            dedup_key=str(row["dedup_key"]),
            incident_id=_opt_int(row.get("incident_id")),
            event=str(row["event"]),
            payload=_object(row["payload"]) if "payload" in row else None,
            state=NotificationState(str(row["state"])),
            attempts=_int(row.get("attempts") or 0),
            next_attempt_at=_float(row["next_attempt_at"]),
            last_error=_opt_str(row.get("last_error")),
            created_at=_float(row["created_at"]),
            sent_at=_opt_float(row.get("sent_at")),
            group_key=_opt_str(row.get("group_key")),
            route=_object(route) if route is not None else None,
            parent_id=_opt_int(row.get("parent_id")),
            claimed_by=_opt_str(row.get("claimed_by")),
            claim_until=_opt_float(row.get("claim_until")),
        )

    def to_json(self, only: Sequence[str] = ()) -> dict[str, object]:
        """The row as JSON; ``only`` keeps just those fields (in column order)."""
        out = _record_json(self)
        if self.payload is None:
            del out["payload"]  # listed without it: not an empty payload
        return {k: v for k, v in out.items() if k in only} if only else out

    @property
    def body(self) -> JsonObject:
        """The payload; an error when this copy was listed without it."""
        if self.payload is None:
            raise ValueError(f"notification {self.id} was read without its payload")
        return self.payload


class BreakerState(enum.StrEnum):
    CLOSED = "closed"  # actions of the type run
    OPEN = "open"  # too many consecutive failures: its rungs are skipped until the reset time
    HALF_OPEN = "half_open"  # one trial run is let through


@dataclass(frozen=True)
class Breaker:
    """One action type's circuit breaker: consecutive failures across all incidents, and whether that type
    may run now."""

    action_type: str
    state: BreakerState
    failures: int
    opened_at: float | None
    trial_action_id: int | None
    last_reason: str | None
    updated_at: float

    @classmethod
    def from_row(cls, row: Mapping[str, object]) -> Breaker:
        return cls(
            action_type=str(row["action_type"]),
            state=BreakerState(str(row["state"])),
            failures=_int(row.get("failures") or 0),
            opened_at=_opt_float(row.get("opened_at")),
            trial_action_id=_opt_int(row.get("trial_action_id")),
            last_reason=_opt_str(row.get("last_reason")),
            updated_at=_float(row["updated_at"]),
        )


@dataclass(frozen=True)
class Silence:
    """A stored silence (``aiops silence --match``): label matchers in force from ``starts_at`` to ``ends_at``."""

    id: int
    matchers: tuple[str, ...]
    starts_at: float
    ends_at: float
    created_by: str
    comment: str
    created_at: float

    @classmethod
    def from_row(cls, row: Mapping[str, object]) -> Silence:
        matchers = row.get("matchers")
        return cls(
            id=_int(row["id"]),
            matchers=tuple(str(m) for m in matchers) if isinstance(matchers, list | tuple) else (),
            starts_at=_float(row["starts_at"]),
            ends_at=_float(row["ends_at"]),
            created_by=str(row["created_by"]),
            comment=str(row.get("comment") or ""),
            created_at=_float(row["created_at"]),
        )

    def active_at(self, now: float) -> bool:
        return self.starts_at <= now < self.ends_at


@dataclass(frozen=True)
class FlapEpisode:
    """A fingerprint that keeps opening and resolving: its messages are held until it has been quiet for a
    whole window; ``payload`` is the announcement, from which the closing message is derived."""

    fingerprint: str
    check_name: str
    started_at: float
    last_at: float
    ended_at: float | None
    opens: int
    receivers: tuple[str, ...]
    payload: JsonObject

    @classmethod
    def from_row(cls, row: Mapping[str, object]) -> FlapEpisode:
        receivers = row.get("receivers")
        return cls(
            fingerprint=str(row["fingerprint"]),
            check_name=str(row["check_name"]),
            started_at=_float(row["started_at"]),
            last_at=_float(row["last_at"]),
            ended_at=_opt_float(row.get("ended_at")),
            opens=_int(row.get("opens") or 0),
            receivers=tuple(str(r) for r in receivers) if isinstance(receivers, list | tuple) else (),
            payload=_object(row.get("payload")),
        )


@dataclass(frozen=True)
class RepeatLog:
    """When a receiver was last told about an open incident, and when to tell it again (None while a repeat
    is queued)."""

    id: int
    notifier: str
    incident_id: int
    dedup_key: str
    repeats: int
    last_sent_at: float
    next_repeat_at: float | None

    @classmethod
    def from_row(cls, row: Mapping[str, object]) -> RepeatLog:
        return cls(
            id=_int(row["id"]),
            notifier=str(row["notifier"]),
            incident_id=_int(row["incident_id"]),
            dedup_key=str(row["dedup_key"]),
            repeats=_int(row.get("repeats") or 0),
            last_sent_at=_float(row["last_sent_at"]),
            next_repeat_at=_opt_float(row.get("next_repeat_at")),
        )


@dataclass(frozen=True)
class CheckState:
    """A check's saved position: the last window end it evaluated (``since``), the source's state (its
    cursor) and, for stores written before binary checkpoints, the detectors' state as JSON."""

    check: str
    since: float | None
    detector_state: JsonObject
    source_state: JsonObject
    updated_at: float

    @classmethod
    def from_row(cls, row: Mapping[str, object]) -> CheckState:
        return cls(
            check=str(row["check_name"]),
            since=_opt_float(row.get("since")),
            detector_state=_object(row.get("detector_state")),
            source_state=_object(row.get("source_state")),
            updated_at=_float(row["updated_at"]),
        )


_NO_LABELS: Mapping[str, str] = MappingProxyType({})
_NO_DATA: JsonObject = MappingProxyType({})


class EventKind(enum.StrEnum):
    """What a pushed row is: a metric point (a value of a series) or an event (a type and free data)."""

    POINT = "point"
    EVENT = "event"


class PushedEvent(NamedTuple):
    """A point or event as ``POST /api/v1/ingest`` or ``/api/v1/alertmanager`` hands it to the store.

    ``value`` None is a gap (a point) or nothing (an event); ``labels`` are strings; ``data`` is free JSON.
    A NamedTuple rather than a frozen dataclass: a request builds thousands, and a tuple is built at a
    fraction of the cost (a frozen dataclass sets each field through ``object.__setattr__``).
    """

    stream: str
    kind: EventKind
    name: str
    ts: float
    value: float | None = None
    labels: Mapping[str, str] = _NO_LABELS
    data: JsonObject = _NO_DATA


class StoredEvent(NamedTuple):
    """A pushed row read back: its fields, its id (the push sources' cursor) and when it was received."""

    stream: str
    kind: EventKind
    name: str
    ts: float
    value: float | None
    labels: Mapping[str, str]
    data: JsonObject
    id: int
    received_at: float

    @classmethod
    def from_row(cls, row: Mapping[str, object]) -> StoredEvent:
        labels = row.get("labels")
        value = row.get("value")
        return cls(
            stream=str(row["stream"]),
            kind=EventKind(str(row["kind"])),
            name=str(row["name"]),
            ts=_float(row["ts"]),
            value=None if value is None else _float(value),
            labels={str(k): str(v) for k, v in labels.items()} if isinstance(labels, Mapping) else {},
            data=_object(row.get("data")),
            id=_int(row["id"]),
            received_at=_float(row["received_at"]),
        )

    def to_dict(self) -> dict[str, object]:
        """The row as a plain mapping (what a backtest's replay of the stream holds)."""
        return dict(self._asdict())


Record = Incident | Action | OutboxMessage | Breaker | Silence | FlapEpisode | RepeatLog


def column_names(record: type[Record]) -> frozenset[str]:
    """The fields a store update may name: a typo is an error, not a silently ignored key."""
    return frozenset(f.name for f in fields(record))


def _record_json(record: Record) -> dict[str, object]:
    out: dict[str, object] = json_safe({f.name: getattr(record, f.name) for f in fields(record)})
    return out


def json_object(value: object) -> JsonObject:
    """A JSON value taken out of a JSON column, as an object: empty when it is absent or not an object."""
    return {str(k): v for k, v in value.items()} if isinstance(value, Mapping) else {}


_object = json_object


def _opt_float(value: object) -> float | None:
    return None if value is None else _float(value)


def _opt_int(value: object) -> int | None:
    return None if value is None else _int(value)


def _opt_str(value: object) -> str | None:
    return None if value is None else str(value)


def _int(value: object) -> int:
    if isinstance(value, int | float | str):
        return int(value)
    raise TypeError(f"expected a number, got {value!r}")


def _float(value: object) -> float:
    if isinstance(value, int | float | str):
        return float(value)
    raise TypeError(f"expected a number, got {value!r}")
