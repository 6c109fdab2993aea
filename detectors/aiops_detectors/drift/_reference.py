"""Where a drift reference comes from besides a file: a SQL query, or the champion model's training data.

Both are read once (a SQL query on first use; the registry each time its champion moves) and reduced to a
uniform sample of at most ``max_rows`` rows while read, like a reference file; the detector then keeps only
statistics of it. The registry is the core's model registry (:mod:`aiops.registry`): the filesystem one or MLflow
(``backend: mlflow``: a run's logged dataset, a run artefact, or the training window in its metadata). Every
failure is a :class:`DetectorError` saying what could not be read and why (never a traceback, never a
password: URLs are shown with the password hidden).
"""

from __future__ import annotations

import datetime as dt
import json
import math
import os
import re
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import unquote, urlsplit, urlunsplit

import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, model_validator

from aiops.errors import DetectorError, RegistryError

from ._io import _CHUNK, read_table, reservoir_sample

if TYPE_CHECKING:
    from aiops.registry import ModelRegistry

_MLFLOW_EXTRA = "pip install 'aiops[mlflow]'"


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


def _registry(path: str) -> ModelRegistry:
    if not os.path.isdir(path):
        raise DetectorError(f"reference registry {path!r} is not a directory")
    from aiops.registry import open_registry  # only a registry reference needs it, not a drift check on files

    return open_registry(path)


def registry_version(spec: ReferenceRegistry) -> str:
    """The version the alias points at now (one small read: ``registry.json``, or one MLflow call)."""
    if spec.backend == "mlflow":
        return _mlflow_version(spec)
    try:
        version: str | None = _registry(str(spec.path)).alias(spec.model, spec.alias)
    except RegistryError as exc:
        raise DetectorError(f"reference registry: {exc}") from exc
    if version is None:
        raise DetectorError(f"reference registry: model {spec.model!r} has no {spec.alias!r} alias in {spec.path!r}")
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
    spec: ReferenceRegistry, *, max_rows: int, seed: int, version: str | None = None, features: bool = True
) -> RegistryReference:
    """The training rows of the version ``spec.alias`` points at (or ``version``), from its metadata.

    The metadata names the data in one of two ways:

    * ``training_data``: a table file (CSV, JSONL, Parquet) of exactly the training rows: read as is;
    * ``training_window`` as the retrain remediation writes it: ``source`` (a file path, or a table name
      read through ``spec.url``, or ``"query"`` for ``spec.query``), ``from``/``to`` (row times, with
      ``spec.time_column`` only those rows are kept) and ``rows`` (with a time column, the first ``rows``
      of the window in time order: the training part, without the newest rows held out for the comparison).

    With MLflow (``backend: mlflow``) see :func:`_read_mlflow` for the other places it looks.
    ``features`` in the metadata, when present (and ``features`` is true: the detector names no
    ``columns``), are the columns kept (label and time are not data drift).
    """
    version = version or registry_version(spec)
    where = f"{spec.model} version {version}"
    if spec.backend == "mlflow":
        frame, description, meta = _read_mlflow(spec, version, where, max_rows=max_rows, seed=seed)
    else:
        try:
            meta = _registry(str(spec.path)).metadata(spec.model, version)
        except RegistryError as exc:
            raise DetectorError(f"reference registry: {exc}") from exc
        found = _read_metadata(spec, meta, where, max_rows=max_rows, seed=seed)
        if found is None:
            raise DetectorError(
                f"reference registry: {where} names no training data (metadata has neither 'training_data' "
                "nor 'training_window.source')"
            )
        frame, description = found
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
    """``file:///x`` -> ``/x`` (MLflow and metadata written by others use URIs); anything else as is."""
    if name.startswith("file:"):
        return unquote(urlsplit(name).path)
    return name


# ---- MLflow ----------------------------------------------------------------------------------------------

_USERINFO = re.compile(r"://([^:/@\s]*):[^@/\s]*@")
_ALIAS_MISSING = ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE")


def _shown_uri(uri: str) -> str:
    parts = urlsplit(uri)
    if parts.password:
        netloc = f"{parts.username}:***@{parts.hostname}" + (f":{parts.port}" if parts.port else "")
        return urlunsplit(parts._replace(netloc=netloc))
    return uri


