"""Rows appended to a CSV or JSON Lines file by a pipeline, read incrementally by byte offset."""

from __future__ import annotations

import csv
import hashlib
import json
import math
import os
import threading
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field

from aiops.errors import SourceError
from aiops.plugins import Source
from aiops.redact import redact
from aiops.replay import FrameReplay, RowsReplay, SeriesReplay
from aiops.types import Finding, Frame, Series

CHUNK = 1 << 20  # bytes read per system call
MAX_LINE = 1 << 20  # a "line" longer than this without a newline is garbage, not a partial row
EXAMPLE_CHARS = 200
# rows remembered at the newest timestamp, to tell a repeated row from a new one in the same second; a
# bound keeps the state small when a pipeline writes a huge batch with one timestamp
MAX_IDENTITIES = 10_000

_PROBLEMS = {
    "file_missing": "file disappeared (rotation in progress?)",
    "rotated": "file rotated/truncated, reading it from the start",
    "unparseable": "unparseable lines",
    "not_an_object": "JSON lines that are not objects",
    "field_count": "CSV rows whose field count differs from the header",
    "missing_timestamp": "rows without a timestamp",
    "bad_timestamp": "rows with an unparseable timestamp",
    "duplicate_row": "duplicate rows: same timestamp and same content or key columns (dropped)",
    "out_of_order": "rows with a timestamp older than one already read (dropped)",
    "non_numeric": "non-numeric values in value columns",
    "non_finite": "NaN or infinite values",
    "line_too_long": "over-long lines without a newline (skipped)",
    "missing_column": "value columns absent from the data",
}


class FileParams(BaseModel):
    """Parameters of the file source."""

    model_config = ConfigDict(extra="forbid")

    path: str = Field(description="the file a pipeline appends to")
    format: Literal["csv", "jsonl", "auto"] = Field(
        "auto", description="csv, jsonl, or auto (by suffix: .csv/.tsv -> csv, .jsonl/.ndjson/.json -> jsonl)"
    )
    timestamp_column: str = Field(
        "timestamp",
        description="column of epoch seconds or ISO 8601 / 'YYYY-MM-DD HH:MM:SS' times (naive = UTC)",
    )
    value_columns: list[str] | None = Field(
        None, description="columns to turn into series (default: every numeric column but the timestamp)"
    )
    labels: dict[str, str] = Field(default_factory=dict, description="labels added to every series")
    max_rows_per_tick: int = Field(100_000, ge=1, description="lines read per collection at most; the rest next tick")
    key_columns: list[str] | None = Field(
        None,
        description="columns that identify a row: two rows with the same timestamp and the same values here are "
        "duplicates (default: rows are duplicates only when the whole line is the same)",
    )


