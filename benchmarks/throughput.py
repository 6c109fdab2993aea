"""Speed of the metric detectors, as ratios against a numpy z-score baseline measured in the same run.

    .venv/bin/python benchmarks/throughput.py                 # every metric detector
    .venv/bin/python benchmarks/throughput.py --series 10000 --points 20000 --warm 5000
    .venv/bin/python benchmarks/throughput.py --detectors default --clock cpu   # on a busy machine
    AIOPS_KERNELS=jit .venv/bin/python benchmarks/throughput.py --clock cpu   # the JIT instead of the built kernels

Three figures per detector: points/s streaming one series (``update`` per point), points/s through the
batch path (``score`` if the scorer has one, else the same loop), and the wall time of one tick over many
series: a frame with one new point per series through ``detector.evaluate``, exactly what the daemon runs
every interval (findings included). A detector listed in ``HEAVY`` is ticked over fewer series and its
10 000-series time extrapolated linearly (marked ``~``); none is, since ``knn`` and ``default`` are compiled.

``--clock cpu`` times everything, the baseline included, in this process's CPU time instead of wall time:
on a machine shared with other jobs the wall clock also counts the time spent waiting for a core.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from typing import Any

import numpy as np

from aiops.commands.detect import build_detector
from aiops.detection import batch_score
from aiops.types import Frame, Series

DETECTORS = ["threshold", "robust_zscore", "ewma", "holt_winters", "cusum", "bocpd", "knn", "default"]
PARAMS: dict[str, dict[str, Any]] = {"threshold": {"above": 3.0}}
HEAVY: dict[str, int] = {}  # detector -> series ticked instead of --series (extrapolated, marked ~)
CLOCKS = {"wall": time.perf_counter, "cpu": time.process_time}


def make_series(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    t = 300.0 * np.arange(n) + 1.4e9
    v = np.sin(2 * np.pi * np.arange(n) / 288) + rng.normal(0, 0.3, n)
    return t, v


def numpy_zscore(values: np.ndarray, window: int = 500) -> np.ndarray:
    c1 = np.concatenate([[0.0], np.cumsum(values)])
    c2 = np.concatenate([[0.0], np.cumsum(values * values)])
    idx = np.arange(len(values))
    lo = np.maximum(0, idx - window)
    n = np.maximum(idx - lo, 1)
    mean = (c1[idx] - c1[lo]) / n
    sd = np.sqrt(np.maximum((c2[idx] - c2[lo]) / n - mean * mean, 1e-12))
    z = np.abs(values - mean) / sd
    return z / (1.0 + z)


def best_of(fn: Any, repeat: int = 3, clock: Any = time.perf_counter) -> float:
    best = math.inf
    for _ in range(repeat):
        t0 = clock()
        fn()
        best = min(best, clock() - t0)
    return best


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="metric detector throughput")
    ap.add_argument("--points", type=int, default=20_000, help="points in the single series")
    ap.add_argument("--series", type=int, default=10_000, help="series in one tick")
    ap.add_argument("--warm", type=int, default=5000, help="points behind each series' state before the tick")
    ap.add_argument("--detectors", nargs="*", default=DETECTORS)
    ap.add_argument("--clock", choices=sorted(CLOCKS), default="wall", help="wall time, or this process's CPU time")
    args = ap.parse_args(argv)
    clock = CLOCKS[args.clock]

    t, v = make_series(args.points)
    base_batch = args.points / best_of(lambda: numpy_zscore(v), clock=clock)
    # tick baseline: one vectorised z-score update across all series (running mean/var arrays)
    mean, var = np.zeros(args.series), np.ones(args.series)
    x = np.random.default_rng(1).normal(size=args.series)

    def base_tick() -> None:
        nonlocal mean, var
        z = np.abs(x - mean) / np.sqrt(var)
        _ = z / (1.0 + z)
        d = x - mean
        mean = mean + 0.01 * d
        var = 0.99 * var + 0.01 * d * d

    base_tick_s = best_of(base_tick, 5, clock)
    print(f"clock: {args.clock}")
    print(
        f"baseline numpy z-score: batch {base_batch:,.0f} points/s; tick over {args.series} series "
        f"{1e3 * base_tick_s:.3f} ms"
    )
    head = (
        f"{'detector':<15}{'stream pts/s':>14}{'x base':>9}{'batch pts/s':>14}{'x base':>9}"
        f"{'tick ' + str(args.series) + ' series':>22}{'x base':>9}"
    )
    print(head)
    print("-" * len(head))
    for name in args.detectors:
        det = build_detector(name, PARAMS.get(name, {}))
        n = args.points if name not in HEAVY else min(args.points, 5000)
        # compiled paths are compiled (or loaded from numba's disk cache) outside the timing
        batch_score(det.new_scorer(), t[:2000], v[:2000])
        tt, vv = t[:n], v[:n]

        def streaming(det: Any = det, tt: np.ndarray = tt, vv: np.ndarray = vv) -> None:
            s = det.new_scorer()
            upd = s.update
            for a, b in zip(tt.tolist(), vv.tolist(), strict=True):
                upd(a, b)

        stream_pps = n / best_of(streaming, 1 if name in HEAVY else 3, clock)
        batch_pps = n / best_of(lambda det=det, tt=tt, vv=vv: batch_score(det.new_scorer(), tt, vv), 1, clock)
        n_series = min(args.series, HEAVY.get(name, args.series))
        live = build_detector(name, PARAMS.get(name, {}))
        offsets = 1e-4 * np.arange(n_series)  # small: a threshold of 3 must not fire on every series

        def frame_at(k: int, n_series: int = n_series, offsets: np.ndarray = offsets) -> Frame:
            now, vals = float(t[k]), (v[k] + offsets).tolist()
            return Frame("bench", now, tuple(Series("m", (now,), (x,), {"id": str(i)}) for i, x in enumerate(vals)))

        # every series starts from the state of one scorer warmed on --warm points (memories full), as after
        # a restart; then ticks go through the detector exactly as in the daemon
        warmed = det.new_scorer()
        for a, b in zip(t[: args.warm].tolist(), v[: args.warm].tolist(), strict=True):
            warmed.update(a, b)
        state = warmed.state_dict()
        keys = [Series("m", (), (), {"id": str(i)}).key for i in range(n_series)]
        live.load_state_dict(
            {"series": dict.fromkeys(keys, state), "last_ts": dict.fromkeys(keys, float(t[args.warm - 1]))}
        )
        frames = [frame_at(args.warm + k) for k in range(3)]  # built outside the timing, as a source would
        times = []
        for frame in frames:
            t0 = clock()
            live.evaluate(frame)
            times.append(clock() - t0)
        tick_s = min(times) * (args.series / n_series)
        mark = "~" if n_series < args.series else " "
        print(
            f"{name:<15}{stream_pps:>14,.0f}{stream_pps / base_batch:>9.4f}{batch_pps:>14,.0f}"
            f"{batch_pps / base_batch:>9.4f}{mark + format(1e3 * tick_s, ',.1f') + ' ms':>22}"
            f"{tick_s / base_tick_s:>9.0f}",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
