"""Where a drift reference comes from besides a file: a SQL query, or the champion model's training data.

Both are read once (a SQL query on first use; the registry each time its champion moves) and reduced to a
uniform sample of at most ``max_rows`` rows while read, like a reference file; the detector then keeps only
statistics of it. The registry is the core's model registry service (:mod:`aiops.registry`, opened by the
plugin context): the filesystem one or MLflow (``backend: mlflow``). This module only asks it which version
the alias names and where that version's training rows are (:meth:`~aiops.registry.ModelRegistry.training_data`:
a file the backend found, or metadata naming a file, a table or a query, which is read here); it never talks to
a backend itself. Every failure is a :class:`DetectorError` saying what could not be read and why (never a
traceback, never a password: URLs are shown with the password hidden).
"""

from __future__ import annotations

import datetime as dt
import math
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Literal

import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, model_validator

from aiops.errors import DetectorError, RegistryError

from ._io import _CHUNK, read_table, reservoir_sample

if TYPE_CHECKING:
    from aiops.registry import ModelRegistry, RegistryOpener


class ReferenceSQL(BaseModel):
    """``reference_sql``: the reference is the result of a SELECT."""

    model_config = ConfigDict(extra="forbid")

    url: str = Field(description="SQLAlchemy URL, e.g. postgresql+psycopg://u@h/db or ${REFERENCE_DB_URL}")
    query: str = Field(description="SELECT returning the reference rows")


class ReferenceRegistry(BaseModel):
    """``reference_registry``: the reference is the training data of the model version an alias points at."""

    model_config = ConfigDict(extra="forbid")

    backend: Literal["fs", "mlflow"] = Field(
        "fs", description="fs: the filesystem model registry at `path`; mlflow: the MLflow registry at `tracking_uri`"
    )
    path: str | None = Field(None, description="root directory of the filesystem model registry (backend fs)")
    tracking_uri: str | None = Field(
        None,
        description="MLflow tracking/registry URI (backend mlflow), e.g. http://mlflow:5000, file:///var/mlruns, "
        "${MLFLOW_TRACKING_URI}",
    )
    model: str = Field(description="registered model name")
    alias: str = Field("champion", description="alias whose version's training data is the reference")
    artifact_path: str | None = Field(
        None,
        description="MLflow: artefact of the version's run holding the training rows, e.g. reference/train.parquet",
    )
    dataset: str | None = Field(
        None, description="MLflow: name of the run's logged dataset input to read (default: its training dataset)"
    )
    url: str | None = Field(
        None, description="SQLAlchemy URL when the version's training_window.source is a table (or a query)"
    )
    query: str | None = Field(None, description="SELECT to run when the training data came from a query")
    time_column: str | None = Field(
        None, description="row time column: keeps only the rows of the version's training window"
    )

    @model_validator(mode="after")
    def _backend_fields(self) -> ReferenceRegistry:
        if self.backend == "fs":
            if not self.path:
                raise ValueError("backend fs needs 'path', the registry's root directory (or set backend: mlflow)")
            wrong = [k for k in ("tracking_uri", "artifact_path", "dataset") if getattr(self, k)]
            if wrong:
                raise ValueError(f"{', '.join(wrong)}: only with backend mlflow")
        else:
            if not self.tracking_uri:
                raise ValueError(
                    "backend mlflow needs 'tracking_uri' (e.g. http://mlflow:5000 or ${MLFLOW_TRACKING_URI})"
                )
            if self.path:
                raise ValueError("'path' is the filesystem registry's root: with backend mlflow give 'tracking_uri'")
        return self


def _expand(value: str) -> str:
    """``${VAR}`` / ``${VAR:-default}`` (already expanded when the value came from the YAML config)."""
    if "${" not in value:
        return value
    from aiops.config import environment

    expanded, missing = environment.expand(value)
    if missing:
        raise DetectorError(f"environment variable(s) {', '.join(missing)} not set (in {value!r})")
    return expanded


def _shown(url: str) -> str:
    try:
        import sqlalchemy as sa

        return str(sa.engine.make_url(url).render_as_string(hide_password=True))
    except Exception:
        return url.split(":", 1)[0] + ":..."


# ---- SQL -------------------------------------------------------------------------------------------------


