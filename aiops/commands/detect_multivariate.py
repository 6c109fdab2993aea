"""``aiops detect --multivariate``: score runs of several channels offline (SKAB-style test-bed runs).

INPUT is a CSV with a time column and several value columns (any common separator, sniffed), or a directory
searched recursively for ``*.csv``; OUTPUT mirrors INPUT's relative paths with one row per input row and the
columns ``anomaly_score`` (in [0, 1), 0.5 = the detector's own alert level) and ``alert`` (0/1, the
detector's decision with its shipped defaults). The first ``--train-rows`` rows of each file are taken as
fault-free; ``--exclude`` names columns that must not be read (labels, ids).
"""

from __future__ import annotations

import csv
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from aiops import plugins
from aiops.errors import AiopsError
from aiops.plugins import PluginContext

_TIME_NAMES = ("timestamp", "datetime", "time", "date", "ts")


def sniff_separator(path: Path) -> str:
    """The separator of a CSV file, from its first lines (``,`` when nothing else fits)."""
    try:
        with path.open(newline="", encoding="utf-8") as fh:
            head = "".join(fh.readline() for _ in range(5))
    except (OSError, UnicodeDecodeError) as exc:
        raise AiopsError(f"{path}: cannot read: {exc}") from exc
    if not head.strip():
        raise AiopsError(f"{path}: empty file")
    try:
        return csv.Sniffer().sniff(head, delimiters=",;\t|").delimiter
    except csv.Error:
        return ","


def read_header(path: Path) -> tuple[str, list[str]]:
    """(separator, column names) of one run."""
    import pandas as pd

    sep = sniff_separator(path)
    try:
        return sep, pd.read_csv(path, sep=sep, nrows=0).columns.tolist()
    except Exception as exc:
        raise AiopsError(f"{path}: cannot read CSV: {exc}") from exc


def check_exclusions(paths: Sequence[Path], exclude: Sequence[str]) -> None:
    """Before anything is scored: a typo in --exclude would silently feed the labels to the detector.

    A file may lack an excluded column (a fault-free run has no label), but some file must have it.
    """
    seen: set[str] = set()
    for path in paths:
        seen.update(read_header(path)[1])
    never = [c for c in exclude if c not in seen]
    if never:
        raise AiopsError(f"--exclude: no input file has the column(s) {', '.join(never)}")


def read_run(path: Path, exclude: Sequence[str]) -> tuple[Any, str | None, list[str]]:
    """(frame, time column or None, value columns) of one run; excluded columns are never parsed."""
    import pandas as pd

    sep, header = read_header(path)
    wanted = [c for c in header if c not in set(exclude)]
    try:
        df = pd.read_csv(path, sep=sep, usecols=wanted)
    except Exception as exc:
        raise AiopsError(f"{path}: cannot read CSV: {exc}") from exc
    time_col = next((c for c in wanted if c.strip().lower() in _TIME_NAMES), None)
    values = [c for c in wanted if c != time_col]
    numeric = [c for c in values if pd.to_numeric(df[c], errors="coerce").notna().any()]
    if not numeric:
        raise AiopsError(f"{path}: no numeric value columns (columns: {', '.join(wanted)})")
    return df, time_col, numeric


def build_vector_detector(name: str, params: Mapping[str, Any]) -> Any:
    cls = plugins.load(plugins.DETECTORS, name)
    if not callable(getattr(cls, "score_rows", None)):
        raise AiopsError(f"detector {name!r} does not score vectors of channels (it has no score_rows)")
    return plugins.build(plugins.DETECTORS, name, params, context=PluginContext.standalone())


def score_run(detector: Any, src: Path, dst: Path, exclude: Sequence[str]) -> int:
    """Read, score and write one run; returns its row count."""
    import pandas as pd

    df, time_col, columns = read_run(src, exclude)
    values = df[columns].apply(pd.to_numeric, errors="coerce").to_numpy(dtype=float)
    scores, alerts = detector.score_rows(values)
    out = pd.DataFrame({"anomaly_score": scores, "alert": alerts.astype(int)})
    if time_col is not None:
        out.insert(0, time_col, df[time_col])
    dst.parent.mkdir(parents=True, exist_ok=True)
    out.to_csv(dst, index=False)
    return len(out)


def detect_runs(
    pairs: Sequence[tuple[Path, Path]], detector_name: str, params: Mapping[str, Any], exclude: Sequence[str],
    *, quiet: bool,
) -> int:
    from tqdm import tqdm

    detector = build_vector_detector(detector_name, params)
    check_exclusions([src for src, _ in pairs], exclude)
    rows = 0
    with tqdm(total=len(pairs), unit="file", disable=quiet or None, desc=detector_name) as bar:
        for src, dst in pairs:
            bar.set_postfix_str(src.name)
            rows += score_run(detector, src, dst, exclude)
            bar.update(1)
    return rows
