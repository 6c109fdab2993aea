"""Table rows (prediction logs, features, pipeline outputs) from CSV/JSONL/Parquet files or SQL, incrementally."""

from __future__ import annotations

import csv
import datetime as dt
import glob
import io
import json
import math
import os
import threading
from collections.abc import Iterator, Mapping, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from aiops.durations import Duration
from aiops.errors import SourceError
from aiops.plugins import Source
from aiops.redact import redact
from aiops.replay import RowsReplay
from aiops.sources._common import Problems, read_secret, rows_frame
from aiops.sources.ingest import parse_time
from aiops.types import Frame, Series

SCHEMA_SAMPLE = 1000
CHUNK = 32 << 20  # bytes parsed at once: bounded memory however large the backlog
MAX_LINE = 1 << 20
ColumnType = Literal["int", "float", "str", "bool", "timestamp"]
_SUFFIXES = {
    ".csv": "csv",
    ".tsv": "csv",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "jsonl",
    ".parquet": "parquet",
}


class TableParams(BaseModel):
    """Parameters of the table source: files (``path``) or SQL (``url`` plus ``table`` or ``query``)."""

    model_config = ConfigDict(extra="forbid")

    path: str | None = Field(None, description="a file, a glob (logs/*.csv) or a directory whose files are read")
    format: Literal["auto", "csv", "jsonl", "parquet"] = Field("auto", description="file format (auto: by suffix)")
    url: str | None = Field(None, description="SQLAlchemy URL of the database (prefer url_file / url_env)")
    url_file: str | None = Field(None, description="file holding the SQLAlchemy URL")
    url_env: str | None = Field(None, description="environment variable holding the SQLAlchemy URL")
    table: str | None = Field(None, description="SQL table (schema.table allowed)")
    query: str | None = Field(None, description="SQL query whose result is the table (read-only)")
    timestamp_column: str | None = Field(
        None, description="column of event times (epoch or ISO 8601); delivered as epoch seconds"
    )
    id_column: str | None = Field(None, description="monotonically increasing id column for incremental SQL reads")
    columns: dict[str, ColumnType] | None = Field(
        None, description="declared schema: values are cast, failures reported (default: inferred)"
    )
    max_rows: int = Field(100_000, ge=1, description="bounded window: at most the newest this many rows per tick")
    max_age: Duration | None = Field(None, gt=0, description="bounded window: only rows at most this old, e.g. 1h")

    @model_validator(mode="after")
    def _one_origin(self) -> TableParams:
        sql = bool(self.url or self.url_file or self.url_env)
        if bool(self.path) == sql:
            raise ValueError("give either path (files) or url/url_file/url_env (SQL)")
        if sql and bool(self.table) == bool(self.query):
            raise ValueError("a SQL table source needs exactly one of table or query")
        if not sql and (self.table or self.query or self.id_column):
            raise ValueError("table, query and id_column apply to SQL sources only")
        if self.max_age is not None and not self.timestamp_column:
            raise ValueError("max_age needs timestamp_column")
        return self


