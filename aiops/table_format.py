"""The format of a table file, told from its name: the drift command and the drift detectors' reader must agree
on it (the command decides from it whether pandas may be imported without pyarrow)."""

from __future__ import annotations

from typing import Literal

TableFormat = Literal["parquet", "jsonl", "csv"]
_COMPRESSION = (".gz", ".bz2", ".xz", ".zst")


def table_format(path: str) -> TableFormat:
    """``parquet``, ``jsonl`` or ``csv`` from the file name (a compression suffix is looked through).

    >>> table_format("ref.parquet"), table_format("events.ndjson.gz"), table_format("data.txt")
    ('parquet', 'jsonl', 'csv')
    """
    lower = path.lower()
    for suffix in _COMPRESSION:
        if lower.endswith(suffix):
            lower = lower[: -len(suffix)]
    if lower.endswith((".parquet", ".pq")):
        return "parquet"
    if lower.endswith((".jsonl", ".ndjson", ".json")):
        return "jsonl"
    return "csv"