class FileSource(Source):
    """Numeric columns of a CSV/JSONL file that a pipeline appends to, read incrementally.

    Why: batch pipelines and model services often log metrics (row counts, latencies, accuracy) to a file,
    and that file grows for ever. The source remembers a byte offset, the file's inode and (for CSV) the
    header, so each tick reads only the new bytes; a partial last line is left for the next tick; a rotated
    or truncated file (new inode, or smaller than the offset) is read again from the start. Bad input
    never raises: unparseable lines, non-numeric or non-finite values, duplicate rows and out-of-order
    timestamps are skipped and reported as ``data_quality`` problems of the frame, with up to three example
    lines. Rows that only share a timestamp are kept (a batch written in one second is not a duplicate); a
    row is a duplicate when its timestamp and its whole line (or its ``key_columns``) repeat.

    Each value column becomes one series (name = column, labels = ``labels``); ``rows`` holds the accepted
    rows for table detectors. A row is accepted once: its timestamp must not be older than the newest already
    delivered (the watermark, kept in ``state_dict`` with the offset and the identities of the rows at the
    watermark). Without a watermark (first tick with no saved state) rows at or before ``since`` are skipped
    silently as already seen.
    """

    Params: ClassVar[type[BaseModel]] = FileParams

    @classmethod
    def test_params(cls) -> list[dict[str, Any]]:
        return [{"path": "metrics.csv"}, {"path": "events.jsonl", "format": "jsonl", "value_columns": ["latency"]}]

    def __init__(
        self,
        *,
        path: str,
        format: Literal["csv", "jsonl", "auto"] = "auto",
        timestamp_column: str = "timestamp",
        value_columns: list[str] | None = None,
        labels: Mapping[str, str] | None = None,
        max_rows_per_tick: int = 100_000,
        key_columns: list[str] | None = None,
    ) -> None:
        self.params: FileParams = self.validate_params(
            {
                "path": path,
                "format": format,
                "timestamp_column": timestamp_column,
                "value_columns": None if value_columns is None else list(value_columns),
                "labels": dict(labels or {}),
                "max_rows_per_tick": max_rows_per_tick,
                "key_columns": None if key_columns is None else list(key_columns),
            }
        )
        self.offset_ = 0
        self.inode_: int | None = None
        self.header_: list[str] | None = None
        self.last_ts_: float | None = None
        self.at_last_ts_: set[str] = set()  # identities of the rows delivered at ``last_ts_``
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ state

    def state_dict(self) -> dict[str, Any]:
        return {
            "offset": self.offset_,
            "inode": self.inode_,
            "header": self.header_,
            "last_ts": self.last_ts_,
            "at_last_ts": sorted(self.at_last_ts_)[:MAX_IDENTITIES],
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        offset, inode, header, last_ts = (state.get(k) for k in ("offset", "inode", "header", "last_ts"))
        self.offset_ = int(offset) if isinstance(offset, int) and offset >= 0 else 0
        self.inode_ = int(inode) if isinstance(inode, int) else None
        self.header_ = [str(h) for h in header] if isinstance(header, list) else None
        self.last_ts_ = float(last_ts) if isinstance(last_ts, int | float) and math.isfinite(last_ts) else None
        identities = state.get("at_last_ts")
        self.at_last_ts_ = {str(i) for i in identities} if isinstance(identities, list) else set()

    # ------------------------------------------------------------------ collect

    def collect(self, since: float | None, until: float) -> Frame:
        # An abandoned (timed-out) collection may still be running in its thread; two readers would race on
        # the offset, so the second one steps aside and the next tick catches up.
        if not self._lock.acquire(blocking=False):
            raise SourceError(f"file source: a previous read of {self.params.path} is still running")
        try:
            return self._collect(since, until)
        finally:
            self._lock.release()

    def history(self, since: float, until: float, every: float) -> FrameReplay:
        """The file's rows timed in ``(since, until]``, for a backtest: read once from the start by a fresh
        reader, then each replayed tick gets the series points and rows of its window."""
        reader = FileSource(**{**self.params.model_dump(), "max_rows_per_tick": 10**9})
        frame = reader.collect(None, until)
        ts_col = self.params.timestamp_column
        timed = [(parse_timestamp(r.get(ts_col)), r) for r in frame.rows]
        kept = [(t, r) for t, r in timed if t is not None and since < t <= until]

        def rows_frame(window: list[dict[str, Any]], _total: int, at: float) -> Frame:
            return Frame(source="file", collected_at=at, rows=tuple(window))

        rows = RowsReplay([r for _, r in kept], ts_col, rows_frame, 10**9, times=[t for t, _ in kept])
        return FrameReplay("file", SeriesReplay("file", frame.series, first_window=every), rows, frame.columns)

    def _collect(self, since: float | None, until: float) -> Frame:
        problems = _Problems(until)
        path = self.params.path
        try:
            fh = open(path, "rb")  # noqa: SIM115 - closed below; opened first so stat and read see one file
        except FileNotFoundError:
            if self.inode_ is None:
                raise SourceError(f"file source: {path} does not exist", recoverable=True) from None
            problems.add("file_missing", path)
            return Frame(source="file", collected_at=until, problems=problems.findings())
        except OSError as exc:
            raise SourceError(f"file source: cannot open {path}: {exc.strerror or exc}", recoverable=True) from None
        with fh:
            st = os.fstat(fh.fileno())
            if self.inode_ is not None and (st.st_ino != self.inode_ or st.st_size < self.offset_):
                problems.add("rotated", f"inode {self.inode_} -> {st.st_ino}, size {st.st_size}, offset {self.offset_}")
                self.offset_, self.header_ = 0, None
            self.inode_ = st.st_ino
            fmt = self._format(fh)
            if fmt == "csv" and self.header_ is None and self.offset_ > 0:
                self.header_ = _read_header(fh, self._delimiter())  # resumed from a state without the header
            lines, self.offset_ = _read_lines(fh, self.offset_, st.st_size, self.params.max_rows_per_tick, problems)
        return self._parse(lines, fmt, since, until, problems)

    def _delimiter(self) -> str:
        return "\t" if Path(self.params.path).suffix.lower() == ".tsv" else ","

    def _format(self, fh: Any) -> str:
        fmt = self.params.format
        if fmt != "auto":
            return fmt
        suffix = Path(self.params.path).suffix.lower()
        if suffix in (".csv", ".tsv", ".txt"):
            return "csv"
        if suffix in (".jsonl", ".ndjson", ".json"):
            return "jsonl"
        pos = fh.tell()
        fh.seek(0)
        head = fh.read(64).lstrip()
        fh.seek(pos)
        return "jsonl" if head.startswith(b"{") else "csv"

    def _parse(self, lines: list[bytes], fmt: str, since: float | None, until: float, problems: _Problems) -> Frame:
        ts_col = self.params.timestamp_column
        explicit = self.params.value_columns
        delimiter = self._delimiter()
        watermark, silent = (self.last_ts_, False) if self.last_ts_ is not None else (since, True)
        at_watermark = set(self.at_last_ts_) if not silent else set()
        accepted: list[tuple[float, dict[str, Any], str]] = []
        columns: dict[str, None] = dict.fromkeys(self.header_ or [])
        for raw in lines:
            text = raw.decode("utf-8", errors="replace").rstrip("\r\n")
            if not text.strip():
                continue
            if fmt == "csv":
                fields = _csv_fields(text, delimiter)
                if fields is None:
                    problems.add("unparseable", text)
                    continue
                if self.header_ is None:
                    self.header_ = [f.strip().lstrip("\ufeff") for f in fields]
                    columns = dict.fromkeys(self.header_)
                    continue
                if len(fields) != len(self.header_):
                    problems.add("field_count", text)
                    continue
                row: dict[str, Any] = dict(zip(self.header_, fields, strict=True))
            else:
                try:
                    obj = json.loads(text)
                except (ValueError, RecursionError):
                    problems.add("unparseable", text)
                    continue
                if not isinstance(obj, dict):
                    problems.add("not_an_object", text)
                    continue
                row = obj
                columns.update(dict.fromkeys(str(k) for k in row))
            if ts_col not in row or row[ts_col] in (None, ""):
                problems.add("missing_timestamp", text)
                continue
            ts = parse_timestamp(row[ts_col])
            if ts is None:
                problems.add("bad_timestamp", text)
                continue
            if watermark is not None and (ts < watermark or (silent and ts == watermark)):
                if not silent:
                    problems.add("out_of_order", text)
                continue
            identity = self._identity(row, text)
            if ts == watermark and identity in at_watermark:
                problems.add("duplicate_row", text)
                continue
            if ts != watermark:
                watermark, at_watermark = ts, set()
            silent = False
            if len(at_watermark) < MAX_IDENTITIES:
                at_watermark.add(identity)
            row[ts_col] = ts
            accepted.append((ts, row, text))
        if accepted:
            self.last_ts_, self.at_last_ts_ = accepted[-1][0], at_watermark
        return self._frame(accepted, list(columns), explicit, fmt, until, problems)

    def _identity(self, row: Mapping[str, Any], text: str) -> str:
        """What makes a row the same row: its ``key_columns`` (with the timestamp), else the whole line."""
        keys = self.params.key_columns
        raw = text if keys is None else json.dumps([str(row.get(k)) for k in keys])
        return hashlib.blake2b(raw.encode("utf-8"), digest_size=8).hexdigest()

    def _frame(
        self,
        accepted: list[tuple[float, dict[str, Any], str]],
        columns: list[str],
        explicit: list[str] | None,
        fmt: str,
        until: float,
        problems: _Problems,
    ) -> Frame:
        ts_col = self.params.timestamp_column
        if explicit is not None:
            value_cols = list(explicit)
            if accepted:
                absent = [c for c in value_cols if not any(c in row for _, row, _ in accepted)]
                for col in absent:
                    problems.add("missing_column", col)
        else:
            value_cols = [
                c for c in columns if c != ts_col and any(_is_numeric(row.get(c), fmt) for _, row, _ in accepted)
            ]
        points: dict[str, tuple[list[float], list[float]]] = {c: ([], []) for c in value_cols}
        for ts, row, text in accepted:
            for col in value_cols:
                if col not in row:
                    continue
                raw = row[col]
                if raw is None or raw == "":
                    continue  # missing value: a null-rate detector's business, not a parse problem
                value = _to_float(raw)
                if value is None:
                    problems.add("non_numeric", text)
                    continue
                row[col] = value
                if not math.isfinite(value):
                    problems.add("non_finite", text)
                    continue
                points[col][0].append(ts)
                points[col][1].append(value)
        labels = dict(self.params.labels)
        series = tuple(
            Series(name=col, timestamps=tuple(t), values=tuple(v), labels=labels) for col, (t, v) in points.items() if t
        )
        return Frame(
            source="file",
            collected_at=until,
            series=series,
            rows=tuple(row for _, row, _ in accepted),
            columns=tuple(columns),
            problems=problems.findings(),
        )


# ---------------------------------------------------------------------- parsing helpers


def parse_timestamp(value: Any) -> float | None:
    """Epoch seconds from a number, a numeric string or an ISO 8601 string (naive means UTC); else None.

    >>> parse_timestamp(1700000000), parse_timestamp("1700000000.5")
    (1700000000.0, 1700000000.5)
    >>> parse_timestamp("2023-11-14 22:13:20"), parse_timestamp("2023-11-14T23:13:20+01:00")
    (1700000000.0, 1700000000.0)
    >>> parse_timestamp("yesterday"), parse_timestamp(float("nan")), parse_timestamp(True)
    (None, None, None)
    """
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        ts = float(value)
        return ts if math.isfinite(ts) else None
    if not isinstance(value, str):
        return None
    text = value.strip()
    if not text:
        return None
    try:
        ts = float(text)
    except ValueError:
        try:
            when = datetime.fromisoformat(text[:-1] + "+00:00" if text[-1] in "zZ" else text)
        except ValueError:
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        try:
            return when.timestamp()
        except (OverflowError, OSError, ValueError):
            return None
    return ts if math.isfinite(ts) else None


def _to_float(value: Any) -> float | None:
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, int | float):
        try:
            return float(value)
        except OverflowError:  # a JSON integer too large for a float
            return None
    if isinstance(value, str):
        try:
            return float(value.strip())
        except ValueError:
            return None
    return None