@contextmanager
def _connect(url: str) -> Iterator[Any]:
    """A connection to ``url``; any failure inside is a DetectorError naming the URL (password hidden)."""
    url = _expand(url)
    try:
        import sqlalchemy as sa
    except ImportError as exc:  # pragma: no cover - sqlalchemy is a dependency of aiops
        raise DetectorError("reading a reference with SQL needs sqlalchemy") from exc
    shown = _shown(url)
    try:
        engine = sa.create_engine(url)
    except Exception as exc:
        raise DetectorError(f"reference SQL: cannot open {shown}: {type(exc).__name__}: {exc}") from exc
    try:
        with engine.connect() as conn:
            yield conn
    except DetectorError:
        raise
    except Exception as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise DetectorError(f"reference SQL on {shown} failed: {type(exc).__name__}: {first}") from exc
    finally:
        engine.dispose()


def _fetch(conn: Any, statement: Any, max_rows: int | None, seed: int) -> pd.DataFrame:
    if max_rows is None:
        return pd.read_sql_query(statement, conn)
    return reservoir_sample(pd.read_sql_query(statement, conn, chunksize=_CHUNK), max_rows, seed)


def read_sql(url: str, query: str, *, max_rows: int | None = None, seed: int = 0) -> pd.DataFrame:
    """Rows of a SELECT (uniformly sampled down to ``max_rows`` while fetched, in chunks)."""
    import sqlalchemy as sa

    with _connect(url) as conn:
        frame = _fetch(conn, sa.text(query), max_rows, seed)
    if len(frame) == 0:
        raise DetectorError(f"reference SQL on {_shown(_expand(url))} returned no rows")
    return frame


def _window_select(
    conn: Any, source: str, column: str, lo: float | None, hi: float | None, rows: int | None
) -> Any | None:
    """``SELECT * FROM source WHERE lo <= column <= hi ORDER BY column LIMIT rows`` with bound parameters.

    The same rows, in the same order, as reading the whole table and keeping the window in memory
    (``_keep_window``): bounds widened by 1 µs, NULL times last. Returns None (read everything, filter in
    memory) when the column's type is not one whose comparison in SQL is that of the in-memory filter:
    numbers anywhere; timestamps except on SQLite (where they are text of any format). Identifiers are
    quoted by SQLAlchemy; no value is ever written into the SQL text.
    """
    import sqlalchemy as sa

    schema, _, name = source.rpartition(".")
    if "." in schema:
        return None
    try:
        found = {c["name"]: c["type"] for c in sa.inspect(conn).get_columns(name, schema=schema or None)}
    except Exception:
        conn.rollback()  # (PostgreSQL: a failed statement aborts the transaction)
        return None  # no such table, a view the inspector cannot see...: the plain read says what is wrong
    kind = found.get(column)
    try:
        py = kind.python_type if kind is not None else None
    except NotImplementedError:
        py = None
    if py is None or py is bool:
        return None
    time_col: Any = sa.column(column)
    if issubclass(py, (int, float, Decimal)):

        def bound(x: float) -> Any:
            return sa.bindparam(None, x, type_=sa.Float())

    elif issubclass(py, dt.datetime) and conn.dialect.name != "sqlite":
        # pandas reads a zone-less timestamp as UTC: compare it with a zone-less UTC bound
        aware = bool(getattr(kind, "timezone", False))

        def bound(x: float) -> Any:
            stamp = dt.datetime.fromtimestamp(x, tz=dt.UTC)
            return sa.bindparam(None, stamp if aware else stamp.replace(tzinfo=None), type_=kind)

    else:
        return None
    table = sa.table(name, time_col, schema=schema or None)
    statement: Any = sa.select(sa.literal_column("*")).select_from(table)
    if lo is not None:
        statement = statement.where(time_col >= bound(lo - 1e-6))
    if hi is not None:
        statement = statement.where(time_col <= bound(hi + 1e-6))
    if lo is None and hi is None:  # only then can NULL times be in the window; in memory they sort last
        statement = statement.order_by(sa.case((time_col.is_(None), 1), else_=0))
    statement = statement.order_by(time_col)
    if rows:
        statement = statement.limit(int(rows))
    return statement


def _read_sql_table(
    url: str,
    source: str,
    column: str | None,
    lo: float | None,
    hi: float | None,
    rows: int | None,
    *,
    max_rows: int | None,
    seed: int,
) -> tuple[pd.DataFrame, bool]:
    """Rows of the table ``source``; with a time ``column``, only the window's when SQL can filter them
    (then the second value is true and the rows are in time order, limited to ``rows``)."""
    import sqlalchemy as sa

    with _connect(url) as conn:
        statement = _window_select(conn, source, column, lo, hi, rows) if column else None
        if statement is not None:
            return pd.read_sql_query(statement, conn), True
        preparer = conn.dialect.identifier_preparer
        quoted = ".".join(preparer.quote_identifier(part) for part in source.split("."))
        return _fetch(conn, sa.text(f"SELECT * FROM {quoted}"), max_rows, seed), False