class TableSource(Source):
    """Rows of CSV/JSONL/Parquet files or of a SQL table/query, each read once, in a bounded window.

    Why: prediction logs and pipeline outputs are tables that grow for ever; a check must cost time in the
    new rows only. Files are read by byte offset (CSV/JSONL; per file, with the inode to notice rotation and
    the header kept) or once per version (Parquet, by mtime and size); SQL by a watermark on ``id_column``
    (or ``timestamp_column``), so each tick runs ``WHERE col > :last``. The window is bounded (the newest
    ``max_rows`` rows, and ``max_age`` seconds); the series ``table_rows_read`` counts every new row, so
    volume detectors see the true count. Unparseable lines, wrong types, a truncated last line (left for the
    next tick) and rotated files are ``data_quality`` problems, never errors. CSV/JSONL are parsed with
    pyarrow when it is installed (the ``parquet`` extra), else with the standard library.
    """

    Params: ClassVar[type[BaseModel]] = TableParams
    params: TableParams

    @classmethod
    def test_params(cls) -> list[dict[str, Any]]:
        return [{"path": "rows.csv"}, {"url": "sqlite:///rows.db", "table": "predictions"}]

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        self.files_: dict[str, dict[str, Any]] = {}
        self.watermark_: Any = None
        self.schema_: dict[str, str] = {}  # inferred kind per column when none is declared
        self._engine: Any = None
        self._lock = threading.Lock()

    def state_dict(self) -> dict[str, Any]:
        return {"files": dict(self.files_), "watermark": self.watermark_, "schema": dict(self.schema_)}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        schema = state.get("schema")
        self.schema_ = {str(k): str(v) for k, v in schema.items()} if isinstance(schema, dict) else {}
        files = state.get("files")
        self.files_ = (
            {str(k): dict(v) for k, v in files.items() if isinstance(v, dict)} if isinstance(files, dict) else {}
        )
        self.watermark_ = state.get("watermark")

    def collect(self, since: float | None, until: float) -> Frame:
        if not self._lock.acquire(blocking=False):
            raise SourceError("table source: a previous read is still running")
        try:
            problems = Problems("table", until)
            if self.params.path:
                rows, total = self._collect_files(since, until, problems)
            else:
                rows, total = self._collect_sql(until, problems)
            rows = self._finish(rows, problems, sql=not self.params.path)
        finally:
            self._lock.release()
        return _table_frame(rows, total, until, problems)

    def history(self, since: float, until: float, every: float) -> RowsReplay:
        """The rows of ``(since, until]`` by ``timestamp_column``, for a backtest: one read, then each
        replayed tick gets the rows of its window in the frame shape ``collect`` gives (``every`` unused:
        rows carry their own times)."""
        ts_col = self.params.timestamp_column
        if not ts_col:
            raise SourceError("table source: a backtest needs timestamp_column (the rows' times)", recoverable=False)
        problems = Problems("table", until)
        if self.params.path:
            rows, _ = self._collect_files(None, until, problems)
        else:
            rows = self._history_sql(since, until)
        rows = self._finish(rows, problems, sql=not self.params.path)
        kept = [r for r in rows if (_epoch(r.get(ts_col)) or -math.inf) > since]

        def frame(window: list[dict[str, Any]], total: int, at: float) -> Frame:
            return _table_frame(window, total, at, Problems("table", at))

        return RowsReplay(kept, ts_col, frame, self.params.max_rows)

    def _history_sql(self, since: float, until: float) -> list[dict[str, Any]]:
        import sqlalchemy as sa
        from sqlalchemy import exc as sa_exc

        p = self.params
        ts_col = p.timestamp_column
        assert ts_col
        try:
            with self._connect().connect() as conn:
                if p.table:
                    schema, _, name = p.table.rpartition(".")
                    base: Any = sa.Table(name, sa.MetaData(), schema=schema or None, autoload_with=conn)
                    col: Any = base.c[ts_col]
                    select: Any = sa.select(base)
                else:
                    base = None
                    col = sa.column(ts_col)
                    select = sa.select(sa.text("*")).select_from(sa.text(f"({p.query}) AS aiops_q"))
                select = select.where(col > _time_bound(base, ts_col, since), col <= _time_bound(base, ts_col, until))
                result = conn.execute(select.order_by(col)).mappings().all()
        except sa_exc.NoSuchTableError:
            raise SourceError(f"table source: no table {p.table!r}", recoverable=False) from None
        except sa_exc.SQLAlchemyError as exc:
            raise SourceError(f"table source: {redact(str(exc).splitlines()[0])[:300]}", recoverable=False) from None
        return [{str(k): _sql_value(v) for k, v in r.items()} for r in result]

    # ------------------------------------------------------------------ shared

    def _finish(self, rows: list[dict[str, Any]], problems: Problems, sql: bool) -> list[dict[str, Any]]:
        """Declared types cast (bad values become None, reported); SQL times to epoch seconds (files already)."""
        ts_col = self.params.timestamp_column
        declared = {c: k for c, k in (self.params.columns or {}).items() if c != ts_col}
        if declared:
            for row in rows:
                for col, kind in declared.items():
                    if col in row and row[col] is not None:
                        ok, value = _cast(row[col], kind)
                        if not ok:
                            problems.add(f"wrong_type:{col}", f"{col}={row[col]!r} is not {kind}")
                        row[col] = value
        else:
            self._infer(rows, problems)
        return _rows_epochs(rows, ts_col, problems) if sql else rows

    def _infer(self, rows: list[dict[str, Any]], problems: Problems) -> None:
        """Without a declared schema, learn each column's kind from the first values seen, then report
        values of another kind (checked on a sample of up to SCHEMA_SAMPLE rows per tick, to stay cheap)."""
        step = max(1, len(rows) // SCHEMA_SAMPLE)
        for row in rows[::step]:
            for col, value in row.items():
                kind = _kind(value)
                if kind is None or col == self.params.timestamp_column:
                    continue
                learned = self.schema_.setdefault(col, kind)
                if learned != kind:
                    problems.add(f"type_changed:{col}", f"{col}={str(value)[:60]!r} is {kind}, was {learned}")

    def _window_start(self, since: float | None, until: float) -> float | None:
        starts = [s for s in (since, until - self.params.max_age if self.params.max_age else None) if s is not None]
        return max(starts) if starts else None

    # ------------------------------------------------------------------ files

    def _files(self) -> list[str]:
        pattern = self.params.path or ""
        if os.path.isdir(pattern):
            names = [str(p) for p in Path(pattern).iterdir() if p.is_file() and p.suffix.lower() in _SUFFIXES]
        elif glob.has_magic(pattern):
            names = [p for p in glob.glob(pattern) if os.path.isfile(p)]
        else:
            names = [pattern]
        keyed = []
        for name in names:
            try:
                keyed.append((os.stat(name).st_mtime, name))
            except OSError:
                if name == pattern and not self.files_:
                    raise SourceError(f"table source: {pattern} does not exist", recoverable=True) from None
        return [name for _, name in sorted(keyed)]

    def _format(self, name: str) -> str:
        if self.params.format != "auto":
            return self.params.format
        return _SUFFIXES.get(Path(name).suffix.lower(), "csv")

    def _collect_files(self, since: float | None, until: float, problems: Problems) -> tuple[list[dict[str, Any]], int]:
        window = _Window(self.params.max_rows)
        start = self._window_start(since, until) if not self.files_ else None
        start = self._window_start(None, until) if start is None else start
        seen = set()
        for name in self._files():
            seen.add(name)
            fmt = self._format(name)
            try:
                if fmt == "parquet":
                    self._read_parquet(name, window, start, problems)
                else:
                    self._read_text(name, fmt, window, start, problems)
            except OSError as exc:
                problems.add("unreadable_file", f"{name}: {exc.strerror or exc}")
        self.files_ = {k: v for k, v in self.files_.items() if k in seen}
        return window.rows(self.params.timestamp_column, problems), window.total

    def _read_parquet(self, name: str, window: _Window, start: float | None, problems: Problems) -> None:
        st = os.stat(name)
        version = [st.st_mtime_ns, st.st_size]
        if self.files_.get(name, {}).get("version") == version:
            return
        try:
            import pyarrow.parquet as pq
        except ImportError:
            raise SourceError(
                "table source: Parquet needs pyarrow (pip install 'aiops[parquet]')", recoverable=False
            ) from None
        try:
            table = pq.read_table(name)
        except Exception as exc:  # a file still being written, or corrupt: try again when it changes
            problems.add("unreadable_file", f"{name}: {type(exc).__name__}: {exc}")
            self.files_[name] = {"version": version}
            return
        self.files_[name] = {"version": version}
        window.add_arrow(table, self.params.timestamp_column, start, problems)

    def _read_text(self, name: str, fmt: str, window: _Window, start: float | None, problems: Problems) -> None:
        with open(name, "rb") as fh:
            st = os.fstat(fh.fileno())
            state = self.files_.get(name)
            if state and (state.get("inode") != st.st_ino or st.st_size < int(state.get("offset", 0))):
                problems.add("rotated", f"{name}: inode/size changed, reading from the start")
                state = None
            state = dict(state or {"inode": st.st_ino, "offset": 0, "header": None})
            delimiter = "\t" if name.lower().endswith(".tsv") else ","
            for data in _chunks(fh, int(state["offset"]), st.st_size, problems):
                state["offset"] = int(state["offset"]) + len(data)
                if fmt == "csv" and state["header"] is None:
                    first, _, data = data.partition(b"\n")
                    fields = _csv_fields(first.decode("utf-8", "replace").rstrip("\r"), delimiter)
                    if not fields:
                        problems.add("bad_header", f"{name}: {first[:200]!r}")
                        continue
                    state["header"] = [f.strip().lstrip("\ufeff") for f in fields]
                if not data:
                    continue
                data = _valid_utf8(data, name, problems)
                if fmt == "csv":
                    _parse_csv(data, state["header"], delimiter, window, self.params.timestamp_column, start, problems)
                else:
                    _parse_jsonl(data, window, self.params.timestamp_column, start, problems)
            self.files_[name] = state

    # ------------------------------------------------------------------ SQL

    def _connect(self) -> Any:
        import sqlalchemy as sa

        if self._engine is None:
            p = self.params
            url = read_secret(p.url, p.url_file, p.url_env, "table source url")
            assert url
            if url.startswith(("postgres://", "postgresql://")):
                url = "postgresql+psycopg://" + url.split("://", 1)[1]
            try:
                self._engine = sa.create_engine(url, pool_pre_ping=True)
            except Exception as exc:
                raise SourceError(f"table source: bad url: {redact(str(exc))}", recoverable=False) from None
        return self._engine

    def _collect_sql(self, until: float, problems: Problems) -> tuple[list[dict[str, Any]], int]:
        import sqlalchemy as sa
        from sqlalchemy import exc as sa_exc

        p = self.params
        engine = self._connect()
        inc = p.id_column or p.timestamp_column
        try:
            with engine.connect() as conn:
                if p.table:
                    schema, _, name = p.table.rpartition(".")
                    base: Any = sa.Table(name, sa.MetaData(), schema=schema or None, autoload_with=conn)
                    col = base.c[inc] if inc else None
                    source: Any = base
                    select: Any = sa.select(base)
                else:
                    base = None
                    source = sa.text(f"({p.query}) AS aiops_q")
                    col = sa.column(inc) if inc else None
                    select = sa.select(sa.text("*")).select_from(source)
                where = []
                if col is not None and self.watermark_ is not None:
                    where.append(col > _from_json(self.watermark_))
                elif col is not None and inc and p.table and p.max_age and inc == p.timestamp_column:
                    where.append(col > _time_bound(base, inc, until - p.max_age))
                select = select.where(*where)
                if col is not None:
                    total = int(
                        conn.execute(sa.select(sa.func.count()).select_from(source).where(*where)).scalar() or 0
                    )
                    select = select.order_by(col.desc()).limit(p.max_rows)
                    result = list(reversed(conn.execute(select).mappings().all()))
                else:
                    result = list(conn.execute(select.limit(p.max_rows)).mappings().all())
                    total = len(result)
        except sa_exc.NoSuchTableError:
            raise SourceError(f"table source: no table {p.table!r}", recoverable=False) from None
        except (sa_exc.ProgrammingError, sa_exc.ArgumentError, sa_exc.CompileError) as exc:
            raise SourceError(f"table source: bad SQL: {redact(str(exc).splitlines()[0])}", recoverable=False) from None
        except sa_exc.SQLAlchemyError as exc:
            text = redact(str(exc).splitlines()[0])[:300]
            final = "no such table" in text or "no such column" in text
            raise SourceError(f"table source: {text}", recoverable=not final) from None
        rows = [{str(k): _sql_value(v) for k, v in r.items()} for r in result]
        if inc and result:
            self.watermark_ = _to_json(result[-1][inc])
        if p.max_age and p.timestamp_column:  # the time window, whatever the column's SQL type
            oldest = until - p.max_age
            kept = [r for r in rows if (_epoch(r.get(p.timestamp_column)) or math.inf) > oldest]
            total -= len(rows) - len(kept)
            rows = kept
        return rows, total


# ---------------------------------------------------------------------- helpers


def _table_frame(rows: list[dict[str, Any]], total: int, until: float, problems: Problems) -> Frame:
    rows_read = Series("table_rows_read", (until,), (float(total),))
    return rows_frame("table", until, [rows_read], rows, problems, scan=1000, has_new_data=bool(rows))


class _Window:
    """The newest ``limit`` rows of everything added, plus the count of all rows added."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.total = 0
        self._parts: list[Any] = []  # pyarrow tables or lists of dicts
        self._kept = 0

    def _push(self, part: Any, n: int) -> None:
        self._parts.append(part)
        self._kept += n
        while self._parts and self._kept - len(self._parts[0]) >= self.limit:
            self._kept -= len(self._parts.pop(0))

    def add_rows(self, rows: list[dict[str, Any]]) -> None:
        self.total += len(rows)
        if rows:
            self._push(rows[-self.limit :], min(len(rows), self.limit))

    def add_arrow(self, table: Any, ts_col: str | None, start: float | None, problems: Problems) -> None:
        if start is not None and ts_col and ts_col in table.column_names and table.num_rows:
            import pyarrow as pa

            keep = ~(_arrow_epochs(table.column(ts_col)) <= start)  # NaN kept: reported as bad_timestamp later
            table = table.filter(pa.array(keep))
        self.total += table.num_rows
        if table.num_rows:
            part = table.slice(max(0, table.num_rows - self.limit))
            self._push(part, part.num_rows)

    def rows(self, ts_col: str | None, problems: Problems) -> list[dict[str, Any]]:
        """The kept rows as dicts, the timestamp column as epoch seconds (vectorised for arrow parts)."""
        out: list[dict[str, Any]] = []
        for part in self._parts:
            if isinstance(part, list):
                out.extend(_rows_epochs(part, ts_col, problems))
            else:
                out.extend(_arrow_rows(part, ts_col, problems))
        return out[-self.limit :] if len(out) > self.limit else out


def _rows_epochs(rows: list[dict[str, Any]], ts_col: str | None, problems: Problems) -> list[dict[str, Any]]:
    if not ts_col:
        return rows
    for row in rows:
        value = row.get(ts_col)
        if value is None:
            problems.add("missing_timestamp", _example(row))
            continue
        epoch = _epoch(value)
        if epoch is None:
            problems.add("bad_timestamp", f"{ts_col}={value!r}")
        row[ts_col] = epoch
    return rows


def _arrow_rows(table: Any, ts_col: str | None, problems: Problems) -> list[dict[str, Any]]:
    """Column-wise conversion (several times faster than ``Table.to_pylist`` for wide windows)."""
    import numpy as np

    names = table.column_names
    columns = [c.to_pylist() for c in table.columns]
    if ts_col and ts_col in names:
        i = names.index(ts_col)
        raw = table.column(ts_col)
        epochs = _arrow_epochs(raw)
        bad = np.isnan(epochs)
        if bad.any():
            missing = int(raw.null_count)
            if missing:
                problems.add("missing_timestamp", f"{ts_col} is empty", count=missing)
            unparsed = [columns[i][j] for j in np.flatnonzero(bad) if columns[i][j] is not None]
            for value in unparsed[:3]:
                problems.add("bad_timestamp", f"{ts_col}={value!r}")
            if len(unparsed) > 3:
                problems.add("bad_timestamp", "", count=len(unparsed) - 3)
        columns[i] = [None if b else e for b, e in zip(bad.tolist(), epochs.tolist(), strict=True)]
    return [dict(zip(names, values, strict=False)) for values in zip(*columns, strict=False)]


def _arrow_epochs(column: Any) -> Any:
    """Epoch seconds (numpy float array, NaN where unknown) of an arrow column of numbers, times or strings."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    kind = column.type
    if pa.types.is_timestamp(kind):
        return pc.cast(column, pa.timestamp("ns", tz=kind.tz)).cast(pa.int64()).to_numpy(zero_copy_only=False) / 1e9
    if pa.types.is_integer(kind) or pa.types.is_floating(kind):
        return np.asarray(column.to_numpy(zero_copy_only=False), dtype=float)
    import pandas as pd

    parsed = pd.to_datetime(pd.Series(column.to_pylist(), dtype=object), utc=True, errors="coerce", format="mixed")
    return np.asarray((parsed - pd.Timestamp(0, tz="UTC")).dt.total_seconds(), dtype=float)


def _chunks(fh: Any, offset: int, size: int, problems: Problems) -> Iterator[bytes]:
    """Complete lines from ``offset`` to ``size`` in blocks of about CHUNK bytes; a partial last line waits."""
    fh.seek(offset)
    pending = b""
    pos = offset
    while pos < size:
        block = fh.read(min(CHUNK, size - pos))
        if not block:
            break
        pos += len(block)
        data = pending + block
        cut = data.rfind(b"\n")
        if cut < 0:
            pending = data
            if len(pending) > MAX_LINE:
                problems.add("line_too_long", pending[:200].decode("utf-8", "replace"))
                yield pending + b"\n"  # counted as consumed: a garbage line must not stall the source
                pending = b""
            continue
        pending = data[cut + 1 :]
        yield data[: cut + 1]


def _valid_utf8(data: bytes, name: str, problems: Problems) -> bytes:
    """The bytes, with invalid UTF-8 replaced (and reported): parsers must never see undecodable text."""
    if data.isascii():
        return data
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as exc:
        problems.add("invalid_utf8", f"{name}: {exc.reason} at byte {exc.start} of a new block")
        return data.decode("utf-8", "replace").encode("utf-8")
    return data


def _csv_fields(text: str, delimiter: str) -> list[str] | None:
    try:
        rows = list(csv.reader([text], delimiter=delimiter, strict=True))
    except csv.Error:
        return None
    return rows[0] if len(rows) == 1 and rows[0] else None


def _parse_csv(
    data: bytes,
    header: Sequence[str],
    delimiter: str,
    window: _Window,
    ts_col: str | None,
    start: float | None,
    problems: Problems,
) -> None:
    try:
        import pyarrow as pa
        import pyarrow.csv as pa_csv
    except ImportError:
        pa = None
    if pa is not None and len(set(header)) == len(header):
        bad: list[str] = []

        def skip(row: Any) -> str:
            bad.append(str(getattr(row, "text", row)))
            return "skip"

        try:
            table = pa_csv.read_csv(
                io.BytesIO(data),
                read_options=pa_csv.ReadOptions(column_names=list(header), block_size=8 << 20),
                parse_options=pa_csv.ParseOptions(delimiter=delimiter, invalid_row_handler=skip),
                convert_options=pa_csv.ConvertOptions(strings_can_be_null=True),
            )
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            table = None
        if table is not None:
            for text in bad[:3]:
                problems.add("field_count", text)
            if len(bad) > 3:
                problems.add("field_count", "", count=len(bad) - 3)
            window.add_arrow(table, ts_col, start, problems)
            return
    rows = []
    for line in data.decode("utf-8", "replace").splitlines():
        if not line.strip():
            continue
        fields = _csv_fields(line, delimiter)
        if fields is None or len(fields) != len(header):
            problems.add("field_count", line)
            continue
        rows.append({h: _guess(v) for h, v in zip(header, fields, strict=True)})
    window.add_rows(_filter_rows(rows, ts_col, start))


def _parse_jsonl(data: bytes, window: _Window, ts_col: str | None, start: float | None, problems: Problems) -> None:
    try:
        import pyarrow as pa
        import pyarrow.json as pa_json

        try:
            table = pa_json.read_json(io.BytesIO(data), read_options=pa_json.ReadOptions(block_size=16 << 20))
            window.add_arrow(table, ts_col, start, problems)
            return
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
            pass  # a bad line or a type change: the line-by-line path says which
    except ImportError:
        pass
    rows = []
    for line in data.splitlines():
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except (ValueError, RecursionError):
            problems.add("unparseable", line[:200].decode("utf-8", "replace"))
            continue
        if not isinstance(obj, dict):
            problems.add("not_an_object", line[:200].decode("utf-8", "replace"))
            continue
        rows.append(obj)
    window.add_rows(_filter_rows(rows, ts_col, start))


def _filter_rows(rows: list[dict[str, Any]], ts_col: str | None, start: float | None) -> list[dict[str, Any]]:
    if start is None or not ts_col:
        return rows
    kept = []
    for row in rows:
        epoch = _epoch(row.get(ts_col))
        if epoch is None or epoch > start:
            kept.append(row)
    return kept


def _guess(text: str) -> Any:
    """A CSV field as int, float or str (empty -> None), like pyarrow's inference does per column."""
    if text == "":
        return None
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def _epoch(value: Any) -> float | None:
    if isinstance(value, dt.datetime):
        return (value if value.tzinfo else value.replace(tzinfo=dt.UTC)).timestamp()
    if isinstance(value, dt.date):
        return dt.datetime(value.year, value.month, value.day, tzinfo=dt.UTC).timestamp()
    try:
        out = parse_time(value)
    except ValueError:
        return None
    return out if math.isfinite(out) else None


def _kind(value: Any) -> str | None:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "str"
    return "other"


def _cast(value: Any, kind: str) -> tuple[bool, Any]:
    try:
        if kind == "int":
            if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
                return False, None
            return True, int(value)
        if kind == "float":
            if isinstance(value, bool):
                return False, None
            return True, float(value)
        if kind == "bool":
            if isinstance(value, bool):
                return True, value
            text = str(value).strip().lower()
            if text in ("true", "1", "yes"):
                return True, True
            if text in ("false", "0", "no"):
                return True, False
            return False, None
        if kind == "timestamp":
            epoch = _epoch(value)
            return epoch is not None, epoch
        return True, value if isinstance(value, str) else str(value)
    except (TypeError, ValueError, OverflowError):
        return False, None


def _example(row: Mapping[str, Any]) -> str:
    return json.dumps({k: str(v)[:40] for k, v in list(row.items())[:8]})


def _sql_value(value: Any) -> Any:
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.hex()
    return value


def _to_json(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return {"datetime": value.isoformat()}
    if isinstance(value, Decimal):
        return float(value)
    return value


def _from_json(value: Any) -> Any:
    if isinstance(value, dict) and "datetime" in value:
        return dt.datetime.fromisoformat(str(value["datetime"]))
    return value


def _time_bound(table: Any, column: str, epoch: float) -> Any:
    """``epoch`` in the column's own type: a datetime for DATE/TIMESTAMP columns, else the number."""
    if table is not None:
        import sqlalchemy as sa

        kind = table.c[column].type
        if isinstance(kind, sa.DateTime):
            aware = dt.datetime.fromtimestamp(epoch, dt.UTC)
            return aware if getattr(kind, "timezone", False) else aware.replace(tzinfo=None)
    return epoch
