"""Reading tables for drift checks: CSV, JSON Lines and Parquet, with a bounded-memory row cap.

A reference of millions of rows is reduced to a uniform random sample while it is read (reservoir sampling
over CSV/JSONL chunks), so a check costs bounded time and memory whatever the file size.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from aiops.errors import DetectorError
from aiops.table_format import table_format

_CHUNK = 100_000


def reservoir_sample(chunks: Iterable[pd.DataFrame], k: int, seed: int = 0) -> pd.DataFrame:
    """A uniform random sample of ``k`` rows from a stream of frames (Algorithm R, chunk-vectorised).

    Each row seen so far is in the reservoir with probability k / seen, so the result is the same kind of
    sample whatever the chunking; the original row order is kept for reproducibility.
    """
    rng = np.random.default_rng(seed)
    parts: list[pd.DataFrame] = []
    reservoir: pd.DataFrame | None = None
    seen = 0
    for chunk in chunks:
        chunk = chunk.reset_index(drop=True)
        if reservoir is None or len(reservoir) < k:
            take = min(k - (0 if reservoir is None else len(reservoir)), len(chunk))
            parts.append(chunk.iloc[:take])
            reservoir = pd.concat(parts, ignore_index=True)
            parts = [reservoir]
            rest = chunk.iloc[take:]
            seen += take
        else:
            rest = chunk
        if len(rest) == 0:
            continue
        # row i of the stream (0-based, global index seen + j) replaces a random slot with prob k / (i + 1)
        idx = seen + np.arange(len(rest))
        slots = (rng.random(len(rest)) * (idx + 1)).astype(np.int64)
        hit = slots < k
        if hit.any():
            assert reservoir is not None
            rows = rest.index[hit]
            # later rows overwrite earlier ones that drew the same slot, exactly as the sequential algorithm
            target = pd.Series(rows, index=slots[hit]).groupby(level=0).last()
            # slots are interchangeable, so dropping the evicted rows and appending the newcomers is the
            # same sample (and keeps each column's dtype, unlike in-place assignment)
            kept = reservoir.drop(index=target.index.to_numpy())
            reservoir = pd.concat([kept, rest.loc[target.to_numpy()]], ignore_index=True)
            parts = [reservoir]
        seen += len(rest)
    if reservoir is None:
        return pd.DataFrame()
    return reservoir


def read_table(path: str | os.PathLike[str], *, max_rows: int | None = None, seed: int = 0) -> pd.DataFrame:
    """Read CSV / JSONL / Parquet into a DataFrame; at most ``max_rows`` rows, uniformly sampled.

    Raises DetectorError with the path and reason on a missing or unreadable file, never a traceback.
    """
    p = os.fspath(path)
    if not os.path.exists(p):
        raise DetectorError(f"table {p!r} does not exist")
    fmt = table_format(p)
    try:
        if fmt == "parquet":
            frame = pd.read_parquet(p)
            if max_rows is not None and len(frame) > max_rows:
                frame = frame.sample(n=max_rows, random_state=seed).sort_index()
            return frame.reset_index(drop=True)
        if fmt == "jsonl":
            if max_rows is None:
                return pd.read_json(p, lines=True)
            return reservoir_sample(pd.read_json(p, lines=True, chunksize=_CHUNK), max_rows, seed)
        if max_rows is None:
            return pd.read_csv(p)
        return reservoir_sample(pd.read_csv(p, chunksize=_CHUNK), max_rows, seed)
    except DetectorError:
        raise
    except (ValueError, OSError, ImportError, pd.errors.ParserError) as exc:
        raise DetectorError(f"cannot read {fmt} table {p!r}: {exc}") from exc


def rows_to_frame(rows: Sequence[Mapping[str, Any]], columns: Sequence[str] = ()) -> pd.DataFrame:
    """A DataFrame from a Frame's dict rows (columns in the declared order when given)."""
    frame = pd.DataFrame.from_records(list(rows))
    if columns:
        for c in columns:
            if c not in frame.columns:
                frame[c] = np.nan
        frame = frame[list(columns)]
    return frame