# ---- the registry: which version, and its training data ---------------------------------------------------


@dataclass
class RegistryReference:
    """The training rows of one registered version, and which version that was."""

    version: str
    frame: pd.DataFrame
    description: str


def _registry(spec: ReferenceRegistry, opener: RegistryOpener | None = None) -> ModelRegistry:
    """The registry ``spec`` names, opened by ``opener`` (the plugin context's; default :func:`open_registry`)."""
    from aiops.registry import MLFLOW_PREFIX, open_registry  # only a registry reference needs it

    if spec.backend == "mlflow":
        uri = MLFLOW_PREFIX + _expand(str(spec.tracking_uri))
    elif not os.path.isdir(str(spec.path)):
        raise DetectorError(f"reference registry {spec.path!r} is not a directory")
    else:
        uri = str(spec.path)
    return (opener or open_registry)(uri)


def registry_version(spec: ReferenceRegistry, opener: RegistryOpener | None = None) -> str:
    """The version the alias points at now (one small read: ``registry.json``, or one MLflow call)."""
    registry = _registry(spec, opener)
    try:
        version = registry.alias(spec.model, spec.alias)
    except RegistryError as exc:
        raise DetectorError(f"reference registry: {exc}") from exc
    if version is None:
        raise DetectorError(f"reference registry: model {spec.model!r} has no {spec.alias!r} alias in {registry.where}")
    return version


def _stamps(col: pd.Series) -> pd.Series:
    """Row times as float epoch seconds (NaN: no time), whatever the datetime unit or text format."""
    if pd.api.types.is_numeric_dtype(col):
        return col.astype(float)
    times = pd.to_datetime(col, utc=True, errors="coerce", format="ISO8601")
    bad = times.isna() & col.notna()
    if bad.any():  # other formats (or ISO text of several shapes): element by element
        times = times.where(~bad, pd.to_datetime(col[bad], utc=True, errors="coerce", format="mixed"))
    return (times - pd.Timestamp(0, tz="UTC")) / pd.Timedelta(seconds=1)


def _bound(value: Any) -> float | None:
    if value is None or value == "None":
        return None
    try:
        out = float(value)
    except (TypeError, ValueError):
        stamp = pd.to_datetime(str(value), utc=True, errors="coerce")
        if pd.isna(stamp):
            return None
        return float(stamp.value) / 1e9
    return out if math.isfinite(out) else None


def read_registry_reference(
    spec: ReferenceRegistry,
    *,
    max_rows: int,
    seed: int,
    version: str | None = None,
    features: bool = True,
    opener: RegistryOpener | None = None,
) -> RegistryReference:
    """The training rows of the version ``spec.alias`` points at (or ``version``), from its metadata.

    The metadata names the data in one of two ways:

    * ``training_data``: a table file (CSV, JSONL, Parquet) of exactly the training rows: read as is;
    * ``training_window`` as the retrain remediation writes it: ``source`` (a file path, or a table name
      read through ``spec.url``, or ``"query"`` for ``spec.query``), ``from``/``to`` (row times, with
      ``spec.time_column`` only those rows are kept) and ``rows`` (with a time column, the first ``rows``
      of the window in time order: the training part, without the newest rows held out for the comparison).

    The registry says where they are (:meth:`aiops.registry.ModelRegistry.training_data`): the filesystem
    registry by the metadata alone; MLflow also by a run artefact (``spec.artifact_path``) or the dataset the
    run logged (``spec.dataset``).
    ``features`` in the metadata, when present (and ``features`` is true: the detector names no
    ``columns``), are the columns kept (label and time are not data drift).
    """
    version = version or registry_version(spec, opener)
    where = f"{spec.model} version {version}"
    registry = _registry(spec, opener)
    try:
        with registry.training_data(spec.model, version, artifact=spec.artifact_path, dataset=spec.dataset) as found:
            meta = found.metadata
            if found.path is not None:
                frame = read_table(found.path, max_rows=max_rows, seed=seed)
                description = f"{where}: {found.description}"
            else:
                read = _read_metadata(spec, meta, where, max_rows=max_rows, seed=seed)
                if read is None:
                    raise DetectorError(
                        f"reference registry: {where} names no training data (metadata has neither "
                        "'training_data' nor 'training_window.source')"
                    )
                frame, description = read
    except RegistryError as exc:
        raise DetectorError(f"reference registry: {exc}") from exc
    names = meta.get("features")
    if features and isinstance(names, list) and names:
        missing = [str(c) for c in names if str(c) not in frame.columns]
        if missing:
            raise DetectorError(f"reference registry: training data of {where} lacks feature(s) {missing}")
        frame = frame[[str(c) for c in names]]
    if len(frame) == 0:
        raise DetectorError(f"reference registry: the training data of {where} has no rows ({description})")
    return RegistryReference(version=version, frame=frame.reset_index(drop=True), description=description)


