"""Pushed telemetry as values: what ``POST /api/v1/ingest`` and Alertmanager's webhook hand to the store, what
a push source reads back, and the narrow read view of the store a source is given.

A module of its own, importing nothing of the store or the plugins, so that the ingest path, the store and the
plugin contracts can all name these types without depending on each other.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import NamedTuple, Protocol, runtime_checkable

JsonObject = Mapping[str, object]

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
            ts=as_float(row["ts"]),
            value=None if value is None else as_float(value),
            labels={str(k): str(v) for k, v in labels.items()} if isinstance(labels, Mapping) else {},
            data=json_object(row.get("data")),
            id=as_int(row["id"]),
            received_at=as_float(row["received_at"]),
        )

    @classmethod
    def from_values(
        cls,
        stream: object,
        kind: object,
        name: object,
        ts: object,
        value: object,
        labels: object,
        data: object,
        id: object,
        received_at: object,
    ) -> StoredEvent:
        """:meth:`from_row` for the columns given positionally, in the record's field order (no mapping per
        row: the push source reads thousands of rows a tick)."""
        if isinstance(labels, dict) and all(type(v) is str for v in labels.values()):
            plain = labels  # what ingest stores: string labels, decoded into a fresh dict
        else:
            plain = {str(k): str(v) for k, v in labels.items()} if isinstance(labels, Mapping) else {}
        return cls(
            str(stream),
            EventKind(str(kind)),
            str(name),
            as_float(ts),
            None if value is None else as_float(value),
            plain,
            json_object(data) if data else {},
            as_int(id),
            as_float(received_at),
        )

    def to_dict(self) -> dict[str, object]:
        """The row as a plain mapping (what a backtest's replay of the stream holds)."""
        return dict(self._asdict())


@runtime_checkable
class PushedEvents(Protocol):
    """The one piece of the store a plugin may read: pushed telemetry rows of a stream, by id.

    Narrow on purpose: a plugin that could reach the whole store could change incidents or the ledger behind
    the policy's back. :class:`aiops.store.store.Store` satisfies it.
    """

    def read_events(
        self, stream: str, after_id: int, limit: int, *, since: float | None = None
    ) -> Sequence[StoredEvent]: ...


class ClosablePushedEvents(PushedEvents, Protocol):
    """Pushed telemetry of a store the plugin opened itself (``store_url``), which it closes when stopped."""

    def close(self) -> None: ...


def as_int(value: object) -> int:
    """A number column as the driver gave it (int, float or numeric text), as an int; anything else is an error."""
    if isinstance(value, int | float | str):
        return int(value)
    raise TypeError(f"expected a number, got {value!r}")


def as_float(value: object) -> float:
    """A number column as the driver gave it, as a float; anything else (None included) is an error."""
    if isinstance(value, int | float | str):
        return float(value)
    raise TypeError(f"expected a number, got {value!r}")


def json_object(value: object) -> JsonObject:
    """A JSON value taken out of a JSON column, as an object: empty when it is absent or not an object."""
    return {str(k): v for k, v in value.items()} if isinstance(value, Mapping) else {}
