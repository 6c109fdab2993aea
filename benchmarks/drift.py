#!/usr/bin/env python3
"""Drift-detection benchmark: quality on the shared drift cases and speed on 100 000 rows x 50 columns.

Quality: for every aiops drift detector and every peer that runs here, the false-alarm rate (flagged windows
before the onset and on no-drift streams), the detection rate (drifting cases with a flagged window after the
onset), the mean delay in rows, per shift kind, and the CPU time, all scored by the shared
``drift_eval.py`` (windows of 500 rows) in one run. Peers: drift_eval's built-in naive KS, KS + Bonferroni
and PSI > 0.2; alibi-detect's TabularDrift in-process when importable, else through ``--alibi-python``
(``.alibi-venv/bin/python`` by default, created by scripts/alibi-env.sh); Evidently through
``--evidently-python`` when given (its own venv: it pins other versions of our dependencies).

Label-free performance: CBPE's estimated accuracy and 95 % interval vs the realised accuracy for real
classifiers (digits, logistic regression; NOAA weather from ``--data``, gradient boosting) under covariate
shift, next to a perfect estimator's noise floor. Alone:
``.venv/bin/python -c 'import sys; sys.path.insert(0, "benchmarks"); import drift;
print("\n".join(drift.render_cbpe(drift.cbpe_experiment())))'``

Speed: the same 100 000 x 50 table (reference and current, one column shifted by 0.1 sd) through aiops
``drift`` (default sample caps, and uncapped), a scipy ``ks_2samp`` loop over the columns (the baseline, same
process) and Evidently's DataDriftPreset when available; printed as ratios to the baseline.
``--like-for-like`` measures both ways in one run, ``--repeat`` times, with medians: each tool as a CLI call
runs it (a fresh process: imports, reading two CSV files, every row) and the in-process headline (libraries
loaded and tables read before timing, aiops with its default row caps).

    .venv/bin/python benchmarks/drift.py                      # everything that runs here
    .venv/bin/python benchmarks/drift.py --data ../shared/data/drift --json benchmarks/out/drift.json
    .venv/bin/python benchmarks/drift.py --like-for-like --repeat 5 --evidently-python /tmp/evidently-venv/bin/python
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "drift"
AIOPS_DETECTORS = {"drift": {}, "ks": {}, "psi": {}, "mmd": {}, "classifier": {"max_iter": 50}}
PEERS = ["ks_naive", "ks_bonferroni", "psi"]


def load_drift_eval(data: Path) -> Any:
    tools = data.resolve().parents[1] / "tools"
    sys.path.insert(0, str(tools))
    import drift_eval

    return drift_eval


def aiops_decider(name: str, params: dict[str, Any]) -> Callable[[pd.DataFrame, pd.DataFrame], bool]:
    """A drift_eval ``decide`` that fits the reference once per case (drift_eval passes the same frame)."""
    from aiops import plugins

    cache: dict[int, Any] = {}

    def decide(ref: pd.DataFrame, window: pd.DataFrame) -> bool:
        key = id(ref)
        if key not in cache:
            cache.clear()
            cache[key] = plugins.build(plugins.DETECTORS, name, params).fit(ref)
        return bool(cache[key].test(window).drift)

    return decide


def run_external(python: str, data: Path, peer: str) -> dict[str, Any] | None:
    script = data.resolve().parents[1] / "tools" / "drift_eval.py"
    proc = subprocess.run([python, str(script), str(data), "--peer", peer], capture_output=True, text=True)
    if proc.returncode != 0:
        print(f"  {peer} via {python} failed: {proc.stderr.strip()[-300:]}", file=sys.stderr)
        return None
    report: dict[str, Any] = json.loads(proc.stdout)
    return report


def quality(
    data: Path,
    detectors: list[str],
    peers: list[str],
    alibi_python: str | None,
    evidently_python: str | None,
    evidently_cases: bool,
) -> dict[str, dict[str, Any]]:
    de = load_drift_eval(data)
    results: dict[str, dict[str, Any]] = {}
    for name in detectors:
        print(f"running aiops {name} ...", file=sys.stderr, flush=True)
        results[f"aiops {name}"] = de.evaluate(str(data), aiops_decider(name, AIOPS_DETECTORS.get(name, {})))
    for peer in peers:
        print(f"running peer {peer} ...", file=sys.stderr, flush=True)
        results[f"peer {peer}"] = de.evaluate(str(data), de.PEERS[peer])
    if importlib.util.find_spec("alibi_detect") is not None:
        print("running peer alibi_tabular (in process) ...", file=sys.stderr, flush=True)
        results["peer alibi_tabular"] = de.evaluate(str(data), de.PEERS["alibi_tabular"])
    elif alibi_python and Path(alibi_python).exists():
        print(f"running peer alibi_tabular via {alibi_python} ...", file=sys.stderr, flush=True)
        rep = run_external(alibi_python, data, "alibi_tabular")
        if rep is not None:
            results["peer alibi_tabular"] = rep
    else:
        print("alibi-detect not available (run scripts/alibi-env.sh): skipping its peer", file=sys.stderr)
    if evidently_python and evidently_cases:
        for peer in ("evidently_dataset", "evidently_any"):
            print(f"running peer {peer} via {evidently_python} (slow) ...", file=sys.stderr, flush=True)
            rep = run_external(evidently_python, data, peer)
            if rep is not None:
                results[f"peer {peer}"] = rep
    return results


_EVIDENTLY_CHILD = r"""
import json, sys, time
import numpy as np, pandas as pd
from evidently import Report
from evidently.presets import DataDriftPreset
ref = np.load(sys.argv[1]); cur = np.load(sys.argv[2]); cols = [f"c{i}" for i in range(ref.shape[1])]
r, c = pd.DataFrame(ref, columns=cols), pd.DataFrame(cur, columns=cols)
t0 = time.process_time(); w0 = time.time()
d = Report([DataDriftPreset()]).run(current_data=c, reference_data=r).dict()
cpu = time.process_time() - t0; wall = time.time() - w0
print(json.dumps({"cpu_seconds": cpu, "wall_seconds": wall, "share": d["metrics"][0]["value"]["share"],
                  "count": d["metrics"][0]["value"]["count"]}))
