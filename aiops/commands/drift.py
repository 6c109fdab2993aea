"""``aiops drift``: is CUR different from REF? One decision, or one per window of N rows, like ``diff``.

Exit status: 0 no drift, 1 drift (in at least one window), 2 error (one line on stderr, no traceback). The
detector is found by entry-point name (default ``drift``, aiops's own), so third-party drift detectors work
the same way. The reference is fitted once and every window is tested against that fit.
"""

from __future__ import annotations

import contextlib
import gc
import json
import math
import os
import re
import sys
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, NoReturn

import click

from aiops import plugins
from aiops.errors import AiopsError, InvalidParams
from aiops.plugins import PluginContext
from aiops.table_format import table_format


class _Fail(Exception):
    """An error the command reports as one line and exit status 2."""


def _serial_parsing() -> contextlib.AbstractContextManager[Any]:
    """One CSV parsing thread. pandas 3.1 splits a large file over threads, which costs about a quarter more
    CPU in all (the pieces are parsed, checked and joined) and, on a busy machine, saves no wall time."""
    import pandas as pd

    try:
        pd.get_option("mode.max_threads")
    except KeyError:  # pandas' OptionError is a KeyError: before 3.1 every read is serial anyway
        return contextlib.nullcontext()
    serial: contextlib.AbstractContextManager[Any] = pd.option_context("mode.max_threads", 1)
    return serial


# The variables OpenBLAS sizes its thread pool from, in the order it reads them.
_BLAS_THREAD_VARIABLES = ("OPENBLAS_NUM_THREADS", "GOTO_NUM_THREADS", "OMP_NUM_THREADS")


def _import_numpy_with_one_blas_thread() -> bool:
    """Import NumPy with OpenBLAS's thread pool never started; True if it now runs on one thread.

    OpenBLAS starts its worker threads when NumPy is imported, and an idle worker spins a while before it
    sleeps: 0.05-0.1 s of CPU that a CLI call pays for threads it never uses, since the statistics run on
    one BLAS thread anyway (see :func:`_one_blas_thread`). The variable is set only for the import, so
    nothing else in the process (or a child of it) sees it, and not at all when the user set one of them or
    NumPy is imported already. False also when NumPy's BLAS is not OpenBLAS, whose pool this does not size.
    """
    if "numpy" in sys.modules or any(name in os.environ for name in _BLAS_THREAD_VARIABLES):
        return False
    os.environ["OPENBLAS_NUM_THREADS"] = "1"
    try:
        import numpy
    finally:
        del os.environ["OPENBLAS_NUM_THREADS"]
    config = getattr(numpy.__config__, "CONFIG", {})  # NumPy >= 1.26 describes its build here
    blas = config.get("Build Dependencies", {}).get("blas", {}).get("name", "")
    return "openblas" in str(blas).lower()


def _import_pandas_without_pyarrow(detector: str, paths: Sequence[str]) -> None:
    """Import pandas with pyarrow hidden when nothing in this call needs it.

    pandas imports pyarrow at its own import whenever pyarrow is installed (it is an optional extra of aiops,
    for Parquet), which costs a call about 0.1-0.15 s of CPU: a tenth of a 100 000-row check. CSV and JSON
    Lines are read by pandas' own parsers and aiops's drift detectors use no Arrow type, so for them pandas is
    imported as if pyarrow were absent (text columns are then held as Python strings; every value and
    result is the same). pyarrow is importable again right after, for anything that asks for it itself;
    a Parquet input, another package's detector, or pandas already imported leave everything as it is.
    """
    from aiops.plugins.loader import available

    entry = available(plugins.DETECTORS).get(detector)
    ours = entry is not None and entry.value.startswith("aiops_detectors.drift.")
    if not ours or "pandas" in sys.modules or "pyarrow" in sys.modules:
        return
    if any(table_format(p) == "parquet" for p in paths):
        return
    sys.modules["pyarrow"] = None  # type: ignore[assignment]  # an import of it now raises ImportError
    try:
        import pandas  # noqa: F401
    finally:
        del sys.modules["pyarrow"]