def _mlflow_client(spec: ReferenceRegistry) -> tuple[Any, str]:
    """An ``MlflowClient`` on ``spec.tracking_uri`` (tracking and registry) and the URI as shown in errors."""
    try:
        from mlflow import MlflowClient
    except ImportError as exc:
        raise DetectorError(
            f"reference_registry backend mlflow needs the mlflow extra: {_MLFLOW_EXTRA} (installs mlflow-skinny)"
        ) from exc
    uri = _expand(str(spec.tracking_uri))
    return MlflowClient(tracking_uri=uri, registry_uri=uri), _shown_uri(uri)


def _mlflow_error(shown: str, what: str, exc: BaseException) -> DetectorError:
    message = getattr(exc, "message", None) or str(exc)
    first = str(message).strip().splitlines()[0] if str(message).strip() else ""
    first = _USERINFO.sub(r"://\1:***@", first)  # MLflow's messages repeat the URL, password included
    return DetectorError(f"reference registry: MLflow at {shown}: {what}: {type(exc).__name__}: {first}")


def _mlflow_call(shown: str, what: str, call: Any, *args: Any) -> Any:
    try:
        return call(*args)
    except Exception as exc:  # MlflowException, a connection error, a bad URI scheme...
        raise _mlflow_error(shown, what, exc) from exc


def _mlflow_version(spec: ReferenceRegistry) -> str:
    client, shown = _mlflow_client(spec)
    try:
        mv = client.get_model_version_by_alias(spec.model, spec.alias)
    except Exception as exc:
        if getattr(exc, "error_code", None) in _ALIAS_MISSING:
            raise DetectorError(
                f"reference registry: model {spec.model!r} has no {spec.alias!r} alias in MLflow at {shown}"
            ) from exc
        raise _mlflow_error(shown, f"resolving {spec.model}@{spec.alias}", exc) from exc
    return str(mv.version)


def _mlflow_run_id(client: Any, shown: str, mv: Any) -> str | None:
    if getattr(mv, "run_id", None):
        return str(mv.run_id)
    model_id = getattr(mv, "model_id", None)  # MLflow 3: a version of a logged model
    if model_id:
        logged = _mlflow_call(shown, f"logged model {model_id}", client.get_logged_model, model_id)
        run_id = getattr(logged, "source_run_id", None)
        return str(run_id) if run_id else None
    return None


def _flat_meta(*sources: Mapping[str, str]) -> dict[str, Any]:
    """``training_data``, ``training_window.{source,from,to,rows}`` and ``features`` from tags or params."""
    meta: dict[str, Any] = {}
    window: dict[str, Any] = {}
    for found in sources:
        for key, value in found.items():
            if key == "training_data" and "training_data" not in meta:
                meta["training_data"] = value
            elif key.startswith("training_window.") and key[len("training_window.") :] not in window:
                window[key[len("training_window.") :]] = value
            elif key == "features" and "features" not in meta:
                try:
                    names = json.loads(value)
                except ValueError:
                    names = [n.strip() for n in str(value).split(",") if n.strip()]
                if isinstance(names, list):
                    meta["features"] = names
    if window:
        meta["training_window"] = window
    return meta


