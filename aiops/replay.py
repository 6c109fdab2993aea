"""History of a source, replayed tick by tick as if the source were being collected live.

A source that can read its past declares ``history(since, until, every) -> Replay``: one bulk read (Prometheus
``query_range`` in chunks, a SQL table by its time column), after which ``Replay.collect(since, until)``
answers from memory with the frame the live source would have returned for that window. A source without the
hook is replayed through its own ``collect`` at simulated times (correct for sources whose ``collect``
honours ``until``; documented as a limit in docs/backtest.md).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from aiops.plugins import Source
from aiops.plugins.source import Replay as Replay  # re-exported: the replays below are its kinds
from aiops.types import Frame, Series


@dataclass(frozen=True)
class _Points:
    name: str
    labels: Mapping[str, str]
    timestamps: np.ndarray[Any, np.dtype[np.float64]]
    values: np.ndarray[Any, np.dtype[np.float64]]


@dataclass(frozen=True)
class _Grid:
    """Series sampled at the same instants (a Prometheus range query's are): one search slices them all."""

    timestamps: np.ndarray[Any, np.dtype[np.float64]]
    values: np.ndarray[Any, np.dtype[np.float64]]  # one row per series
    members: tuple[_Points, ...]


class SeriesReplay(Replay):
    """Metric series held in memory; ``collect`` returns the points in ``(since, until]``.

    ``first_window`` is how far back the first tick (``since`` None) reaches, as the live source's lookback.
    """

    def __init__(self, source: str, series: Sequence[Series], first_window: float) -> None:
        self.source = source
        self.first_window = first_window
        self._points = [
            _Points(s.name, dict(s.labels), np.asarray(s.timestamps, dtype=float), np.asarray(s.values, dtype=float))
            for s in series
        ]
        groups: dict[bytes, list[_Points]] = {}
        for p in self._points:
            groups.setdefault(p.timestamps.tobytes(), []).append(p)
        self._grids = [
            _Grid(members[0].timestamps, np.vstack([m.values for m in members]), tuple(members))
            for members in groups.values()
        ]

    def __len__(self) -> int:
        return sum(len(p.timestamps) for p in self._points)

    def collect(self, since: float | None, until: float) -> Frame:
        start = until - self.first_window if since is None else since
        out = []
        for grid in self._grids:
            lo, hi = np.searchsorted(grid.timestamps, [start, until], side="right")
            if hi <= lo:
                continue
            ts = grid.timestamps[lo:hi].tolist()
            for member, values in zip(grid.members, grid.values[:, lo:hi].tolist(), strict=True):
                out.append(Series(member.name, ts, values, member.labels))
        return Frame(source=self.source, collected_at=until, series=tuple(out))

    def series(self) -> list[Series]:
        """Everything held, for scoring a whole history in one batch."""
        return [Series(p.name, p.timestamps.tolist(), p.values.tolist(), p.labels) for p in self._points]

    def window(self, labels: Mapping[str, str], start: float, end: float, limit: int = 3) -> list[Series]:
        """For a plot: the points in ``[start, end]`` of the (at most ``limit``) series whose labels an
        incident carries."""
        out = []
        for p in self._points:
            if any(labels.get(k) != v for k, v in p.labels.items()):
                continue
            lo, hi = np.searchsorted(p.timestamps, [start, end], side="left")
            out.append(Series(p.name, p.timestamps[lo:hi].tolist(), p.values[lo:hi].tolist(), p.labels))
            if len(out) == limit:
                break
        return out


class RowsReplay(Replay):
    """Table rows held in memory, ordered by their time column; ``collect`` frames the rows of the window
    with ``make_frame`` (the live source's own frame builder, so a replayed frame has the live shape)."""

    def __init__(
        self,
        rows: Sequence[Mapping[str, Any]],
        timestamp_column: str,
        make_frame: Callable[[list[dict[str, Any]], int, float], Frame],
        max_rows: int,
        rewind: Callable[[], None] | None = None,
        times: Sequence[float] | None = None,
    ) -> None:
        """``times``: each row's epoch seconds, when the rows carry their time as text (else the column's
        number is used)."""

        def when(row: Mapping[str, Any]) -> float:
            value = row.get(timestamp_column)
            return float(value) if isinstance(value, int | float) and math.isfinite(value) else math.inf

        epochs = list(times) if times is not None else [when(r) for r in rows]
        order = sorted(range(len(rows)), key=lambda i: epochs[i])
        self._rows = [dict(rows[i]) for i in order]
        self._times = np.asarray([epochs[i] for i in order], dtype=float)
        self._ts_col = timestamp_column
        self._rewind = rewind
        self._make_frame = make_frame
        self._max_rows = max_rows

    def __len__(self) -> int:
        return len(self._rows)

    def collect(self, since: float | None, until: float) -> Frame:
        lo = 0 if since is None else int(np.searchsorted(self._times, since, side="right"))
        hi = int(np.searchsorted(self._times, until, side="right"))
        hi = max(hi, lo)
        rows = [dict(r) for r in self._rows[max(lo, hi - self._max_rows) : hi]]
        return self._make_frame(rows, hi - lo, until)

    def rewind(self) -> None:
        """Back to the start, for another replay of the same rows (a tune tries many configs)."""
        if self._rewind is not None:
            self._rewind()

    def window(self, labels: Mapping[str, str], start: float, end: float, limit: int = 3) -> list[Series]:
        """For a plot: up to ``limit`` numeric columns over ``[start, end]``."""
        lo, hi = np.searchsorted(self._times, [start, end], side="left")
        return self._numeric(self._rows[lo:hi], self._times[lo:hi].tolist())[:limit]

    def _numeric(self, rows: Sequence[Mapping[str, Any]], times: Sequence[float]) -> list[Series]:
        numeric: dict[str, tuple[list[float], list[float]]] = {}
        for t, row in zip(times, rows, strict=True):
            for col, value in row.items():
                skip = col in ("id", "ts", self._ts_col) or isinstance(value, bool)
                if isinstance(value, int | float) and not skip:
                    ts, vs = numeric.setdefault(col, ([], []))
                    ts.append(t)
                    vs.append(float(value))
        return [Series(col, ts, vs) for col, (ts, vs) in numeric.items()]


class FrameReplay(Replay):
    """A source whose frames carry both series and rows (the file source): each part replayed by its own
    replay, merged back into one frame."""

    def __init__(self, source: str, series: SeriesReplay, rows: RowsReplay, columns: Sequence[str]) -> None:
        self.source = source
        self._series = series
        self._rows = rows
        self._columns = tuple(columns)

    def __len__(self) -> int:
        return len(self._series)

    def collect(self, since: float | None, until: float) -> Frame:
        rows = self._rows.collect(since, until).rows
        series = self._series.collect(since, until).series
        return Frame(source=self.source, collected_at=until, series=series, rows=rows, columns=self._columns)

    def window(self, labels: Mapping[str, str], start: float, end: float, limit: int = 3) -> list[Series]:
        return self._series.window(labels, start, end, limit)


class LiveReplay(Replay):
    """A source without a history hook, asked with simulated times through its own ``collect``."""

    def __init__(self, source: Source) -> None:
        self._source = source

    def collect(self, since: float | None, until: float) -> Frame:
        frame: Frame = self._source.collect(since, until)
        return frame


def replay_of(source: Source, since: float, until: float, every: float) -> Replay:
    """The replay of one source over ``[since, until]`` (one bulk read when the source can read its past)."""
    replay: Replay | None = source.history(since, until, every)
    return replay if replay is not None else LiveReplay(source)