"""


def speed(rows: int, cols: int, evidently_python: str | None) -> dict[str, Any]:
    from scipy.stats import ks_2samp

    from aiops import plugins

    warm = pd.DataFrame({"a": np.arange(200.0), "b": np.arange(200.0) % 7})
    plugins.build(plugins.DETECTORS, "drift", {}).fit(warm).test(warm)  # imports outside the timed region
    ks_2samp(warm["a"], warm["b"])
    rng = np.random.default_rng(0)
    mix = rng.normal(size=(cols, cols)) / np.sqrt(cols)
    ref = rng.normal(size=(rows, cols)) @ mix + rng.normal(size=(rows, cols))
    cur = rng.normal(size=(rows, cols)) @ mix + rng.normal(size=(rows, cols))
    cur[:, 7] += 0.1 * ref[:, 7].std()  # one column moves by 0.1 sd: both decisions should name c7
    names = [f"c{i}" for i in range(cols)]
    ref_df, cur_df = pd.DataFrame(ref, columns=names), pd.DataFrame(cur, columns=names)
    out: dict[str, Any] = {"rows": rows, "columns": cols}

    t0 = time.process_time()
    ks_flags = [n for j, n in enumerate(names) if ks_2samp(ref[:, j], cur[:, j]).pvalue < 0.05 / cols]
    out["scipy_ks_loop"] = {"cpu_seconds": time.process_time() - t0, "flagged": ks_flags}

    for label, params in (
        ("aiops_drift", {}),
        ("aiops_drift_uncapped", {"max_reference_rows": rows, "max_current_rows": rows}),
    ):
        t0 = time.process_time()
        det = plugins.build(plugins.DETECTORS, "drift", params).fit(ref_df)
        fit_cpu = time.process_time() - t0
        res = det.test(cur_df)
        total = time.process_time() - t0
        mv = res.details.get("multivariate", {})
        out[label] = {
            "cpu_seconds": total,
            "fit_cpu_seconds": fit_cpu,
            "test_cpu_seconds": total - fit_cpu,
            "flagged": res.drifted_columns,
            "multivariate_drift": mv.get("drift"),
        }

    if evidently_python and Path(evidently_python).exists():
        with tempfile.TemporaryDirectory() as tmp:
            np.save(os.path.join(tmp, "ref.npy"), ref)
            np.save(os.path.join(tmp, "cur.npy"), cur)
            script = os.path.join(tmp, "ev.py")
            Path(script).write_text(_EVIDENTLY_CHILD)
            argv = [evidently_python, script, os.path.join(tmp, "ref.npy"), os.path.join(tmp, "cur.npy")]
            proc = subprocess.run(argv, capture_output=True, text=True)
            if proc.returncode == 0:
                out["evidently"] = json.loads(proc.stdout.strip().splitlines()[-1])
            else:
                out["evidently_error"] = proc.stderr.strip()[-300:]
    base = out["scipy_ks_loop"]["cpu_seconds"]
    for key in ("aiops_drift", "aiops_drift_uncapped", "evidently"):
        if key in out:
            out[key]["speedup_vs_ks_loop"] = base / max(out[key]["cpu_seconds"], 1e-9)
    if "evidently" in out:
        for key in ("aiops_drift", "aiops_drift_uncapped"):
            out[key]["speedup_vs_evidently"] = out["evidently"]["cpu_seconds"] / max(out[key]["cpu_seconds"], 1e-9)
    return out


_KS_CHILD = r"""
import sys
import pandas as pd
from scipy.stats import ks_2samp
ref, cur = pd.read_csv(sys.argv[1]), pd.read_csv(sys.argv[2])
print(sum(ks_2samp(ref[c], cur[c]).pvalue < 0.05 / ref.shape[1] for c in ref.columns))
"""

# Evidently as a CLI call runs it: import, read both CSV files, run the preset. The parent takes the whole
# process's CPU time (the like-for-like figure); the child also times the preset alone once its libraries are
# loaded and the tables read, which is how the earlier in-process headline timed Evidently.
_EVIDENTLY_CSV_CHILD = r"""
import json, sys, time
import pandas as pd
from evidently import Report
from evidently.presets import DataDriftPreset
ref, cur = pd.read_csv(sys.argv[1]), pd.read_csv(sys.argv[2])
t0 = time.process_time()
d = Report([DataDriftPreset()]).run(current_data=cur, reference_data=ref).dict()
print(json.dumps({"run_cpu_seconds": time.process_time() - t0, "share": d["metrics"][0]["value"]["share"],
                  "count": d["metrics"][0]["value"]["count"]}))
