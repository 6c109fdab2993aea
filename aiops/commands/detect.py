"""``aiops detect``: run a metric detector over CSV files offline (backtests, NAB).

INPUT is a CSV with columns ``timestamp,value`` or a directory searched recursively for ``*.csv``; OUTPUT
mirrors it (same relative paths) with a third column ``anomaly_score`` in [0, 1], which is exactly the
layout NAB's scorer reads. The detector is found through the plugin registry like in the daemon, so a
third-party detector is backtested the same way as a built-in one.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Any

import click
import numpy as np
import yaml

from aiops import plugins
from aiops.detection import Scorer
from aiops.errors import AiopsError
from aiops.plugins import PluginContext


def parse_params(pairs: Sequence[str]) -> dict[str, Any]:
    """``KEY=VALUE`` pairs to a dict; VALUE is read as a YAML scalar (``5`` -> int, ``null`` -> None)."""
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        key = key.strip()
        if not sep or not key:
            raise AiopsError(f"--param {pair!r}: expected KEY=VALUE")
        try:
            out[key] = yaml.safe_load(raw) if raw.strip() else None
        except yaml.YAMLError as exc:
            raise AiopsError(f"--param {key}: cannot parse {raw!r}: {exc}") from exc
    return out


def build_detector(name: str, params: Mapping[str, Any]) -> Any:
    """Load the detector class by entry-point name and validate its parameters."""
    cls = plugins.load(plugins.DETECTORS, name)
    if not callable(getattr(cls, "new_scorer", None)):
        raise AiopsError(f"detector {name!r} is not a per-series metric detector (it has no new_scorer)")
    return plugins.build(plugins.DETECTORS, name, params, context=PluginContext.standalone())


def to_epoch_seconds(column: Any) -> np.ndarray:
    """Numbers are taken as epoch seconds; strings like NAB's ``2014-04-01 00:00:00`` are parsed as UTC."""
    import pandas as pd

    numeric = pd.to_numeric(column, errors="coerce")
    if numeric.notna().all():
        return np.asarray(numeric.to_numpy(dtype=float), dtype=float)
    try:
        parsed = pd.to_datetime(column, utc=True, format="mixed")
    except (ValueError, TypeError) as exc:
        raise AiopsError(f"cannot parse timestamps: {exc}") from exc
    seconds = (parsed - pd.Timestamp(0, tz="UTC")).dt.total_seconds().to_numpy(dtype=float)
    return np.where(parsed.isna().to_numpy(), np.nan, seconds)


def read_series(path: Path) -> tuple[Any, np.ndarray, np.ndarray]:
    import pandas as pd

    try:
        df = pd.read_csv(path)
    except Exception as exc:
        raise AiopsError(f"{path}: cannot read CSV: {exc}") from exc
    missing = [c for c in ("timestamp", "value") if c not in df.columns]
    if missing:
        raise AiopsError(f"{path}: missing column(s) {', '.join(missing)} (need timestamp,value)")
    try:
        ts = to_epoch_seconds(df["timestamp"])
    except AiopsError as exc:
        raise AiopsError(f"{path}: {exc}") from exc
    values = pd.to_numeric(df["value"], errors="coerce").to_numpy(dtype=float)
    return df, ts, values


def score_series(
    detector: Any, ts: np.ndarray, values: np.ndarray, *, with_expected: bool = False
) -> tuple[np.ndarray, list[dict[str, Any]]]:
    """Stream one series through a fresh scorer, skipping what the daemon's adapter skips.

    Rows with a non-finite value or a timestamp not after the previous fed one score 0 and are not fed.
    """
    scorer: Scorer = detector.new_scorer()
    out = np.zeros(len(values), dtype=float)
    bands: list[dict[str, Any]] = []
    last = -math.inf
    for i in range(len(values)):
        t, v = float(ts[i]), float(values[i])
        if not (math.isfinite(t) and math.isfinite(v)) or t <= last:
            bands.append({})
            continue
        last = t
        s = float(scorer.update(t, v))
        out[i] = min(1.0, max(0.0, s)) if math.isfinite(s) else 0.0
        bands.append(dict(scorer.expected()) if with_expected else {})
    return out, bands


def _score_file(job: tuple[str, dict[str, Any], str, str]) -> tuple[str, int]:
    """One file, in a worker process (or inline): read, score, write; returns (input, rows)."""
    name, params, src, dst = job
    detector = build_detector(name, params)
    df, ts, values = read_series(Path(src))
    scores, _ = score_series(detector, ts, values)
    out = df[["timestamp", "value"]].copy()
    out["anomaly_score"] = scores
    Path(dst).parent.mkdir(parents=True, exist_ok=True)
    out.to_csv(dst, index=False)
    return src, len(out)


def plan_jobs(source: Path, output: Path) -> list[tuple[Path, Path]]:
    """(input file, output file) pairs; a directory input is mirrored under the output directory."""
    if source.is_file():
        if output.is_dir():
            return [(source, output / source.name)]
        return [(source, output)]
    if source.is_dir():
        files = sorted(p for p in source.rglob("*.csv") if p.is_file())
        if not files:
            raise AiopsError(f"{source}: no .csv files found")
        if output.exists() and not output.is_dir():
            raise AiopsError(f"{output}: INPUT is a directory, so OUTPUT must be a directory")
        return [(f, output / f.relative_to(source)) for f in files]
    raise AiopsError(f"{source}: no such file or directory")


