"""The recent points of every series the checks collect, kept in memory, so the web console can plot an
incident's series around its detection and its remediation.

Why in memory and not in the store: the store keeps what decisions need (findings, transitions, actions);
the raw series stays in its source (a Prometheus, a table, a file). A few thousand recent points per series
are enough to show an on-call engineer what the detector saw, cost a few hundred kilobytes, and need no
schema change; after a restart the plot falls back to the values recorded with each finding.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

import structlog

from aiops.plugins import PluginContext, Source
from aiops.types import Frame

if TYPE_CHECKING:
    from aiops.replay import Replay

MAX_POINTS: Final = 2000  # per series: 16 minutes of half-second ticks, 33 hours of one-minute ones
MAX_SERIES: Final = 50  # per check: a query returning thousands of series keeps only the first ones

log = structlog.get_logger("aiops.series_history")


@dataclass(frozen=True)
class RecordedSeries:
    """The points of one series inside a time window."""

    name: str
    labels: Mapping[str, str]
    timestamps: tuple[float, ...]
    values: tuple[float, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "labels": dict(self.labels),
            "timestamps": list(self.timestamps),
            "values": list(self.values),
        }


class SeriesHistory:
    """Bounded per-series ring buffers, filled by :class:`RecordingSource`; safe across threads."""

    def __init__(self, max_points: int = MAX_POINTS, max_series: int = MAX_SERIES) -> None:
        self.max_points = max_points
        self.max_series = max_series
        self._lock = threading.Lock()
        self._series: dict[str, dict[str, tuple[str, dict[str, str], deque[tuple[float, float]]]]] = {}

    def record(self, check: str, frame: Frame) -> None:
        with self._lock:
            per_check = self._series.setdefault(check, {})
            for series in frame.series:
                entry = per_check.get(series.key)
                if entry is None:
                    if len(per_check) >= self.max_series:
                        continue
                    entry = per_check[series.key] = (series.name, dict(series.labels), deque(maxlen=self.max_points))
                points = entry[2]
                newest = points[-1][0] if points else float("-inf")
                points.extend(
                    (float(t), float(v)) for t, v in zip(series.timestamps, series.values, strict=False) if t > newest
                )

    def window(self, check: str, start: float, end: float) -> list[RecordedSeries]:
        """Every recorded series of ``check`` with its points in ``[start, end]`` (series without any left out)."""
        with self._lock:
            entries = [(name, labels, list(points)) for name, labels, points in self._series.get(check, {}).values()]
        out = []
        for name, labels, points in entries:
            inside = [(t, v) for t, v in points if start <= t <= end]
            if inside:
                out.append(RecordedSeries(name, labels, tuple(t for t, _ in inside), tuple(v for _, v in inside)))
        return out

    def forget_except(self, checks: set[str]) -> None:
        """Drop the series of checks that a reload removed."""
        with self._lock:
            for name in set(self._series) - checks:
                del self._series[name]


class RecordingSource(Source):
    """A check's source that records every frame it collects; everything else passes through to the source.

    Recording never fails a tick: an error is logged once per source and the frame is returned as collected.
    """

    def __init__(self, source: Source, check: str, history: SeriesHistory) -> None:
        self._source = source
        self._check = check
        self._history = history
        self._warned = False

    def collect(self, since: float | None, now: float) -> Any:
        frame = self._source.collect(since, now)
        try:
            if isinstance(frame, Frame):
                self._history.record(self._check, frame)
        except Exception as exc:
            if not self._warned:
                self._warned = True
                log.warning("series history: cannot record this source's frames", check=self._check, error=repr(exc))
        return frame

    # Every other hook is the wrapped source's own (explicitly: the base class's defaults must not answer).

    def state_dict(self) -> dict[str, Any]:
        return self._source.state_dict()

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self._source.load_state_dict(state)

    def history(self, since: float, until: float, every: float) -> Replay | None:
        return self._source.history(since, until, every)

    def start(self, ctx: PluginContext) -> None:
        super().start(ctx)
        self._source.start(ctx)

    def stop(self) -> None:
        self._source.stop()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._source, name)