"""

# The earlier headline's method for aiops: libraries loaded and tables read before timing, a warm-up fit/test
# so that lazily imported modules load outside the timed region, then fit + test with the default row caps
# (50 000 rows sampled from each table) and with the caps lifted.
_AIOPS_IN_PROCESS_CHILD = r"""
import json, sys, time
import numpy as np, pandas as pd
from aiops import plugins
ref, cur = pd.read_csv(sys.argv[1]), pd.read_csv(sys.argv[2])
rows = max(len(ref), len(cur))
warm = pd.DataFrame({"a": np.arange(200.0), "b": np.arange(200.0) % 7})
plugins.build(plugins.DETECTORS, "drift", {}).fit(warm).test(warm)
out = {}
for label, params in (("capped", {}), ("uncapped", {"max_reference_rows": rows, "max_current_rows": rows})):
    t0 = time.process_time()
    res = plugins.build(plugins.DETECTORS, "drift", params).fit(ref).test(cur)
    out[label] = {"cpu_seconds": time.process_time() - t0, "flagged": res.drifted_columns}
print(json.dumps(out))
"""


def _child_cpu(argv: list[str]) -> dict[str, Any]:
    """Run one fresh process; its CPU seconds (user + system, every thread), wall seconds and last stdout line."""
    import resource

    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    w0 = time.time()
    proc = subprocess.run(argv, capture_output=True, text=True)
    wall = time.time() - w0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    out: dict[str, Any] = {"cpu_seconds": cpu, "wall_seconds": wall, "returncode": proc.returncode}
    if proc.returncode not in (0, 1):
        out["error"] = proc.stderr.strip()[-300:]
    lines = proc.stdout.strip().splitlines()
    out["stdout"] = lines[-1] if lines else ""
    return out


def _median(values: list[float]) -> float:
    return float(np.median(values)) if values else float("nan")


def speed_like_for_like(rows: int, cols: int, evidently_python: str | None, repeat: int = 1) -> dict[str, Any]:
    """Both speed figures in one run, ``repeat`` times, alternating the tools, medians at the end.

    Like-for-like: each tool as a CLI call runs it, a fresh process that imports its libraries, reads the two
    CSV files and tests every row (aiops with its row caps lifted), CPU time of the whole process.
    Headline (the earlier in-process method): libraries loaded and tables read first, then only aiops's fit +
    test with its default row caps (and uncapped) against Evidently's preset run alone.
    Baseline (same run): a fresh process with pandas + a scipy ``ks_2samp`` loop over the columns.
    """
    rng = np.random.default_rng(0)
    mix = rng.normal(size=(cols, cols)) / np.sqrt(cols)
    ref = rng.normal(size=(rows, cols)) @ mix + rng.normal(size=(rows, cols))
    cur = rng.normal(size=(rows, cols)) @ mix + rng.normal(size=(rows, cols))
    cur[:, 7] += 0.1 * ref[:, 7].std()
    names = [f"c{i}" for i in range(cols)]
    aiops_cli = str(Path(sys.executable).with_name("aiops"))
    out: dict[str, Any] = {"rows": rows, "columns": cols, "runs": []}
    with tempfile.TemporaryDirectory() as tmp:
        ref_csv, cur_csv = os.path.join(tmp, "ref.csv"), os.path.join(tmp, "cur.csv")
        pd.DataFrame(ref, columns=names).to_csv(ref_csv, index=False)
        pd.DataFrame(cur, columns=names).to_csv(cur_csv, index=False)
        for name, text in (("ks.py", _KS_CHILD), ("ev.py", _EVIDENTLY_CSV_CHILD), ("ai.py", _AIOPS_IN_PROCESS_CHILD)):
            Path(tmp, name).write_text(text)
        caps = ["--param", f"max_reference_rows={rows}", "--param", f"max_current_rows={rows}"]
        for i in range(repeat):
            print(f"speed run {i + 1} of {repeat} ...", file=sys.stderr, flush=True)
            run: dict[str, Any] = {
                "scipy_ks_loop": _child_cpu([sys.executable, os.path.join(tmp, "ks.py"), ref_csv, cur_csv]),
                "aiops_drift_cli": _child_cpu(
                    [aiops_cli, "drift", "--reference", ref_csv, "--current", cur_csv, *caps, "--json"]
                ),
            }
            inproc = _child_cpu([sys.executable, os.path.join(tmp, "ai.py"), ref_csv, cur_csv])
            run["aiops_in_process"] = json.loads(inproc["stdout"]) if inproc["returncode"] == 0 else inproc
            if evidently_python and Path(evidently_python).exists():
                ev = _child_cpu([evidently_python, os.path.join(tmp, "ev.py"), ref_csv, cur_csv])
                if ev["returncode"] == 0:
                    ev.update(json.loads(ev["stdout"]))
                run["evidently"] = ev
            out["runs"].append(run)
            # each run as it completes: on a busy machine one Evidently process can take many minutes of wall time
            _ratios(out)
            print("\n".join(render_like_for_like(out)[-4:-2]), file=sys.stderr, flush=True)
    _ratios(out)
    return out


def _ratios(out: dict[str, Any]) -> None:
    """Per run and as medians over the runs: aiops against the KS loop and Evidently, both ways of timing."""
    for run in out["runs"]:
        ai, ks, ev = run["aiops_drift_cli"], run["scipy_ks_loop"], run.get("evidently")
        ai["speedup_vs_ks_loop"] = ks["cpu_seconds"] / max(ai["cpu_seconds"], 1e-9)
        if ev is not None and "run_cpu_seconds" in ev:
            ai["speedup_vs_evidently"] = ev["cpu_seconds"] / max(ai["cpu_seconds"], 1e-9)
            for key in ("capped", "uncapped"):
                part = run["aiops_in_process"].get(key)
                if part is not None:
                    part["speedup_vs_evidently"] = ev["run_cpu_seconds"] / max(part["cpu_seconds"], 1e-9)
    runs = out["runs"]
    med: dict[str, float] = {
        "scipy_ks_loop": _median([r["scipy_ks_loop"]["cpu_seconds"] for r in runs]),
        "aiops_drift_cli": _median([r["aiops_drift_cli"]["cpu_seconds"] for r in runs]),
        "aiops_drift_cli_vs_ks_loop": _median([r["aiops_drift_cli"]["speedup_vs_ks_loop"] for r in runs]),
    }
    for key in ("capped", "uncapped"):
        vals = [r["aiops_in_process"][key]["cpu_seconds"] for r in runs if key in r["aiops_in_process"]]
        med[f"aiops_in_process_{key}"] = _median(vals)
    with_ev = [r for r in runs if "speedup_vs_evidently" in r["aiops_drift_cli"]]
    if with_ev:
        med["evidently"] = _median([r["evidently"]["cpu_seconds"] for r in with_ev])
        med["evidently_run_only"] = _median([r["evidently"]["run_cpu_seconds"] for r in with_ev])
        med["like_for_like_vs_evidently"] = _median([r["aiops_drift_cli"]["speedup_vs_evidently"] for r in with_ev])
        for key in ("capped", "uncapped"):
            med[f"in_process_{key}_vs_evidently"] = _median(
                [r["aiops_in_process"][key]["speedup_vs_evidently"] for r in with_ev]
            )
    out["median"] = med


def render_like_for_like(spd: dict[str, Any]) -> list[str]:
    def cell(r: dict[str, Any] | None, key: str = "cpu_seconds") -> str:
        return "-" if r is None or key not in r else f"{r[key]:.2f}"

    def ratio(r: dict[str, Any] | None) -> str:
        return "-" if r is None or "speedup_vs_evidently" not in r else f"{r['speedup_vs_evidently']:.1f}x"

    lines = [
        "",
        f"Speed, {spd['rows']} rows x {spd['columns']} columns (reference and current), CPU seconds (user + "
        "system, every thread). Like-for-like: a fresh process per tool, imports, reading both CSV files, every "
        "row. Headline (in process): libraries loaded and tables read before timing; aiops fit + test with its "
        "default row caps (and uncapped) against Evidently's preset run alone.",
        "",
        "| run | KS loop CLI | aiops CLI | Evidently CLI | **like-for-like** | aiops KS-loop ratio "
        "| aiops in process, capped | uncapped | Evidently run only | **headline (capped)** | uncapped |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for i, run in enumerate(spd["runs"], 1):
        ai, ev, inp = run["aiops_drift_cli"], run.get("evidently"), run["aiops_in_process"]
        lines.append(
            f"| {i} | {cell(run['scipy_ks_loop'])} | {cell(ai)} | {cell(ev)} | {ratio(ai)} | "
            f"{ai['speedup_vs_ks_loop']:.2f}x | {cell(inp.get('capped'))} | {cell(inp.get('uncapped'))} | "
            f"{cell(ev, 'run_cpu_seconds')} | {ratio(inp.get('capped'))} | {ratio(inp.get('uncapped'))} |"
        )
    m = spd["median"]

    def med(key: str, fmt: str = "{:.2f}") -> str:
        return fmt.format(m[key]) if key in m else "-"

    lines.append(
        f"| median | {med('scipy_ks_loop')} | {med('aiops_drift_cli')} | {med('evidently')} | "
        f"**{med('like_for_like_vs_evidently', '{:.1f}x')}** | {med('aiops_drift_cli_vs_ks_loop', '{:.2f}x')} | "
        f"{med('aiops_in_process_capped')} | {med('aiops_in_process_uncapped')} | {med('evidently_run_only')} | "
        f"**{med('in_process_capped_vs_evidently', '{:.1f}x')}** | "
        f"{med('in_process_uncapped_vs_evidently', '{:.1f}x')} |"
    )
    walls = {
        label: _median([r[key]["wall_seconds"] for r in spd["runs"] if key in r])
        for label, key in (("KS loop", "scipy_ks_loop"), ("aiops", "aiops_drift_cli"), ("Evidently", "evidently"))
    }
    lines += ["", "Median wall seconds of the fresh processes: " + ", ".join(f"{k} {v:.1f}" for k, v in walls.items())]
    return lines


def _cbpe_windows(
    name: str, s: np.ndarray, y: np.ndarray, z: np.ndarray, ref: np.ndarray, pool: np.ndarray, seed: int, plan: Any
) -> list[dict[str, Any]]:
    """CBPE fitted on ``ref``; windows drawn from ``pool`` with probability exp(k z); one row per window."""
    from aiops import plugins

    rng = np.random.default_rng(seed)
    det = plugins.build(plugins.DETECTORS, "cbpe", {"seed": seed}).fit(pd.DataFrame({"score": s[ref], "label": y[ref]}))
    rows = []
    for k, window, draws in plan:
        w = np.exp(k * z[pool])
        for _ in range(draws):
            cur = rng.choice(pool, window, replace=False, p=w / w.sum())
            d = det.test(pd.DataFrame({"score": s[cur]})).details
            right = (s[cur] >= 0.5) == (y[cur] == 1)
            real = float(np.mean(right))
            # noise floor: a perfect estimator (the mean of the true per-row probabilities of being right)
            # still misses the realised accuracy by the window's sampling noise; here the calibrated
            # probabilities stand in for the true ones and the labels are drawn from them
            conf = np.where(s[cur] >= 0.5, s[cur], 1 - s[cur])
            q = np.interp(conf, *det.calibrators_[0])
            floor = float(np.mean(q) - np.mean(rng.random(window) < q))
            rows.append(
                {
                    "case": name,
                    "k": k,
                    "window": window,
                    "realised": real,
                    "error": d["estimated_accuracy"] - real,
                    "inside": d["accuracy_lower"] <= real <= d["accuracy_upper"],
                    "half_width": (d["accuracy_upper"] - d["accuracy_lower"]) / 2,
                    "floor_error": floor,
                    "drop": det.reference_accuracy_ - real,
                }
            )
    return rows


def _cbpe_summary(rows: list[dict[str, Any]], key: str = "error") -> dict[str, Any]:
    e = np.array([r[key] for r in rows])
    return {
        "windows": len(rows),
        "realised_accuracy": float(np.mean([r["realised"] for r in rows])),
        "mean_abs_error": float(np.mean(np.abs(e))),
        "max_abs_error": float(np.max(np.abs(e))),
        "within_3_points": float(np.mean(np.abs(e) <= 0.03)),
        "bias": float(np.mean(e)),
        "coverage_95": float(np.mean([r["inside"] for r in rows])) if key == "error" else None,
        "mean_half_width": float(np.mean([r["half_width"] for r in rows])) if key == "error" else None,
        "mean_realised_drop": float(np.mean([r["drop"] for r in rows])),
    }


def cbpe_experiment(seeds: int = 20, data: Path | None = DEFAULT_DATA) -> dict[str, Any]:
    """Label-free accuracy (CBPE) vs realised accuracy, real classifiers under covariate shift.

    Digits: scikit-learn's bundled digits (1 797 real 8x8 scans), task "digit >= 5", a logistic regression
    trained on 700 rows; 500 labelled rows are the reference; 3 windows of 300 rows per seed and shift are
    drawn without replacement from the remaining 597 rows with probability proportional to exp(k z(ink)),
    k in {0, +1, +2, -2}: the shift is in the inputs (how much ink), the concept is unchanged.

    Weather (when ``data`` holds the public drift cases): the NOAA daily weather rows of the reference and the
    three no-drift streams, deduplicated (14 142 days); task "average wind speed above its median" from the
    other 7 measurements, a gradient-boosting model trained on 3 000 rows, 2 000 labelled reference rows,
    windows of 300 and 1 000 rows from the remaining ~9 100 rows under exp(k z(temperature)).

    Each case also gets a noise-floor row: a perfect estimator still misses the realised accuracy of a window
    by the sampling noise of its labels (see :func:`_cbpe_windows`).
    """
    from sklearn.datasets import load_digits
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    shifts = (0.0, 1.0, 2.0, -2.0)
    rows: list[dict[str, Any]] = []
    x, y = load_digits(return_X_y=True)
    y = (y >= 5).astype(int)
    ink = x.sum(axis=1)
    z = (ink - ink.mean()) / ink.std()
    for seed in range(seeds):
        idx = np.random.default_rng(seed).permutation(len(y))
        train, ref, pool = idx[:700], idx[700:1200], idx[1200:]
        model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000, C=0.05)).fit(x[train], y[train])
        s = model.predict_proba(x)[:, 1]
        plan = [(k, 300, 3) for k in shifts]
        rows += _cbpe_windows("digits >= 5, logistic regression", s, y, z, ref, pool, seed, plan)
    files = ["weather__reference.csv", "weather__none.csv", "weather__none_b.csv", "weather__none_c.csv"]
    if data is not None and all((data / f).exists() for f in files):
        days = pd.concat([pd.read_csv(data / f) for f in files]).drop_duplicates().reset_index(drop=True)
        wy = (days["feat_5"] > days["feat_5"].median()).to_numpy(dtype=int)
        wx = days.drop(columns=["feat_5"]).to_numpy(dtype=float)
        temp = days["feat_1"].to_numpy(dtype=float)
        wz = (temp - temp.mean()) / temp.std()
        for seed in range(seeds):
            idx = np.random.default_rng(seed).permutation(len(wy))
            train, ref, pool = idx[:3000], idx[3000:5000], idx[5000:]
            gbm = HistGradientBoostingClassifier(max_iter=100, random_state=seed).fit(wx[train], wy[train])
            s = gbm.predict_proba(wx)[:, 1]
            plan = [(k, n, 3) for n in (300, 1000) for k in shifts]
            rows += _cbpe_windows("weather windy day, gradient boosting", s, wy, wz, ref, pool, seed, plan)
    out: dict[str, Any] = {}
    for case in dict.fromkeys(r["case"] for r in rows):
        for window in sorted({r["window"] for r in rows if r["case"] == case}):
            sel = [r for r in rows if r["case"] == case and r["window"] == window]
            for k in shifts:
                out[f"{case} | {window} | k={k:+g}"] = _cbpe_summary([r for r in sel if r["k"] == k])
            out[f"{case} | {window} | all shifts"] = _cbpe_summary(sel)
            out[f"{case} | {window} | noise floor"] = _cbpe_summary(sel, "floor_error")
    return out


def render_cbpe(cbpe: dict[str, Any]) -> list[str]:
    lines = [
        "",
        "Label-free accuracy (CBPE) vs the accuracy realised when the labels arrive, under covariate shift "
        "exp(k z): estimate error, share of windows within ±3 points, and how often the realised accuracy fell "
        "inside the stated 95 % interval. The noise-floor rows are a perfect estimator (true per-row "
        "probabilities, labels drawn from them): what the window's sampling noise alone costs.",
        "",
        "| data, model | window | shift | realised acc. | mean abs error | max abs error | within ±3 points | "
        "bias | 95 % interval coverage | mean ± |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for key, r in cbpe.items():
        case, window, shift = key.split(" | ")
        cov = "-" if r["coverage_95"] is None else f"{100 * r['coverage_95']:.0f} %"
        half = "-" if r["mean_half_width"] is None else f"{100 * r['mean_half_width']:.1f} pts"
        lines.append(
            f"| {case} | {window} | {shift} | {100 * r['realised_accuracy']:.1f} % | "
            f"{100 * r['mean_abs_error']:.1f} pts | {100 * r['max_abs_error']:.1f} pts | "
            f"{100 * r['within_3_points']:.0f} % | {100 * r['bias']:+.1f} pts | {cov} | {half} |"
        )
    return lines


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.1f} %"


def render(results: dict[str, dict[str, Any]], spd: dict[str, Any] | None, cbpe: dict[str, Any] | None = None) -> str:
    lines = ["| detector | false alarms | detected | mean delay (rows) | CPU s |", "| --- | --- | --- | --- | --- |"]
    for name, r in results.items():
        delay = r.get("mean_delay_rows")
        cpu = r.get("cpu_seconds")
        lines.append(
            f"| {name} | {_pct(r['false_alarm_rate'])} | {_pct(r['detection_rate'])} | "
            f"{'-' if delay is None else f'{delay:.0f}'} | {'-' if cpu is None else f'{cpu:.1f}'} |"
        )
    kinds = sorted({k for r in results.values() for k in r["by_kind"]})
    lines += [
        "",
        "Per shift kind: detected/cases, false-alarm windows/clean windows, mean delay.",
        "",
        "| detector | " + " | ".join(kinds) + " |",
        "| --- |" + " --- |" * len(kinds),
    ]
    for name, r in results.items():
        cells = []
        for k in kinds:
            d = r["by_kind"].get(k)
            if d is None:
                cells.append("-")
                continue
            delay = "" if d.get("mean_delay") is None else f", {d['mean_delay']:.0f}"
            det = f"{d['detected']}/{d['cases']}" if k != "none" else "-"
            cells.append(f"{det}; {d['false_alarm_windows']}/{d['clean_windows']}{delay}")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    if cbpe:
        lines += render_cbpe(cbpe)
    if spd:
        head = f"Speed, {spd['rows']} rows x {spd['columns']} columns (reference and current), CPU seconds:"
        lines += [
            "",
            head,
            "",
            "| run | CPU s | vs scipy KS loop | vs Evidently | columns flagged |",
            "| --- | --- | --- | --- | --- |",
        ]
        for key in ("scipy_ks_loop", "aiops_drift", "aiops_drift_uncapped", "evidently"):
            if key not in spd:
                continue
            r = spd[key]
            ratio = r.get("speedup_vs_ks_loop")
            ev = r.get("speedup_vs_evidently")
            flagged = ", ".join(r.get("flagged", [])[:6]) or "-"
            if key == "evidently":
                flagged = f"{r.get('count', 0):g} column(s) (dataset drift share {r.get('share', 0):.2f})"
            lines.append(
                f"| {key} | {r['cpu_seconds']:.2f} | {'1' if ratio is None else f'{ratio:.2f}x'} | "
                f"{'-' if ev is None else f'{ev:.0f}x'} | {flagged} |"
            )
        if "evidently_error" in spd:
            lines.append(f"\nEvidently failed: {spd['evidently_error']}")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--detectors", default=",".join(AIOPS_DETECTORS))
    ap.add_argument("--peers", default=",".join(PEERS))
    ap.add_argument("--alibi-python", default=str(ROOT / ".alibi-venv" / "bin" / "python"))
    ap.add_argument("--evidently-python", default=None, help="python of a venv with evidently installed")
    ap.add_argument("--evidently-cases", action="store_true", help="also run Evidently on the cases (~10 CPU min)")
    ap.add_argument("--speed-rows", type=int, default=100_000)
    ap.add_argument("--speed-cols", type=int, default=50)
    ap.add_argument("--skip-speed", action="store_true")
    ap.add_argument("--skip-cbpe", action="store_true")
    ap.add_argument("--speed-only", action="store_true", help="only the 100 000 x 50 speed comparison (~1 min)")
    ap.add_argument(
        "--like-for-like",
        action="store_true",
        help="only the speed comparison, as CLI calls run (a fresh process per tool, all rows, imports included)"
        " and in process (the earlier headline), in one run",
    )
    ap.add_argument("--repeat", type=int, default=3, help="runs of the like-for-like comparison")
    ap.add_argument("--json", type=Path, default=None, help="also write the raw results here")
    args = ap.parse_args()
    if args.like_for_like:
        lfl = speed_like_for_like(args.speed_rows, args.speed_cols, args.evidently_python, args.repeat)
        print("\n".join(render_like_for_like(lfl)))
        if args.json:
            args.json.parent.mkdir(parents=True, exist_ok=True)
            args.json.write_text(json.dumps({"like_for_like": lfl}, indent=1, default=str))
        return
    if args.speed_only:
        spd = speed(args.speed_rows, args.speed_cols, args.evidently_python)
        text = render({}, spd)
        print(text[text.index("Speed,") :])
        if args.json:
            args.json.parent.mkdir(parents=True, exist_ok=True)
            args.json.write_text(json.dumps({"speed": spd}, indent=1, default=str))
        return
    if not args.data.exists():
        raise SystemExit(f"no drift cases at {args.data} (use --data)")
    detectors = [d for d in args.detectors.split(",") if d]
    peers = [p for p in args.peers.split(",") if p]
    results = quality(args.data, detectors, peers, args.alibi_python, args.evidently_python, args.evidently_cases)
    spd = None if args.skip_speed else speed(args.speed_rows, args.speed_cols, args.evidently_python)
    cbpe = None if args.skip_cbpe else cbpe_experiment(data=args.data)
    print(render(results, spd, cbpe))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"quality": results, "speed": spd, "cbpe": cbpe}, indent=1, default=str))


if __name__ == "__main__":
    main()