def plot_file(detector: Any, src: Path, dst: Path) -> None:
    """Series, expected band and alerts of one input, drawn with matplotlib (imported only here)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise AiopsError("--plot needs matplotlib (pip install 'aiops[plot]')") from exc
    _, ts, values = read_series(src)
    scores, bands = score_series(detector, ts, values, with_expected=True)
    threshold = float(getattr(detector.params, "threshold", 0.5))

    def col(key: str) -> np.ndarray:
        return np.array([float(b[key]) if b.get(key) is not None else np.nan for b in bands])

    x = ts.astype("datetime64[s]") if np.isfinite(ts).all() else np.arange(len(ts))
    fig, (ax, ax2) = plt.subplots(2, 1, sharex=True, figsize=(12, 6), height_ratios=[3, 1])
    ax.plot(x, values, lw=0.8, color="tab:blue", label="value")
    lower, upper, exp_ = col("lower"), col("upper"), col("expected")
    if np.isfinite(lower).any() and np.isfinite(upper).any():
        ax.fill_between(x, lower, upper, color="tab:gray", alpha=0.25, label="expected band")
    if np.isfinite(exp_).any():
        ax.plot(x, exp_, lw=0.6, color="tab:gray", label="expected")
    alerts = scores >= threshold
    ax.scatter(np.asarray(x)[alerts], values[alerts], color="tab:red", s=18, zorder=3, label="alert")
    ax.set_title(f"{src.name}: {detector.name}")
    ax.legend(loc="upper left", fontsize=8)
    ax2.plot(x, scores, lw=0.8, color="tab:red")
    ax2.axhline(threshold, ls="--", lw=0.6, color="black")
    ax2.set_ylim(0, 1.02)
    ax2.set_ylabel("score")
    fig.tight_layout()
    dst.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(dst, dpi=110)
    plt.close(fig)


@click.command("detect")
@click.argument("input_path", metavar="INPUT", type=click.Path(path_type=Path))
@click.option(
    "-o",
    "--output",
    "output",
    required=True,
    metavar="PATH",
    type=click.Path(path_type=Path),
    help="where the scored CSV goes: a file for one INPUT file, a directory for a directory",
)
@click.option(
    "--detector", "detector_name", default=None, help="detector entry point (default: default, or baseline)"
)
@click.option("--param", "params", multiple=True, metavar="KEY=VALUE", help="detector parameter (repeatable)")
@click.option("--jobs", "-j", default=1, show_default=True, type=click.IntRange(min=1), help="processes")
@click.option("--plot", "plot", type=click.Path(path_type=Path), help="draw series, band and alerts (one input)")
@click.option("--quiet", "-q", is_flag=True, help="no progress bar")
@click.option(
    "--multivariate", is_flag=True, help="INPUT has a time column and several value columns, scored as one vector"
)
@click.option(
    "--train-rows", type=click.IntRange(min=1), help="with --multivariate: fault-free rows at the start of each file"
)
@click.option("--exclude", default="", metavar="COL,...", help="with --multivariate: columns not to read (labels)")
def detect(
    input_path: Path,
    output: Path,
    detector_name: str | None,
    params: tuple[str, ...],
    jobs: int,
    plot: Path | None,
    quiet: bool,
    multivariate: bool,
    train_rows: int | None,
    exclude: str,
) -> None:
    """Score INPUT (a timestamp,value CSV or a directory of them); write it with anomaly_score to -o PATH.

    Each output row is the input's timestamp and value plus anomaly_score in [0, 1], computed causally, point
    by point, as the daemon would have seen it. With --multivariate, INPUT is a CSV of several channels (a
    time column and value columns, any separator) or a directory of them, and each output row has
    anomaly_score and alert (0/1, the detector's own decision).

    \b
    Examples:
      aiops detect latency.csv -o scored.csv
      aiops detect data/ -o scored/ --detector robust_zscore --param threshold=0.8 -j 2
      aiops detect latency.csv -o scored.csv --plot latency.png
      aiops detect --multivariate runs/ -o scored/ --train-rows 400 --exclude anomaly,changepoint
    """
    from tqdm import tqdm

    parsed = parse_params(params)
    if multivariate:
        from aiops.commands.detect_multivariate import detect_runs

        if train_rows is not None:
            parsed["train_rows"] = train_rows
        columns = [c.strip() for c in exclude.split(",") if c.strip()]
        name = detector_name or "baseline"
        rows = detect_runs(plan_jobs(input_path, output), name, parsed, columns, quiet=quiet)
        if not quiet:
            click.echo(f"scored {rows} rows with {name!r} -> {output}", err=True)
        return
    if train_rows is not None or exclude:
        raise AiopsError("--train-rows and --exclude go with --multivariate")
    detector_name = detector_name or "default"
    detector = build_detector(detector_name, parsed)  # fail fast on a bad name or parameter
    pairs = plan_jobs(input_path, output)
    if plot is not None and len(pairs) != 1:
        raise AiopsError(f"--plot draws one series; INPUT has {len(pairs)} files")
    work = [(detector_name, parsed, str(src), str(dst)) for src, dst in pairs]
    rows = 0
    bar = tqdm(total=len(work), unit="file", disable=quiet or None, desc=detector_name)
    try:
        if jobs == 1 or len(work) == 1:
            for job in work:
                bar.set_postfix_str(os.path.basename(job[2]))
                rows += _score_file(job)[1]
                bar.update(1)
        else:
            with ProcessPoolExecutor(max_workers=jobs) as pool:
                futures = [pool.submit(_score_file, job) for job in work]
                for fut in as_completed(futures):
                    rows += fut.result()[1]
                    bar.update(1)
    finally:
        bar.close()
    if plot is not None:
        plot_file(detector, pairs[0][0], plot)
    if not quiet:
        click.echo(f"scored {rows} rows in {len(work)} file(s) with {detector_name!r} -> {output}", err=True)
