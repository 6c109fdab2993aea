"""Pushed telemetry: the JSON schemas of ``POST /api/v1/ingest`` and of Alertmanager's webhook (version 4), and
how either becomes rows of the store's ``aiops_events`` table.

Why a push path at all: short-lived batch jobs and model servers behind a firewall cannot be scraped, and
teams already have Prometheus alert rules whose notifications should be able to start an aiops policy. The
HTTP server validates a request here (a clear 400 naming the field), stores it in one transaction, and only
then answers; the ``push`` and ``alertmanager`` sources read the rows back incrementally by id.

>>> rows = parse_ingest({"stream": "jobs", "points": [{"name": "rows", "value": 3, "timestamp": 10}]}, now=99.0)
>>> [(r.stream, r.kind.value, r.name, r.ts, r.value) for r in rows]
[('jobs', 'point', 'rows', 10.0, 3.0)]
>>> parse_ingest({"stream": "jobs", "points": [{"value": 3}]}, now=0.0)
Traceback (most recent call last):
...
aiops.errors.InvalidInput: points.0.name: Field required
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Annotated, Any, Final

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from aiops.errors import InvalidInput
from aiops.pushed import EventKind, PushedEvent

MAX_ITEMS: Final = 10_000  # points + events per request; bigger batches are split by the sender
MAX_NAME: Final = 200  # a metric, event or alert name (the store's name column)
MAX_LABELS: Final = 100  # labels (or annotations) on one item
MAX_LABEL_NAME: Final = 200
MAX_LABEL_VALUE: Final = 4096
MAX_ANNOTATION: Final = 16 * 1024
STREAM_PATTERN: Final = r"^[A-Za-z0-9_.:\-]{1,100}$"
ALERTMANAGER_STREAM: Final = "alertmanager"
_ZERO_TIME: Final = "0001-01-01T00:00:00Z"  # Alertmanager's "no endsAt"


def parse_time(value: Any) -> float:
    """Epoch seconds from a number or an ISO 8601 string (naive = UTC); raises ValueError otherwise.

    >>> parse_time(5), parse_time("1970-01-01T00:00:10Z"), parse_time("1970-01-01 00:00:10.5")
    (5.0, 10.0, 10.5)
    """
    if isinstance(value, bool):
        raise ValueError("a time must be epoch seconds or an ISO 8601 string, not a boolean")
    if isinstance(value, int | float):
        out = float(value)
        if not math.isfinite(out):
            raise ValueError("a time must be finite")
        return out
    if isinstance(value, str):
        text = value.strip()
        if text.endswith(("Z", "z")):
            text = text[:-1] + "+00:00"
        try:
            dt = datetime.fromisoformat(text)
        except ValueError:
            raise ValueError(f"not an epoch number or ISO 8601 time: {value[:40]!r}") from None
        if dt.tzinfo is None:
            dt = dt.replace(tzinfo=UTC)
        return dt.timestamp()
    raise ValueError(f"a time must be epoch seconds or an ISO 8601 string, not {type(value).__name__}")


def _labels(value: Mapping[str, Any], *, max_value: int = MAX_LABEL_VALUE) -> dict[str, str]:
    if len(value) > MAX_LABELS:
        raise ValueError(f"{len(value)} labels (limit {MAX_LABELS})")
    if all(type(v) is str and len(v) <= max_value and 0 < len(k) <= MAX_LABEL_NAME for k, v in value.items()):
        return dict(value)  # the usual case, checked in one pass: this runs for every point of every batch
    out: dict[str, str] = {}
    for key, label in value.items():
        if not isinstance(label, str | int | float) or isinstance(label, bool):
            raise ValueError(f"label {key!r} must be a string or a number")
        if not 1 <= len(key) <= MAX_LABEL_NAME:
            raise ValueError(f"label names must have 1 to {MAX_LABEL_NAME} characters")
        text = str(label)
        if len(text) > max_value:
            raise ValueError(f"label {key[:40]!r} is longer than {max_value} characters")
        out[str(key)] = text
    return out


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


# The labels of a pushed point or event, checked by pydantic-core itself (a number is taken as its text,
# as ``str`` writes it): a Python validator here ran for every point of every batch, about half the
# validation time of a 1 000-point request.
LabelName = Annotated[str, Field(min_length=1, max_length=MAX_LABEL_NAME)]
LabelValue = Annotated[str, Field(coerce_numbers_to_str=True, max_length=MAX_LABEL_VALUE)]


class IngestPoint(_Strict):
    """One metric point: a name, a value (null marks a gap) and optionally a time and labels."""

    name: str = Field(min_length=1, max_length=MAX_NAME, description="metric name")
    value: float | None = Field(description="the value; null reports a gap")
    timestamp: float | str | None = Field(None, description="epoch seconds or ISO 8601; default: arrival time")
    labels: dict[LabelName, LabelValue] = Field(
        default_factory=dict, max_length=MAX_LABELS, description="string labels of the series"
    )


class IngestEvent(_Strict):
    """One event (a job finished, a model was deployed): a type, free JSON data, optional time and labels."""

    type: str = Field(min_length=1, max_length=MAX_NAME, description="what happened, e.g. job_finished")
    timestamp: float | str | None = Field(None, description="epoch seconds or ISO 8601; default: arrival time")
    labels: dict[LabelName, LabelValue] = Field(
        default_factory=dict, max_length=MAX_LABELS, description="string labels"
    )
    data: dict[str, Any] = Field(default_factory=dict, description="any JSON object")


class IngestRequest(_Strict):
    """Body of ``POST /api/v1/ingest``."""

    stream: str = Field("default", pattern=STREAM_PATTERN, description="stream a `push` source reads")
    points: list[IngestPoint] = Field(default_factory=list, max_length=MAX_ITEMS)
    events: list[IngestEvent] = Field(default_factory=list, max_length=MAX_ITEMS)


def describe_validation_error(exc: ValidationError) -> InvalidInput:
    """The first problem pydantic found, as ``field: message`` naming the dotted field path."""
    err = exc.errors()[0]
    where = ".".join(str(p) for p in err["loc"]) or None
    more = f" (and {exc.error_count() - 1} more problems)" if exc.error_count() > 1 else ""
    message = str(err["msg"]).removeprefix("Value error, ")
    return InvalidInput(f"{message}{more}", where or "body")


def validate_ingest(body: Mapping[str, Any]) -> IngestRequest:
    """Validate an ingest body (raises :class:`InvalidInput`, a ValueError, with a message for a 400)."""
    if "stream" in body and body["stream"] == ALERTMANAGER_STREAM:
        raise InvalidInput(f"{ALERTMANAGER_STREAM!r} is reserved for POST /api/v1/alertmanager", "stream")
    try:
        request = IngestRequest.model_validate(dict(body))
    except ValidationError as exc:
        raise describe_validation_error(exc) from None
    total = len(request.points) + len(request.events)
    if total == 0:
        raise InvalidInput('nothing to ingest; send "points" and/or "events"', "body")
    if total > MAX_ITEMS:
        raise InvalidInput(f"{total} items in one request (limit {MAX_ITEMS}); split the batch", "body")
    return request


def parse_ingest(body: Mapping[str, Any], now: float) -> list[PushedEvent]:
    """Validate an ingest body and turn it into store rows; raises ValueError with a message for a 400."""
    return ingest_rows(validate_ingest(body), now)


def ingest_rows(request: IngestRequest, now: float) -> list[PushedEvent]:
    """Store rows of a validated ingest request (a point or an event without a time gets ``now``)."""
    rows: list[PushedEvent] = []
    stream, point_kind, inf = request.stream, EventKind.POINT, math.inf
    for i, point in enumerate(request.points):
        value, stamp = point.value, point.timestamp
        finite = value is None or -inf < value < inf
        rows.append(
            PushedEvent(
                stream,
                point_kind,
                point.name,
                # a finite float, the usual time, is taken as it is: this loop runs for every point
                stamp if type(stamp) is float and -inf < stamp < inf else _item_time(stamp, now, "points", i),
                # The HTTP API refuses NaN/inf literals; a direct caller may still pass them: they are kept
                # as a gap (null) so the source reports a data-quality problem instead of poisoning a detector.
                value if finite else None,
                point.labels,
                {} if finite else {"non_finite": str(value)},
            )
        )
    for i, event in enumerate(request.events):
        rows.append(
            PushedEvent(
                stream=request.stream,
                kind=EventKind.EVENT,
                name=event.type,
                ts=_item_time(event.timestamp, now, "events", i),
                labels=event.labels,
                data=event.data,
            )
        )
    return rows


def _item_time(value: float | str | None, now: float, items: str, index: int) -> float:
    if value is None:
        return now
    try:
        return parse_time(value)
    except ValueError as exc:
        raise InvalidInput(str(exc), f"{items}.{index}.timestamp") from None


class AlertmanagerAlert(BaseModel):
    """One alert of an Alertmanager webhook (unknown keys tolerated: Alertmanager adds fields over time)."""

    model_config = ConfigDict(extra="ignore")

    status: str = Field(pattern=r"^(firing|resolved)$")
    labels: dict[str, str] = Field(json_schema_extra={"maxProperties": MAX_LABELS})
    annotations: dict[str, str] = Field(default_factory=dict, json_schema_extra={"maxProperties": MAX_LABELS})
    startsAt: str = Field(max_length=64)
    endsAt: str = Field(_ZERO_TIME, max_length=64)
    generatorURL: str = Field("", max_length=4096)
    fingerprint: str = Field("", max_length=200)

    @field_validator("labels")
    @classmethod
    def _check_labels(cls, value: dict[str, str]) -> dict[str, str]:
        if len(value.get("alertname", "")) > MAX_NAME:
            raise ValueError(f"alertname is longer than {MAX_NAME} characters")
        return _labels(value)

    @field_validator("annotations")
    @classmethod
    def _check_annotations(cls, value: dict[str, str]) -> dict[str, str]:
        return _labels(value, max_value=MAX_ANNOTATION)


class AlertmanagerWebhook(BaseModel):
    """Alertmanager's webhook payload, version 4."""

    model_config = ConfigDict(extra="ignore")

    version: str = Field(max_length=20)
    groupKey: str = Field("", max_length=MAX_ANNOTATION)
    status: str = Field("", max_length=20)
    receiver: str = Field("", max_length=MAX_NAME)
    externalURL: str = Field("", max_length=4096)
    alerts: list[AlertmanagerAlert] = Field(max_length=MAX_ITEMS)