class _ImportsOutsideCollection:
    """Keep the garbage collector off while a call imports its libraries, and off the imported objects after.

    Importing pandas creates some 300 modules' worth of objects, and the collector walks them again and
    again while they are made (about 0.07 s of CPU, ~180 collections) and at every full collection after.
    None of them is garbage, so the collector is paused during the imports; :meth:`imported` then freezes
    what exists (moved out of the collector's sight, still freed by reference counting) and resumes it, and
    leaving the block unfreezes them, so a caller that embeds the CLI gets its collector back as it was. A
    collector that is already off or frozen by someone else is left alone.
    """

    def __enter__(self) -> _ImportsOutsideCollection:
        self._mine = gc.isenabled() and gc.get_freeze_count() == 0
        if self._mine:
            gc.disable()
        return self

    def imported(self) -> None:
        if self._mine and not gc.isenabled():
            gc.freeze()
            gc.enable()

    def __exit__(self, *exc: object) -> None:
        if self._mine:
            gc.unfreeze()
            gc.enable()


def _read(path: str) -> Any:
    """Read CSV, JSON Lines or Parquet by extension (pandas imported lazily to keep ``aiops --help`` fast)."""
    import pandas as pd

    fmt = table_format(path)
    if not os.path.exists(path):
        raise _Fail(f"{path}: no such file")
    try:
        if fmt == "parquet":
            return pd.read_parquet(path)
        if fmt == "jsonl":
            return pd.read_json(path, lines=True)
        with _serial_parsing():
            return pd.read_csv(path)
    except Exception as exc:  # any parser failure is a user-facing "cannot read" line, never a traceback
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else exc.__class__.__name__
        raise _Fail(f"cannot read {path}: {first}") from exc


