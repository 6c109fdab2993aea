"""Value types that flow one way through the loop: Frame -> Finding -> Incident -> Plan/Message -> Outcome.

A stage only knows the next one through these types, never through its internals. They are plain frozen
dataclasses holding JSON-safe data, so that every one of them can be stored, logged and sent as is.
"""

from __future__ import annotations

import enum
import hashlib
import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, overload


class Severity(enum.StrEnum):
    INFO = "info"
    WARNING = "warning"
    CRITICAL = "critical"

    @property
    def rank(self) -> int:
        return {"info": 0, "warning": 1, "critical": 2}[self.value]


class IncidentState(enum.StrEnum):
    PENDING = "pending"
    FIRING = "firing"
    REMEDIATING = "remediating"
    VERIFYING = "verifying"
    ESCALATED = "escalated"
    ACKNOWLEDGED = "acknowledged"
    SILENCED = "silenced"
    RESOLVED = "resolved"

    @property
    def is_open(self) -> bool:
        return self is not IncidentState.RESOLVED


class ActionState(enum.StrEnum):
    PENDING = "pending"  # planned, waiting for the executor to claim it
    AWAITING_APPROVAL = "awaiting_approval"
    RUNNING = "running"  # claimed under a lease
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    DRY_RUN = "dry_run"  # recorded what it would do, did nothing
    OBSERVED = "observed"  # observe mode: logged only
    REJECTED = "rejected"  # approval denied or timed out
    SKIPPED = "skipped"  # a guard said no

    @property
    def is_final(self) -> bool:
        return self in _FINAL_ACTION_STATES


_FINAL_ACTION_STATES = frozenset(
    {
        ActionState.SUCCEEDED,
        ActionState.FAILED,
        ActionState.DRY_RUN,
        ActionState.OBSERVED,
        ActionState.REJECTED,
        ActionState.SKIPPED,
    }
)


class _KeyOnce:
    """``Series.key``, computed at the first read and then kept in the instance's ``__dict__`` (where later
    reads find it without calling anything: this is a non-data descriptor).

    Why not ``functools.cached_property``: before Python 3.12 it takes a lock around every first read,
    which cost more than building the key itself (about 1.3 µs a series, 13 ms of a tick over 10 000
    series). Two threads racing on one new series would both compute the same string: harmless."""

    @overload
    def __get__(self, series: None, owner: type[Series]) -> _KeyOnce: ...

    @overload
    def __get__(self, series: Series, owner: type[Series] | None = None) -> str: ...

    def __get__(self, series: Series | None, owner: type[Series] | None = None) -> str | _KeyOnce:
        if series is None:  # read on the class
            return self
        key = series_key(series.name, series.labels)
        series.__dict__["key"] = key
        return key


@dataclass(frozen=True)
class Series:
    """One metric series: a name, its labels and time-ordered points (epoch seconds, float values)."""

    name: str
    timestamps: Sequence[float]
    values: Sequence[float]
    labels: Mapping[str, str] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.timestamps)

    # Stable identity of the series: its name plus its sorted labels (computed once: a tick over 10 000
    # series asks for it in the source, the history and the detectors).
    key = _KeyOnce()


def series_key(name: str, labels: Mapping[str, str]) -> str:
    if not labels:
        return name
    # sorted items and a list, not a generator of lookups: half the time, and every series of a tick pays it
    return name + "{" + ",".join([f'{k}="{v}"' for k, v in sorted(labels.items())]) + "}"


@dataclass(frozen=True)
class Frame:
    """What one source collection returned: metric series and/or table rows, plus problems seen on the way.

    ``problems`` are data-quality findings found by the source itself (unparseable rows, NaN, a rotated
    file): bad telemetry is reported, never raised.
    """

    source: str
    collected_at: float
    series: tuple[Series, ...] = ()
    rows: tuple[Mapping[str, Any], ...] = ()
    columns: tuple[str, ...] = ()
    problems: tuple[Finding, ...] = ()
    # None: "new data" means a non-empty frame. A source that always emits bookkeeping series (the table
    # source's row count, so freshness/volume detectors run on quiet ticks) says False on a quiet tick, so
    # that verification never mistakes "nothing arrived" for "healthy".
    has_new_data: bool | None = None

    @property
    def empty(self) -> bool:
        return not self.rows and not any(len(s) for s in self.series)

    @property
    def fresh(self) -> bool:
        """Whether this frame carries newly arrived data (what a healthy evaluation requires)."""
        return (not self.empty) if self.has_new_data is None else self.has_new_data


