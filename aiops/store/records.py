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
import types
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Any, Self, get_args, get_origin, get_type_hints

from aiops.config.models import ActionMode
from aiops.pushed import EventKind as EventKind  # re-exported: the pushed rows are store records too
from aiops.pushed import PushedEvent as PushedEvent
from aiops.pushed import StoredEvent as StoredEvent
from aiops.pushed import as_float as _float
from aiops.pushed import as_int as _int
from aiops.pushed import json_object as json_object
from aiops.types import ActionState, IncidentState, Severity, json_safe

#: A JSON object column as read back from the store.
JsonObject = Mapping[str, object]

#: Turns one column's value, as the database driver gave it, into the field's type.
_Read = Callable[[object], object]


@dataclass(frozen=True)
class StoredRecord:
    """A record read back from one table row; its fields, in column order, say how to read the row.

    Why field-driven: the coercions of a column are the same for every record, so they are written once, by
    type (see :func:`_reader`), instead of once per field of every record: a NULL or absent
    counter reads as 0 and text as empty, an optional field stays None, a state becomes its enum, a JSON
    column an object, and a missing timestamp is an error rather than a silent 0.
    """

    @classmethod
    def from_row(cls, row: Mapping[str, object]) -> Self:
        values: dict[str, Any] = {name: read(row.get(name)) for name, read in _readers(cls)}
        return cls(**values)

    def to_json(self) -> dict[str, object]:
        return _record_json(self)


@dataclass(frozen=True)
class Transition(StoredRecord):
    """One row of an incident's audit trail: who or what moved it, from where to where, why, with what."""

    id: int
    incident_id: int
    at: float
    from_state: IncidentState | None
    to_state: IncidentState
    actor: str
    reason: str
    evidence: JsonObject = field(default_factory=dict)

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
class Incident(StoredRecord):
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

    @property
    def is_detector(self) -> bool:
        """Opened by a detector's finding (the ladder applies), not by a source's or the scheduler's problem."""
        return self.kind.startswith("detector:")

    def silenced_at(self, now: float) -> bool:
        """Whether a person's silence (or acknowledgement with an end) still holds at ``now``."""
        return self.silenced_until is not None and now < self.silenced_until


@dataclass(frozen=True)
class Action(StoredRecord):
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
class OutboxMessage(StoredRecord):
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
class Breaker(StoredRecord):
    """One action type's circuit breaker: consecutive failures across all incidents, and whether that type
    may run now."""

    action_type: str
    state: BreakerState
    failures: int
    opened_at: float | None
    trial_action_id: int | None
    last_reason: str | None
    updated_at: float


@dataclass(frozen=True)
class Silence(StoredRecord):
    """A stored silence (``aiops silence --match``): label matchers in force from ``starts_at`` to ``ends_at``."""

    id: int
    matchers: tuple[str, ...]
    starts_at: float
    ends_at: float
    created_by: str
    comment: str
    created_at: float

    def active_at(self, now: float) -> bool:
        return self.starts_at <= now < self.ends_at


@dataclass(frozen=True)
class FlapEpisode(StoredRecord):
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


@dataclass(frozen=True)
class RepeatLog(StoredRecord):
    """When a receiver was last told about an open incident, and when to tell it again (None while a repeat
    is queued)."""

    id: int
    notifier: str
    incident_id: int
    dedup_key: str
    repeats: int
    last_sent_at: float
    next_repeat_at: float | None


@dataclass(frozen=True)
class CheckState(StoredRecord):
    """A check's saved position: the last window end it evaluated (``since``), the source's state (its
    cursor) and, for stores written before binary checkpoints, the detectors' state as JSON."""

    check_name: str
    since: float | None
    detector_state: JsonObject
    source_state: JsonObject
    updated_at: float


Record = Incident | Action | OutboxMessage | Breaker | Silence | FlapEpisode | RepeatLog


def column_names(record: type[Record]) -> frozenset[str]:
    """The fields a store update may name: a typo is an error, not a silently ignored key."""
    return frozenset(f.name for f in fields(record))


def _record_json(record: StoredRecord) -> dict[str, object]:
    out: dict[str, object] = json_safe({f.name: getattr(record, f.name) for f in fields(record)})
    return out




_READERS: dict[type[StoredRecord], tuple[tuple[str, _Read], ...]] = {}


def _readers(record: type[StoredRecord]) -> tuple[tuple[str, _Read], ...]:
    """Each field of ``record`` with the reader its type calls for (worked out once per record type)."""
    if record not in _READERS:
        hints = get_type_hints(record)
        _READERS[record] = tuple((f.name, _reader(hints[f.name])) for f in fields(record))
    return _READERS[record]


def _reader(hint: object) -> _Read:
    """How to read a column into a field of type ``hint``; an unknown type is an error when the record is first
    read, so a new field cannot go silently unconverted."""
    if get_origin(hint) is types.UnionType:
        (inner,) = (a for a in get_args(hint) if a is not type(None))
        read = _reader(inner)
        return lambda v: None if v is None else read(v)
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        state = hint
        return lambda v: state(str(v))
    if get_origin(hint) is tuple:
        return lambda v: tuple(str(x) for x in v) if isinstance(v, list | tuple) else ()
    if hint == Mapping[str, str]:
        return lambda v: {str(k): str(x) for k, x in v.items()} if isinstance(v, Mapping) else {}
    simple: dict[object, _Read] = {
        JsonObject: json_object,
        int: lambda v: _int(0 if v is None else v),
        float: _float,
        str: lambda v: "" if v is None else str(v),
        bool: bool,
    }
    if hint not in simple:
        raise TypeError(f"no reader for a stored field of type {hint!r}")
    return simple[hint]