def _is_numeric(value: Any, fmt: str) -> bool:
    """Whether a cell makes its column a value column (JSON: real numbers only; CSV: parseable text)."""
    if value is None or isinstance(value, bool):
        return False
    if isinstance(value, int | float):
        return True
    return fmt == "csv" and isinstance(value, str) and _to_float(value) is not None


def _csv_fields(text: str, delimiter: str) -> list[str] | None:
    try:
        rows = list(csv.reader([text], delimiter=delimiter, strict=True))
    except csv.Error:
        return None
    return rows[0] if len(rows) == 1 else None


def _read_header(fh: Any, delimiter: str) -> list[str] | None:
    fh.seek(0)
    line = fh.readline(MAX_LINE)
    if not line.endswith(b"\n"):
        return None
    fields = _csv_fields(line.decode("utf-8", errors="replace").rstrip("\r\n"), delimiter)
    return [f.strip().lstrip("\ufeff") for f in fields] if fields else None


def _read_lines(fh: Any, offset: int, size: int, max_lines: int, problems: _Problems) -> tuple[list[bytes], int]:
    """Complete lines between ``offset`` and ``size`` (at most ``max_lines``) and the offset after the last one.

    A trailing partial line is left for the next call, unless it is longer than MAX_LINE (garbage without
    newlines), which is skipped so it cannot stall the source for ever.
    """
    fh.seek(offset)
    lines: list[bytes] = []
    pending = b""
    pos = offset
    while pos < size and len(lines) < max_lines:
        chunk = fh.read(min(CHUNK, size - pos))
        if not chunk:
            break
        pos += len(chunk)
        data = pending + chunk
        start = 0
        while len(lines) < max_lines:
            nl = data.find(b"\n", start)
            if nl < 0:
                break
            lines.append(data[start : nl + 1])
            start = nl + 1
        pending = data[start:]
        if len(lines) >= max_lines:
            break
        if len(pending) > MAX_LINE:
            problems.add("line_too_long", pending[:EXAMPLE_CHARS].decode("utf-8", errors="replace"))
            pending = b""
    # Hitting max_lines is not a data problem: the rest is simply read on the next tick.
    return lines, pos - len(pending)


class _Problems:
    """Data-quality problems seen in one collection: a count and the first three offending lines per kind."""

    def __init__(self, at: float) -> None:
        self.at = at
        self.seen: dict[str, tuple[int, list[str]]] = {}

    def add(self, name: str, example: str) -> None:
        count, examples = self.seen.get(name, (0, []))
        if len(examples) < 3:
            short = example if len(example) <= EXAMPLE_CHARS else example[:EXAMPLE_CHARS] + "..."
            examples.append(redact(short))
        self.seen[name] = (count + 1, examples)

    def findings(self) -> tuple[Finding, ...]:
        return tuple(
            Finding(
                kind="data_quality",
                detector="file",
                summary=f"file source: {count} {_PROBLEMS.get(name, name)}",
                labels={"source": "file", "problem": name},
                evidence={"count": count, "examples": examples},
                observed_at=self.at,
            )
            for name, (count, examples) in self.seen.items()
        )