def _parse_params(items: Sequence[str]) -> dict[str, Any]:
    """``K=V`` pairs; V is read as JSON when it parses (numbers, booleans, lists), else kept as a string."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise _Fail(f"--param {item!r}: expected KEY=VALUE")
        try:
            value: Any = json.loads(raw)
        except ValueError:
            value = raw
        out[key.strip()] = value
    return out


def _build(name: str, params: Mapping[str, Any]) -> Any:
    try:
        cls = plugins.load(plugins.DETECTORS, name)
        if not (callable(getattr(cls, "fit", None)) and callable(getattr(cls, "test", None))):
            raise _Fail(f"detector {name!r} is not a drift detector (it has no fit/test)")
        return plugins.build(plugins.DETECTORS, name, params, context=PluginContext.standalone())
    except InvalidParams as exc:
        raise _Fail(f"detector {name!r}: invalid --param: {'; '.join(exc.problems)}") from None


def _fmt(value: Any, digits: int = 3) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        if not math.isfinite(value):
            return "-"
        if value != 0 and (abs(value) < 1e-3 or abs(value) >= 1e5):
            return f"{value:.{digits - 1}e}"
        return f"{value:.{digits}g}"
    return str(value)


def _column_table(columns: Mapping[str, Mapping[str, Any]], only_drifted: bool = False) -> list[str]:
    rows = [("column", "test", "statistic", "p-value", "effect", "drift")]
    for name, col in columns.items():
        if only_drifted and not col.get("drift"):
            continue
        rows.append(
            (
                name,
                str(col.get("test", "")),
                _fmt(col.get("statistic")),
                _fmt(col.get("p_value")),
                _fmt(col.get("effect")),
                "DRIFT" if col.get("drift") else "-",
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return ["  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)).rstrip() for r in rows]


def _render_text(out: Mapping[str, Any], windowed: bool) -> str:
    lines = [f"detector {out['detector']}: reference {out['reference']} vs current {out['current']}"]
    windows: list[Mapping[str, Any]] = out["windows"]
    if not windowed:
        w = windows[0]
        lines.append(("DRIFT: " if w["drift"] else "no drift: ") + str(w["summary"]))
        lines.append("")
        lines.extend(_column_table(w["columns"]))
        return "\n".join(lines)
    flagged: dict[str, int] = {}
    for w in windows:
        mark = "DRIFT" if w["drift"] else "ok   "
        lines.append(f"rows {w['start']:>8}-{w['end']:<8} {mark}  {w['summary']}")
        for name, col in w["columns"].items():
            if col.get("drift"):
                flagged[name] = flagged.get(name, 0) + 1
    n_drift = sum(1 for w in windows if w["drift"])
    lines.append("")
    lines.append(f"{n_drift} of {len(windows)} windows drifted")
    seq = out.get("sequential")
    if isinstance(seq, Mapping) and seq.get("first_alarm_window") is not None:
        first = int(seq["first_alarm_window"])
        start = windows[first]["start"] if first < len(windows) else "?"
        lines.append(f"persistent shift (evidence across windows) first flagged in window {first} (rows from {start}):")
        for name, alarm in seq.get("alarms", {}).items():
            lo, hi = alarm["ci95"]
            unit = " sd" if alarm["kind"] == "location" else ""
            lines.append(
                f"  {name}: shift {alarm['shift']:+.3g}{unit} (95% CI {lo:+.3g} .. {hi:+.3g}) since window "
                f"{alarm['start_window']}, |z|={abs(alarm['z']):.2f} > {alarm['threshold']:.2f}"
            )
    for name, count in sorted(flagged.items(), key=lambda kv: -kv[1]):
        lines.append(f"  {name}: drifted in {count} window(s)")
    return "\n".join(lines)


def _plot(directory: str, reference: Any, current: Any, columns: Sequence[str]) -> list[str]:
    """Reference vs current distribution of each drifted column, one PNG per column."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np
    import pandas as pd

    os.makedirs(directory, exist_ok=True)
    written = []
    for col in columns:
        if col not in reference.columns or col not in current.columns:
            continue
        fig, ax = plt.subplots(figsize=(6, 3.5))
        ref = pd.to_numeric(reference[col], errors="coerce")
        cur = pd.to_numeric(current[col], errors="coerce")
        numeric = ref.notna().mean() > 0.99 * max(reference[col].notna().mean(), 1e-12) and ref.nunique() > 2
        if numeric:
            r, c = ref.dropna().to_numpy(), cur.dropna().to_numpy()
            both = np.concatenate([r, c]) if len(c) else r
            lo, hi = np.nanquantile(both, [0.005, 0.995]) if len(both) else (0.0, 1.0)
            bins = np.linspace(lo, hi if hi > lo else lo + 1, 40).tolist()
            ax.hist(r, bins=bins, density=True, alpha=0.5, label=f"reference (n={len(r)})")
            ax.hist(c, bins=bins, density=True, alpha=0.5, label=f"current (n={len(c)})")
        else:
            rc = reference[col].astype(str).value_counts(normalize=True, dropna=False)
            cc = current[col].astype(str).value_counts(normalize=True, dropna=False)
            cats = list(dict.fromkeys(list(rc.index[:15]) + list(cc.index[:15])))[:20]
            x = np.arange(len(cats))
            ax.bar(x - 0.2, [rc.get(k, 0.0) for k in cats], width=0.4, label="reference")
            ax.bar(x + 0.2, [cc.get(k, 0.0) for k in cats], width=0.4, label="current")
            ax.set_xticks(x, cats, rotation=45, ha="right", fontsize=7)
        miss = f"missing: ref {reference[col].isna().mean():.1%}, cur {current[col].isna().mean():.1%}"
        ax.set_title(f"{col}  ({miss})", fontsize=9)
        ax.legend(fontsize=8)
        fig.tight_layout()
        path = os.path.join(directory, re.sub(r"[^A-Za-z0-9_.-]+", "_", col) + ".png")
        fig.savefig(path, dpi=100)
        plt.close(fig)
        written.append(path)
    return written


def _test_windows(det: Any, reference: Any, current: Any, window: int | None) -> list[dict[str, Any]]:
    """Fit once, then one result per window of ``window`` rows (the whole table when None), in order."""
    det.fit(reference)
    n = len(current)
    bounds = [(0, n)] if window is None else [(s, min(s + window, n)) for s in range(0, n, window)]
    windows: list[dict[str, Any]] = []
    for start, end in bounds or [(0, 0)]:
        res = det.test(current.iloc[start:end]).to_dict()
        entry: dict[str, Any] = {
            "start": start,
            "end": end,
            "drift": bool(res.get("drift")),
            "summary": res.get("summary", ""),
            "p_value": res.get("p_value"),
            "columns": res.get("columns", {}),
        }
        entry.update({k: v for k, v in res.items() if k not in entry})
        windows.append(entry)
    return windows