def _read_mlflow(
    spec: ReferenceRegistry, version: str, where: str, *, max_rows: int, seed: int
) -> tuple[pd.DataFrame, str, Mapping[str, Any]]:
    """The training rows of an MLflow model version, from the first of these that the version has:

    1. ``artifact_path``, when configured: that artefact of the version's run (a CSV, JSONL or Parquet file);
    2. ``training_data`` / ``training_window`` metadata: the ``aiops.meta`` version tag the retrain
       remediation writes, else version tags, run tags or run params ``training_data``,
       ``training_window.source``/``.from``/``.to``/``.rows`` (and ``features``): read as with the
       filesystem registry;
    3. the dataset the run logged as an input (``mlflow.log_input``): ``dataset`` by name, else the one
       logged with context ``training``, else the only one; its source (a local path, or a URI MLflow can
       download: s3, gs, http...) is read.
    """
    from aiops.registry.mlflow import aiops_metadata

    client, shown = _mlflow_client(spec)
    mv = _mlflow_call(shown, f"model {where}", client.get_model_version, spec.model, version)
    run_id = _mlflow_run_id(client, shown, mv)
    run = _mlflow_call(shown, f"run {run_id} of {where}", client.get_run, run_id) if run_id else None
    meta: dict[str, Any] = aiops_metadata(mv.tags or {})
    if not (meta.get("training_data") or meta.get("training_window")):
        flat = _flat_meta(mv.tags or {}, *((run.data.tags, run.data.params) if run is not None else ()))
        meta = {**flat, **{k: v for k, v in meta.items() if k not in flat}}
    if spec.artifact_path:
        if run is None:
            raise DetectorError(f"reference registry: {where} has no run to read artefact {spec.artifact_path!r} from")
        with tempfile.TemporaryDirectory(prefix="aiops-ref-") as tmp:
            local = _mlflow_call(
                shown,
                f"artefact {spec.artifact_path!r} of run {run_id} ({where})",
                client.download_artifacts,
                run_id,
                spec.artifact_path,
                tmp,
            )
            frame = read_table(local, max_rows=max_rows, seed=seed)
        return frame, f"{where}: artefact {spec.artifact_path} of run {run_id}", meta
    found = _read_metadata(spec, meta, where, max_rows=max_rows, seed=seed)
    if found is not None:
        return found[0], found[1], meta
    inputs = list(run.inputs.dataset_inputs or []) if run is not None and run.inputs is not None else []
    if not inputs:
        raise DetectorError(
            f"reference registry: {where} names no training data: its run "
            f"{run_id or '(none)'} logged no dataset input, and it has no 'training_data' / 'training_window' "
            "metadata (or set 'artifact_path' to the run's artefact holding the training rows)"
        )
    chosen = _choose_dataset(spec, inputs, where)
    frame, description = _read_dataset(chosen, where, shown, max_rows=max_rows, seed=seed)
    return frame, description, meta


def _context(dataset_input: Any) -> str | None:
    for tag in dataset_input.tags or []:
        if tag.key == "mlflow.data.context":
            return str(tag.value)
    return None


def _choose_dataset(spec: ReferenceRegistry, inputs: list[Any], where: str) -> Any:
    names = [f"{d.dataset.name} ({_context(d) or 'no context'})" for d in inputs]
    if spec.dataset:
        picked = [d for d in inputs if d.dataset.name == spec.dataset]
        if not picked:
            raise DetectorError(f"reference registry: the run of {where} logged no dataset {spec.dataset!r}: {names}")
    else:
        picked = [d for d in inputs if _context(d) == "training"] or inputs
    digests = {d.dataset.digest for d in picked}
    if len(digests) > 1:
        raise DetectorError(
            f"reference registry: the run of {where} logged several datasets {names}: set 'dataset' to one's name"
        )
    return picked[0]


def _read_dataset(dataset_input: Any, where: str, shown: str, *, max_rows: int, seed: int) -> tuple[pd.DataFrame, str]:
    ds = dataset_input.dataset
    label = f"dataset {ds.name!r} ({ds.source_type})"
    try:
        info = json.loads(ds.source) if ds.source else {}
    except ValueError:
        info = {}
    # a file (local, or at a URI MLflow downloads: s3, gs, azure, hdfs... sources have a "uri", http a "url");
    # not a table or a Hugging Face dataset
    uri = (info.get("uri") or info.get("url")) if isinstance(info, dict) else None
    if ds.source_type == "local" and isinstance(uri, str):
        return read_table(_local_path(uri), max_rows=max_rows, seed=seed), f"{where}: {label} {uri}"
    if not isinstance(uri, str):
        raise DetectorError(
            f"reference registry: {label} of {where} has no file source (source {ds.source!r}): log it with "
            "mlflow.data.from_pandas(df, source='s3://.../train.parquet'), or set 'artifact_path'"
        )
    from mlflow.data import get_source

    with tempfile.TemporaryDirectory(prefix="aiops-ref-") as tmp:
        source = _mlflow_call(shown, f"{label} of {where}", get_source, dataset_input)
        local = _mlflow_call(shown, f"downloading {label} {uri} of {where}", source.load, tmp)
        frame = read_table(local, max_rows=max_rows, seed=seed)
    return frame, f"{where}: {label} {uri}"