def parse_alertmanager(body: Mapping[str, Any], now: float) -> list[PushedEvent]:
    """Validate an Alertmanager webhook body (version 4) and turn each alert into an event row.

    >>> body = {"version": "4", "receiver": "aiops", "alerts": [{"status": "firing",
    ...     "labels": {"alertname": "HighLatency"}, "startsAt": "2024-01-01T00:00:00Z", "fingerprint": "ab"}]}
    >>> row = parse_alertmanager(body, now=1.0)[0]
    >>> row.name, row.data["status"], row.data["ends_at"], row.ts
    ('HighLatency', 'firing', None, 1704067200.0)
    """
    return alertmanager_rows(validate_alertmanager(body), now)


def validate_alertmanager(body: Mapping[str, Any]) -> AlertmanagerWebhook:
    """Validate an Alertmanager webhook body (raises :class:`InvalidInput`, a ValueError)."""
    try:
        hook = AlertmanagerWebhook.model_validate(dict(body))
    except ValidationError as exc:
        raise describe_validation_error(exc) from None
    if hook.version != "4":
        raise InvalidInput(f"only Alertmanager webhook version 4 is understood, not {hook.version!r}", "version")
    return hook


def alertmanager_rows(hook: AlertmanagerWebhook, now: float) -> list[PushedEvent]:
    """One event row per alert of a validated webhook (``now`` is unused: alerts carry their own time)."""
    rows = []
    for i, alert in enumerate(hook.alerts):
        try:
            starts = parse_time(alert.startsAt)
            ends = None if alert.endsAt.startswith("0001-") else parse_time(alert.endsAt)
        except ValueError as exc:
            raise InvalidInput(str(exc), f"alerts.{i}") from None
        rows.append(
            PushedEvent(
                stream=ALERTMANAGER_STREAM,
                kind=EventKind.EVENT,
                name=alert.labels.get("alertname", ""),
                ts=starts,
                labels=dict(alert.labels),
                data={
                    "status": alert.status,
                    "starts_at": starts,
                    "ends_at": ends,
                    "fingerprint": alert.fingerprint,
                    "annotations": dict(alert.annotations),
                    "generator_url": alert.generatorURL,
                    "receiver": hook.receiver,
                    "group_key": hook.groupKey,
                    "external_url": hook.externalURL,
                },
            )
        )
    return rows
