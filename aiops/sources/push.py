"""Sources over pushed telemetry: ``push`` (points/events of ``POST /api/v1/ingest``) and ``alertmanager``
(alerts of ``POST /api/v1/alertmanager``), both read incrementally from the store by row id.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field

from aiops.durations import Duration
from aiops.errors import SourceError, StoreError
from aiops.events import open_pushed_events
from aiops.matchers import Matchers, matches_all, parse_matchers
from aiops.plugins import ClosablePushedEvents, PushedEvents, Source
from aiops.pushed import EventKind, StoredEvent
from aiops.replay import RowsReplay
from aiops.sources._common import Problems, rows_frame
from aiops.sources.ingest import ALERTMANAGER_STREAM, STREAM_PATTERN
from aiops.types import Frame, Series, series_key

MAX_TRACKED_SERIES = 10_000  # per-series watermarks kept in state; beyond this the oldest are forgotten


class PushParams(BaseModel):
    """Parameters of the push source."""

    model_config = ConfigDict(extra="forbid")

    stream: str = Field("default", pattern=STREAM_PATTERN, description="the stream named in POST /api/v1/ingest")
    store_url: str | None = Field(None, description="store to read (default: the daemon's own store)")
    max_rows_per_tick: int = Field(50_000, ge=1, description="pushed rows read per collection at most")


class _PushedRows(Source):
    """What the push and alertmanager sources share: the store their rows are read from, and the cursor.

    The daemon's own store (handed over in the plugin context) unless ``store_url`` names another one,
    which the source then opens itself and closes when stopped. The cursor is the id of the last row read,
    kept in the source's state so that a restart neither loses nor repeats a row; subclasses add their own
    state to it.
    """

    params: Any
    cursor_: int | None = None
    _own_store: ClosablePushedEvents | None = None

    def state_dict(self) -> dict[str, Any]:
        return {"cursor": self.cursor_}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        cursor = state.get("cursor")
        self.cursor_ = int(cursor) if isinstance(cursor, int) and cursor >= 0 else None

    def _events(self) -> PushedEvents:
        if self.params.store_url:
            if self._own_store is None:
                self._own_store = open_pushed_events(self.params.store_url)
            return self._own_store
        ctx = self.context
        if ctx is not None and ctx.events is not None:
            return ctx.events
        raise SourceError(
            "no store to read pushed telemetry from: run inside the daemon, or set store_url", recoverable=False
        )

    def stop(self) -> None:
        store, self._own_store = self._own_store, None
        if store is not None:
            store.close()


class PushSource(_PushedRows):
    """Metric points and events pushed to ``POST /api/v1/ingest``, read from the store by row id.

    Why: a batch job that runs for two minutes or a model server behind a firewall cannot be scraped, but it
    can POST what it measured. Rows are durable before the POST is answered, and this source keeps the id of
    the last row it delivered (``state_dict``), so a daemon restart neither loses nor repeats a point. Points
    become one series per (name, labels); events become table rows (``timestamp``, ``type``, labels and
    data fields flattened). Null values, duplicate and out-of-order timestamps are reported as
    ``data_quality`` problems, never raised.
    """

    Params: ClassVar[type[BaseModel]] = PushParams

    def __init__(self, *, stream: str = "default", store_url: str | None = None, max_rows_per_tick: int = 50_000):
        self.params: PushParams = self.validate_params(
            {"stream": stream, "store_url": store_url, "max_rows_per_tick": max_rows_per_tick}
        )
        self.last_ts_: dict[str, float] = {}

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "last_ts": dict(self.last_ts_)}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        super().load_state_dict(state)
        last = state.get("last_ts")
        self.last_ts_ = (
            {str(k): float(v) for k, v in last.items() if isinstance(v, int | float)} if isinstance(last, dict) else {}
        )

    def collect(self, since: float | None, until: float) -> Frame:
        rows = _read(self._events(), self.params.stream, self.cursor_, since, self.params.max_rows_per_tick)
        if rows:
            self.cursor_ = rows[-1].id
        return self._frame(rows, until)

    def history(self, since: float, until: float, every: float) -> RowsReplay:
        """The stream's stored rows that arrived in ``(since, until]``, for a backtest: each replayed tick
        gets the rows that had arrived since the previous one, framed by this source's own code (the store
        keeps pushed rows for a week, so that is as far back as this goes)."""
        store = self._events()
        rows: list[dict[str, object]] = []
        after = 0
        try:
            while True:
                page = store.read_events(self.params.stream, after, 10_000, since=since)
                if not page:
                    break
                rows.extend(r.to_dict() for r in page if r.received_at <= until)
                after = page[-1].id
        except StoreError as exc:
            raise SourceError(f"{self.params.stream} stream: store unreachable: {exc}", recoverable=True) from None
        return RowsReplay(
            rows,
            "received_at",
            lambda window, _total, at: self._frame([StoredEvent(**w) for w in window], at),
            10**9,
            rewind=self.last_ts_.clear,
        )

    def _frame(self, rows: list[StoredEvent], until: float) -> Frame:
        problems = Problems("push", until)
        points: dict[str, tuple[str, dict[str, str], list[tuple[float, float]]]] = {}
        events: list[dict[str, Any]] = []
        for row in rows:
            labels = dict(row.labels)
            if row.kind is EventKind.POINT:
                if row.value is None:
                    problems.add("null_value", f"{series_key(row.name, labels)} at {row.ts}")
                    continue
                key = series_key(row.name, labels)
                points.setdefault(key, (row.name, labels, []))[2].append((row.ts, row.value))
            else:
                events.append({"timestamp": row.ts, "type": row.name, **labels, **row.data})
        series = []
        for key, (name, labels, pts) in points.items():
            pts.sort(key=lambda p: p[0])
            last = self.last_ts_.get(key, -math.inf)
            ts: list[float] = []
            vs: list[float] = []
            for t, v in pts:
                if ts and t == ts[-1]:
                    problems.add("duplicate_timestamp", f"{key} at {t}")
                elif t <= last:
                    problems.add("out_of_order", f"{key} at {t} (already read up to {last})")
                else:
                    ts.append(t)
                    vs.append(v)
            if ts:
                self.last_ts_[key] = ts[-1]
                series.append(Series(name=name, timestamps=tuple(ts), values=tuple(vs), labels=labels))
        if len(self.last_ts_) > MAX_TRACKED_SERIES:
            newest = sorted(self.last_ts_.items(), key=lambda kv: kv[1])[-MAX_TRACKED_SERIES:]
            self.last_ts_ = dict(newest)
        return rows_frame("push", until, series, events, problems)


def _read(
    store: PushedEvents, stream: str, cursor: int | None, since: float | None, limit: int
) -> list[StoredEvent]:
    try:
        if cursor is None:
            return list(store.read_events(stream, 0, limit, since=since))
        return list(store.read_events(stream, cursor, limit))
    except StoreError as exc:
        raise SourceError(f"{stream} stream: store unreachable: {exc}", recoverable=True) from None


# -- alertmanager -------------------------------------------------------------------------------------------

class AlertmanagerParams(BaseModel):
    """Parameters of the alertmanager source."""

    model_config = ConfigDict(extra="forbid")

    matchers: Matchers = Field(
        default_factory=list,
        description='Alertmanager label matchers an alert must all satisfy, e.g. [alertname="HighLatency"]',
    )
    store_url: str | None = Field(None, description="store to read (default: the daemon's own store)")
    expire_after: Duration | None = Field(
        None, gt=0, description="after this long (e.g. 10m) an alert Alertmanager stops re-sending counts as resolved"
    )


class AlertmanagerSource(_PushedRows):
    """Alerts that Alertmanager sent to ``POST /api/v1/alertmanager``: the currently firing ones, as rows.

    Why: teams already encode "the model server is slow" as Prometheus alert rules; with this source (and
    the ``alert`` detector) such an alert opens an aiops incident and runs a policy. The source keeps the
    set of firing alerts in its state (keyed by Alertmanager's fingerprint), because Alertmanager sends an
    alert once and then only every ``repeat_interval``: each tick returns every alert still firing plus
    those resolved since the last tick (status ``resolved``), and a series ``alerts_firing`` with their
    count, so a tick with no firing alert is evaluated (and heals the incident) rather than skipped.
    """

    Params: ClassVar[type[BaseModel]] = AlertmanagerParams

    def __init__(
        self, *, matchers: list[str] | None = None, store_url: str | None = None, expire_after: float | None = None
    ) -> None:
        self.params: AlertmanagerParams = self.validate_params(
            {"matchers": list(matchers or []), "store_url": store_url, "expire_after": expire_after}
        )
        self._matchers = parse_matchers(self.params.matchers)
        self.active_: dict[str, dict[str, Any]] = {}

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "active": dict(self.active_)}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        super().load_state_dict(state)
        active = state.get("active")
        self.active_ = (
            {str(k): dict(v) for k, v in active.items() if isinstance(v, dict)} if isinstance(active, dict) else {}
        )

    def collect(self, since: float | None, until: float) -> Frame:
        changed: dict[str, dict[str, Any]] = {}
        while True:  # catch up completely: the firing set must be current, not a page behind
            rows = _read(self._events(), ALERTMANAGER_STREAM, self.cursor_ or 0, None, 5_000)
            for row in rows:
                labels = dict(row.labels)
                if not matches_all(self._matchers, labels):
                    continue
                data: dict[str, Any] = dict(row.data)
                key = str(data.get("fingerprint") or series_key("alert", labels))
                alert = {
                    "alertname": labels.get("alertname", ""),
                    "status": str(data.get("status", "firing")),
                    "fingerprint": key,
                    "labels": labels,
                    "annotations": dict(data.get("annotations") or {}),
                    "starts_at": data.get("starts_at"),
                    "ends_at": data.get("ends_at"),
                    "generator_url": data.get("generator_url", ""),
                    "received_at": row.received_at,
                }
                changed[key] = alert
                if alert["status"] == "firing":
                    self.active_[key] = alert
                else:
                    self.active_.pop(key, None)
            if rows:
                self.cursor_ = rows[-1].id
            if len(rows) < 5_000:
                break
        if self.params.expire_after is not None:
            for key, alert in list(self.active_.items()):
                received = alert.get("received_at")
                if isinstance(received, int | float) and until - received > self.params.expire_after:
                    changed[key] = {**alert, "status": "resolved", "expired": True}
                    del self.active_[key]
        out = [a for k, a in changed.items() if a["status"] == "resolved" and k not in self.active_]
        out.extend(self.active_.values())
        columns = ("alertname", "status", "fingerprint", "labels", "annotations", "starts_at", "ends_at")
        return Frame(
            source="alertmanager",
            collected_at=until,
            series=(Series("alerts_firing", (until,), (float(len(self.active_)),)),),
            rows=tuple(out),
            columns=columns,
        )