@contextlib.contextmanager
def _one_blas_thread(already: bool = False) -> Iterator[None]:
    """Run the statistics with one BLAS thread (``already``: its pool has one thread, nothing to limit).

    A drift check's matrix products are small (columns x columns, on blocks of a few thousand rows), and
    between them OpenBLAS's idle threads spin: on two cores they cost a 100 000-row check about 0.4 s of CPU
    (a third of its statistics) and save no wall time. The limit is lifted when the check is done.
    """
    if already:
        yield
        return
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1, user_api="blas"):
        yield


def _fail(message: str) -> NoReturn:
    click.echo(f"aiops drift: error: {message}", err=True)
    _exit(2)


def _exit(code: int) -> NoReturn:
    # SystemExit rather than ctx.exit: with click >= 8.2, ``main(standalone_mode=False)`` turns ctx.exit into a
    # return value that a caller may drop, and the exit status is this command's contract (like diff).
    raise SystemExit(code)


@click.command("drift")
@click.option("--reference", "reference_path", required=True, help="reference table (CSV, JSONL or Parquet)")
@click.option("--current", "current_path", required=True, help="current table (CSV, JSONL or Parquet)")
@click.option("--detector", default="drift", show_default=True, help="drift detector entry-point name")
@click.option(
    "--window",
    type=click.IntRange(min=1),
    default=None,
    help="test consecutive non-overlapping windows of N rows (the last may be shorter)",
)
@click.option("--param", "params", multiple=True, metavar="KEY=VALUE", help="detector parameter (repeatable)")
@click.option("--json", "as_json", is_flag=True, help="print the result as JSON")
@click.option(
    "--plot",
    "plot_dir",
    default=None,
    metavar="DIR",
    help="write reference-vs-current plots of the drifted columns into DIR",
)
def drift(
    reference_path: str,
    current_path: str,
    detector: str,
    window: int | None,
    params: tuple[str, ...],
    as_json: bool,
    plot_dir: str | None,
) -> None:
    """Test CURRENT against REFERENCE for data drift. Exit 0: no drift, 1: drift, 2: error."""
    with _ImportsOutsideCollection() as collection:
        out, plots = _run(detector, reference_path, current_path, window, params, plot_dir, collection)
    if plots:
        out["plots"] = plots
    if as_json:
        click.echo(json.dumps(out, allow_nan=False, default=str))
    else:
        click.echo(_render_text(out, window is not None))
        for path in plots:
            click.echo(f"plot: {path}")
    _exit(1 if out["drift"] else 0)


def _run(
    detector: str,
    reference_path: str,
    current_path: str,
    window: int | None,
    params: tuple[str, ...],
    plot_dir: str | None,
    collection: _ImportsOutsideCollection,
) -> tuple[dict[str, Any], list[str]]:
    """The command's work: the result (as printed with --json) and the plots written."""
    try:
        one_blas_thread = _import_numpy_with_one_blas_thread()
        _import_pandas_without_pyarrow(detector, (reference_path, current_path))
        det = _build(detector, _parse_params(params))
        collection.imported()
        reference = _read(reference_path)
        current = _read(current_path)
        with _one_blas_thread(already=one_blas_thread):
            windows = _test_windows(det, reference, current, window)
        out: dict[str, Any] = {
            "detector": detector,
            "reference": reference_path,
            "current": current_path,
            "window": window,
            "drift": any(w["drift"] for w in windows),
            "windows": windows,
        }
        if isinstance(windows[-1].get("sequential"), Mapping):
            # the evidence accumulated over every window: the first crossing and the effect sizes at the end
            out["sequential"] = windows[-1]["sequential"]
        drifted_cols = list(dict.fromkeys(n for w in windows for n, col in w["columns"].items() if col.get("drift")))
        plots = _plot(plot_dir, reference, current, drifted_cols) if plot_dir and drifted_cols else []
    except _Fail as exc:
        _fail(str(exc))
    except AiopsError as exc:
        _fail(str(exc))
    except (ValueError, TypeError, KeyError, OSError, MemoryError) as exc:
        _fail(f"{exc.__class__.__name__}: {exc}")
    return out, plots