def _read_metadata(
    spec: ReferenceRegistry, meta: Mapping[str, Any], where: str, *, max_rows: int, seed: int
) -> tuple[pd.DataFrame, str] | None:
    """The rows named by ``training_data`` or ``training_window`` (None: the metadata names neither)."""
    data = meta.get("training_data")
    window = meta.get("training_window")
    if isinstance(data, str) and data:
        return read_table(_local_path(data), max_rows=max_rows, seed=seed), f"{where}: training data {data}"
    if isinstance(window, Mapping) and window.get("source"):
        return _read_window(spec, window, where, max_rows=max_rows, seed=seed)
    return None


def _read_window(
    spec: ReferenceRegistry, window: Mapping[str, Any], where: str, *, max_rows: int, seed: int
) -> tuple[pd.DataFrame, str]:
    source = str(window["source"])
    lo, hi = _bound(window.get("from")), _bound(window.get("to"))
    try:  # (from MLflow run params every value is text)
        rows = (int(float(window["rows"])) or None) if window.get("rows") not in (None, "", "None") else None
    except (TypeError, ValueError) as exc:
        raise DetectorError(
            f"reference registry: {where}: training_window.rows {window['rows']!r} is not a number"
        ) from exc
    windowed = spec.time_column is not None and (lo is not None or hi is not None or rows)
    # the time filter and "first N rows" need every row of the window: sample only after them
    cap = None if windowed else max_rows
    filtered = False  # the window already kept (in SQL)?
    if spec.url:
        if source == "query" or spec.query:
            if not spec.query:
                raise DetectorError(f"reference registry: {where} was trained on a query: set 'query'")
            frame = read_sql(spec.url, spec.query, max_rows=cap, seed=seed)
        else:
            column = spec.time_column if windowed else None
            frame, filtered = _read_sql_table(spec.url, source, column, lo, hi, rows, max_rows=cap, seed=seed)
        description = f"{where}: {source} via {_shown(_expand(spec.url))}"
    else:
        if source == "query":
            raise DetectorError(f"reference registry: {where} was trained on a query: set 'url' and 'query'")
        path = _local_path(source)
        if not os.path.exists(path):
            raise DetectorError(
                f"reference registry: training data {source!r} of {where} is not a file here (a table? set 'url')"
            )
        frame = read_table(path, max_rows=cap, seed=seed)
        description = f"{where}: {source}"
    if windowed:
        if not filtered:
            frame = _keep_window(frame, str(spec.time_column), lo, hi, rows, where)
        description += f" rows {window.get('from')} .. {window.get('to')}" + (" (filtered in SQL)" if filtered else "")
        frame = frame.reset_index(drop=True)  # time order
        if len(frame) > max_rows:
            frame = frame.sample(n=max_rows, random_state=seed).sort_index()
    return frame.reset_index(drop=True), description


def _keep_window(
    frame: pd.DataFrame, col: str, lo: float | None, hi: float | None, rows: int | None, where: str
) -> pd.DataFrame:
    """The rows whose time is in ``lo``..``hi`` (1 µs slack), in time order, the first ``rows`` of them."""
    if col not in frame.columns:
        raise DetectorError(f"reference registry: training data of {where} has no time column {col!r}")
    stamps = _stamps(frame[col])
    keep = pd.Series(True, index=frame.index)
    if lo is not None:
        keep &= stamps >= lo - 1e-6
    if hi is not None:
        keep &= stamps <= hi + 1e-6
    frame = frame[keep].assign(_aiops_t=stamps[keep]).sort_values("_aiops_t", kind="stable")
    frame = frame.drop(columns="_aiops_t")
    return frame.head(rows) if rows else frame


def _local_path(name: str) -> str:
    from aiops.registry import local_path

    return local_path(name)
