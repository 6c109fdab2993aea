"""Backtest speed: 30 days of one-minute data for 100 series, replayed through the real engine.

Baseline, measured in the same run: the same detector scoring the same points in one batch (one
``evaluate`` over the whole history, no engine, no ticks). The ratio is what the replay costs on top of the
scoring itself (ticks, slicing, incidents, policy, store). Target: the replay under 60 s on one core.

    .venv/bin/python benchmarks/backtest.py [--days 30] [--series 100]
"""

from __future__ import annotations

import argparse
import math
import random
import tempfile
import time
from pathlib import Path

from aiops import plugins
from aiops.backtest.simulate import simulate
from aiops.config.loader import load_config
from aiops.logs import configure_logging
from aiops.replay import SeriesReplay
from aiops.types import Frame, Series

T0 = 1_700_000_000.0
CONFIG = """
checks:
  - name: fleet
    every: 60s
    source: {type: prometheus, url: "http://127.0.0.1:1", query: model_latency}
    detectors: [{type: threshold, above: 150}]
    policy:
      for: 3m
      cooldown: 30m
      actions: [{type: command, argv: ["true"]}]
"""


def history(days: int, n_series: int) -> list[Series]:
    rng = random.Random(7)
    points = days * 1440
    ts = [T0 + 60.0 * (k + 1) for k in range(points)]
    out = []
    for i in range(n_series):
        values = [100 + 10 * math.sin(k / 240) + rng.gauss(0, 2) for k in range(points)]
        for start in rng.sample(range(points - 30), 3):  # three 20-minute outages per series
            values[start : start + 20] = [v + 80 for v in values[start : start + 20]]
        out.append(Series("model_latency", ts, values, {"replica": f"r{i}"}))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--series", type=int, default=100)
    args = parser.parse_args()
    configure_logging("error")
    series = history(args.days, args.series)
    points = sum(len(s) for s in series)

    detector = plugins.build(plugins.DETECTORS, "threshold", {"above": 150})
    started, cpu = time.perf_counter(), time.process_time()
    detector.evaluate(Frame(source="bench", collected_at=T0, series=tuple(series)))
    batch, batch_cpu = time.perf_counter() - started, time.process_time() - cpu

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "aiops.yaml"
        path.write_text(CONFIG)
        config = load_config(path)
        replay = SeriesReplay("prometheus", series, first_window=60.0)
        until = T0 + args.days * 86400.0
        started, cpu = time.perf_counter(), time.process_time()
        result = simulate(config, T0, until, replays={"fleet": replay})
        replayed, replayed_cpu = time.perf_counter() - started, time.process_time() - cpu

    print(f"{args.series} series x {args.days} days of one-minute data = {points:,} points, {result.ticks:,} ticks")
    print(f"batch scoring alone (baseline): {batch:.2f} s wall, {batch_cpu:.2f} s CPU")
    print(
        f"backtest (engine, policy, store): {replayed:.2f} s wall, {replayed_cpu:.2f} s CPU "
        f"({len(result.incidents)} would-be incidents, "
        f"{sum(len(i.actions) for i in result.incidents)} actions)"
    )
    print(
        f"ratio backtest / batch scoring (CPU): {replayed_cpu / batch_cpu:.1f}x; "
        f"target < 60 s of one core: {'met' if replayed_cpu < 60 else 'MISSED'}"
    )


if __name__ == "__main__":
    main()
