"""CPU time of every compiled kernel entry point: the ahead-of-time build against the numba JIT, in one process.

    .venv/bin/aiops warm-cache --detector default        # builds the kernels (NUMBA_CACHE_DIR if set)
    .venv/bin/python benchmarks/aot_kernels.py --rounds 5

The process runs the JIT (``AIOPS_KERNELS=jit`` is set here before any kernel is imported) and loads the
build beside it, so both run on the same inputs, alternately, in the same process: the ratio (build / JIT
CPU time, best of ``--rounds``) is what the switch costs or saves, whatever else the machine runs. Inputs: a
20 000-point random walk with spikes through ``run`` (the batch path), and one point for each of 2 000
warmed series through ``step_rows`` (a daemon tick, per bank block).
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

os.environ["AIOPS_KERNELS"] = "jit"  # the reference; the build is loaded explicitly below

from aiops_detectors.anomaly import _aot, _batch, _bocpd_kernel, _default_kernel, _robust_kernel
from aiops_detectors.anomaly.bocpd import BocpdDetector
from aiops_detectors.anomaly.ensemble import DefaultDetector
from aiops_detectors.robust_zscore import RobustZScoreDetector

KERNELS = ((_default_kernel, DefaultDetector), (_bocpd_kernel, BocpdDetector), (_robust_kernel, RobustZScoreDetector))
BATCH = (("ewma_run", 4, (0.05, 0.02, 5.0, 30)), ("cusum_run", 6, (0.01, 0.5, 8.0, 50)))


def cpu_pair(
    jit: Callable[..., Any], aot: Callable[..., Any], inputs: Callable[[], tuple[Any, ...]], rounds: int
) -> tuple[float, float]:
    """Best CPU seconds of each function over ``rounds`` calls on fresh ``inputs()`` (made outside the timing),
    the two alternating so a change in machine load hits both."""
    best = [math.inf, math.inf]
    for _ in range(rounds):
        for i, fn in enumerate((jit, aot)):
            arguments = inputs()
            started = time.process_time()
            fn(*arguments)
            best[i] = min(best[i], time.process_time() - started)
    return best[0], best[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5, help="timings per entry point and variant (best kept)")
    parser.add_argument("--build", type=Path, help="the built module (default: the cache's, for these sources)")
    args = parser.parse_args()
    path = args.build or _aot.module_path()
    built = _aot.load_file(path) if path.is_file() else None
    if built is None:
        raise SystemExit(f"no build at {path}: run `aiops warm-cache` first")
    rng = np.random.default_rng(3)
    xs = np.cumsum(rng.normal(size=20_000)) + 8.0 * (rng.random(20_000) < 0.01)
    rows = 2000
    timings: list[tuple[str, float, float]] = []
    for kernel, detector in KERNELS:
        name = kernel.__name__.rsplit(".", 1)[-1]
        scorer = detector().new_scorer()
        p, fresh = scorer.p, scorer.st
        warmed = fresh.copy()
        kernel.run(warmed, p, xs[:5000], np.empty(5000))
        bank, index, values = np.tile(warmed, (rows, 1)), np.arange(rows), xs[5000] + rng.normal(size=rows)
        run = partial(_run_inputs, fresh, p, xs)
        timings.append(
            (f"{name}.run (20 000 points)", *cpu_pair(kernel.run, export(built, kernel.run), run, args.rounds))
        )
        if hasattr(kernel, "step_rows"):
            tick = partial(_tick_inputs, bank, p, index, values)  # one bank: consecutive ticks, as a daemon runs
            pair = cpu_pair(kernel.step_rows, export(built, kernel.step_rows), tick, args.rounds)
            timings.append((f"{name}.step_rows ({rows} series)", *pair))
    stamps = np.arange(len(xs), dtype=float)
    for fn, width, params in BATCH:
        batch = partial(_batch_inputs, width, params, stamps, xs)
        pair = cpu_pair(getattr(_batch, fn), export(built, getattr(_batch, fn)), batch, args.rounds)
        timings.append((f"_batch.{fn} (20 000 points)", *pair))
    print(f"build: {path.name}; CPU ms, best of {args.rounds}; load average {os.getloadavg()[0]:.1f}")
    print(f"{'entry point':<42}{'JIT':>10}{'build':>10}{'build/JIT':>11}")
    for label, jit, aot in timings:
        print(f"{label:<42}{1e3 * jit:>10.2f}{1e3 * aot:>10.2f}{aot / jit:>11.2f}")
    assert "numba" in sys.modules  # the JIT really was the reference


def _run_inputs(fresh: np.ndarray, p: np.ndarray, xs: np.ndarray) -> tuple[Any, ...]:
    return fresh.copy(), p, xs, np.empty(len(xs))


def _tick_inputs(bank: np.ndarray, p: np.ndarray, index: np.ndarray, values: np.ndarray) -> tuple[Any, ...]:
    return bank, p, index, values, np.empty(len(index))


def _batch_inputs(width: int, params: tuple[Any, ...], stamps: np.ndarray, xs: np.ndarray) -> tuple[Any, ...]:
    return np.zeros(width), *params, stamps, xs


def export(built: Any, fn: Callable[..., Any]) -> Callable[..., Any]:
    compiled: Callable[..., Any] = getattr(built, _aot.symbol(fn))
    return compiled


if __name__ == "__main__":
    main()