@dataclass(frozen=True)
class Finding:
    """Something a detector (or a source, or the scheduler) considers wrong, with the evidence why.

    ``labels`` identify *what* is wrong (series name and labels, column); together with the check name they
    make the incident fingerprint, so two detectors firing on the same series open one incident.
    """

    kind: str  # anomaly | threshold | drift | data_quality | check_timeout | source_unavailable | ...
    detector: str
    summary: str
    severity: Severity = Severity.WARNING
    score: float = 1.0
    labels: Mapping[str, str] = field(default_factory=dict)
    evidence: Mapping[str, Any] = field(default_factory=dict)
    observed_at: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "detector": self.detector,
            "summary": self.summary,
            "severity": str(self.severity),
            "score": json_safe(self.score),
            "labels": dict(self.labels),
            "evidence": json_safe(dict(self.evidence)),
            "observed_at": self.observed_at,
        }


def fingerprint(check: str, labels: Mapping[str, str]) -> str:
    """Stable incident identity for a check and the labels of what is wrong."""
    raw = json.dumps([check, sorted(labels.items())], separators=(",", ":"))
    return hashlib.sha256(raw.encode()).hexdigest()[:24]


@dataclass(frozen=True)
class IncidentView:
    """The read-only picture of an incident that remediations and notifiers are given."""

    id: int
    fingerprint: str
    check: str
    state: IncidentState
    severity: Severity
    summary: str
    labels: Mapping[str, str]
    opened_at: float
    evidence: Mapping[str, Any] = field(default_factory=dict)
    attempts: int = 0
    rung: int = 0


@dataclass(frozen=True)
class Plan:
    """What a remediation intends to do; pure data, shown in dry-run and approval requests."""

    action: str  # plugin type, e.g. "command"
    description: str
    target: str  # what it touches; the blast-radius budget counts distinct targets
    details: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Outcome:
    """How an execution ended. ``ok`` means it ran without error, not that it healed: the verifier decides."""

    ok: bool
    summary: str
    details: Mapping[str, Any] = field(default_factory=dict)
    recoverable: bool = False


@dataclass
class ActionContext:
    """What an executing remediation may use: its idempotency key, a way to persist a resume handle, a clock.

    ``save_handle`` writes to the ledger *before* the side effect proceeds, so that a restarted daemon can
    find a half-done execution (a still-running process, a request already sent) instead of repeating it.
    """

    idempotency_key: str
    incident: IncidentView
    deadline: float
    save_handle: Callable[[Mapping[str, Any]], None]
    now: Callable[[], float]
    handle: Mapping[str, Any] | None = None


@dataclass(frozen=True)
class Message:
    """A notification about an incident, channel-neutral; notifiers render it in their own format."""

    event: str  # firing | resolved | escalated | action | approval
    incident: IncidentView
    title: str
    text: str
    dedup_key: str
    details: Mapping[str, Any] = field(default_factory=dict)
    links: Mapping[str, str] = field(default_factory=dict)
    idempotency_key: str = ""
    """The same on every delivery attempt of one outbox message, whichever replica makes it (set by the outbox;
    empty for a message that never went through it). Delivery is at least once: a replica killed after the
    receiver got a message but before recording it as sent leaves it to be sent again, and this key is what
    lets the receiver recognise the second copy."""


@dataclass(frozen=True)
class Delivery:
    """A successful send. Failures are raised as :class:`aiops.errors.DeliveryError`."""

    receiver: str
    status: int | None = None
    detail: str = ""


def json_safe(value: Any) -> Any:
    """Recursively turn a value into something json.dumps accepts (NaN/inf become None, numpy to Python)."""
    kind = type(value)  # the exact built-in types first: a drift result holds thousands of them, and the
    if kind is float:  # abstract-class checks below cost several times more than the conversion itself
        return value if math.isfinite(value) else None
    if kind is str or kind is bool or kind is int or value is None:
        return value
    if kind is dict or isinstance(value, Mapping):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [json_safe(v) for v in value]
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, enum.Enum):
        return json_safe(value.value)
    item = getattr(value, "item", None)  # numpy scalar
    if callable(item):
        return json_safe(item())
    tolist = getattr(value, "tolist", None)  # numpy array
    if callable(tolist):
        return json_safe(tolist())
    return str(value)
