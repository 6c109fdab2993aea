"""Where a drift reference comes from besides a file: a SQL query, or the champion model's training window.

Both are read once (a SQL query on first use; the registry each time its champion moves) and reduced to a
uniform sample of at most ``max_rows`` rows while read, like a reference file; the detector then keeps only
statistics of it. Every failure is a :class:`DetectorError` saying what could not be read and why (never a
traceback, never a password: URLs are shown with the password hidden).
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from aiops.errors import DetectorError

from ._io import _CHUNK, read_table, reservoir_sample


class ReferenceSQL(BaseModel):
    """``reference_sql``: the reference is the result of a SELECT."""

    model_config = ConfigDict(extra="forbid")

    url: str = Field(description="SQLAlchemy URL, e.g. postgresql+psycopg://u@h/db or ${REFERENCE_DB_URL}")
    query: str = Field(description="SELECT returning the reference rows")


class ReferenceRegistry(BaseModel):
    """``reference_registry``: the reference is the training data of the model version an alias points at."""

    model_config = ConfigDict(extra="forbid")

    path: str = Field(description="root directory of the filesystem model registry")
    model: str = Field(description="registered model name")
    alias: str = Field("champion", description="alias whose version's training data is the reference")
    url: str | None = Field(
        None, description="SQLAlchemy URL when the version's training_window.source is a table (or a query)"
    )
    query: str | None = Field(None, description="SELECT to run when the training data came from a query")
    time_column: str | None = Field(
        None, description="row time column: keeps only the rows of the version's training window"
    )


def _expand(value: str) -> str:
    """``${VAR}`` / ``${VAR:-default}`` (already expanded when the value came from the YAML config)."""
    if "${" not in value:
        return value
    from aiops.config.yamlsource import expand_env

    expanded, missing = expand_env(value, os.environ)
    if missing:
        raise DetectorError(f"environment variable(s) {', '.join(missing)} not set (in {value!r})")
    return expanded


def _shown(url: str) -> str:
    try:
        import sqlalchemy as sa

        return str(sa.engine.make_url(url).render_as_string(hide_password=True))
    except Exception:
        return url.split(":", 1)[0] + ":..."


def read_sql(url: str, query: str, *, max_rows: int | None = None, seed: int = 0) -> pd.DataFrame:
    """Rows of a SELECT (uniformly sampled down to ``max_rows`` while fetched, in chunks)."""
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
            if max_rows is None:
                frame = pd.read_sql_query(sa.text(query), conn)
            else:
                chunks = pd.read_sql_query(sa.text(query), conn, chunksize=_CHUNK)
                frame = reservoir_sample(chunks, max_rows, seed)
        if len(frame) == 0:
            raise DetectorError(f"reference SQL on {shown} returned no rows")
        return frame
    except DetectorError:
        raise
    except Exception as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise DetectorError(f"reference SQL on {shown} failed: {type(exc).__name__}: {first}") from exc
    finally:
        engine.dispose()


@dataclass
class RegistryReference:
    """The training rows of one registered version, and which version that was."""

    version: str
    frame: pd.DataFrame
    description: str


def _registry(path: str) -> Any:
    from aiops_remediations.registry.fs import FilesystemRegistry

    if not os.path.isdir(path):
        raise DetectorError(f"reference registry {path!r} is not a directory")
    return FilesystemRegistry(path)


def registry_version(spec: ReferenceRegistry) -> str:
    """The version the alias points at now (reads only the registry's small ``registry.json``)."""
    from aiops.errors import RemediationError

    try:
        version: str | None = _registry(spec.path).alias(spec.model, spec.alias)
    except RemediationError as exc:
        raise DetectorError(f"reference registry: {exc}") from exc
    if version is None:
        raise DetectorError(f"reference registry: model {spec.model!r} has no {spec.alias!r} alias in {spec.path!r}")
    return version


def _stamps(col: pd.Series) -> pd.Series:
    if pd.api.types.is_numeric_dtype(col):
        return col.astype(float)
    return pd.to_datetime(col, utc=True, errors="coerce").astype("int64") / 1e9


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

    ``features`` in the metadata, when present (and ``features`` is true: the detector names no
    ``columns``), are the columns kept (label and time are not data drift).
    """
    from aiops.errors import RemediationError

    reg = _registry(spec.path)
    version = version or registry_version(spec)
    try:
        meta = reg.metadata(spec.model, version)
    except RemediationError as exc:
        raise DetectorError(f"reference registry: {exc}") from exc
    where = f"{spec.model} version {version}"
    data = meta.get("training_data")
    window = meta.get("training_window")
    if isinstance(data, str) and data:
        frame = read_table(data, max_rows=max_rows, seed=seed)
        description = f"{where}: training data {data}"
    elif isinstance(window, Mapping) and window.get("source"):
        frame, description = _read_window(spec, window, where, max_rows=max_rows, seed=seed)
    else:
        raise DetectorError(
            f"reference registry: {where} names no training data (metadata has neither 'training_data' "
            "nor 'training_window.source')"
        )
    names = meta.get("features")
    if features and isinstance(names, list) and names:
        missing = [str(c) for c in names if str(c) not in frame.columns]
        if missing:
            raise DetectorError(f"reference registry: training data of {where} lacks feature(s) {missing}")
        frame = frame[[str(c) for c in names]]
    if len(frame) == 0:
        raise DetectorError(f"reference registry: the training data of {where} has no rows ({description})")
    return RegistryReference(version=version, frame=frame.reset_index(drop=True), description=description)


def _read_window(
    spec: ReferenceRegistry, window: Mapping[str, Any], where: str, *, max_rows: int, seed: int
) -> tuple[pd.DataFrame, str]:
    source = str(window["source"])
    lo, hi = _bound(window.get("from")), _bound(window.get("to"))
    rows = window.get("rows")
    windowed = spec.time_column is not None and (lo is not None or hi is not None or rows)
    # the time filter and "first N rows" need every row of the window: sample only after them
    cap = None if windowed else max_rows
    if spec.url:
        if source == "query" or spec.query:
            if not spec.query:
                raise DetectorError(f"reference registry: {where} was trained on a query: set 'query'")
            query = spec.query
        else:
            import sqlalchemy as sa

            try:
                engine = sa.create_engine(_expand(spec.url))
            except Exception as exc:
                raise DetectorError(f"reference registry: cannot open {_shown(spec.url)}: {exc}") from exc
            preparer = engine.dialect.identifier_preparer
            engine.dispose()
            quoted = ".".join(preparer.quote_identifier(part) for part in source.split("."))
            query = f"SELECT * FROM {quoted}"
        frame = read_sql(spec.url, query, max_rows=cap, seed=seed)
        description = f"{where}: {source} via {_shown(_expand(spec.url))}"
    else:
        if source == "query":
            raise DetectorError(f"reference registry: {where} was trained on a query: set 'url' and 'query'")
        if not os.path.exists(source):
            raise DetectorError(
                f"reference registry: training data {source!r} of {where} is not a file here (a table? set 'url')"
            )
        frame = read_table(source, max_rows=cap, seed=seed)
        description = f"{where}: {source}"
    if windowed:
        col = str(spec.time_column)
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
        if rows:
            frame = frame.head(int(rows))
        description += f" rows {window.get('from')} .. {window.get('to')}"
        if len(frame) > max_rows:
            frame = frame.sample(n=max_rows, random_state=seed).sort_index()
    return frame.reset_index(drop=True), description
