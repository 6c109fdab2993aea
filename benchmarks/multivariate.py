"""Correlated failures across a service's metrics: one page per incident, and the ones no metric shows alone.

    .venv/bin/python benchmarks/multivariate.py                 # ~1 min: 24 services x 5 metrics x 6000 points

There is no public labelled multi-metric operations set here, so the services are simulated, with the
structure real ones have: qps, latency, errors, CPU and queue depth all driven by one daily load curve
(5-minute points) plus an AR(1) load wobble, so the metrics are correlated in normal operation too. Each
service gets four incidents after a 2500-point learning period (labels are used for scoring only):

* **correlated**: latency, errors and CPU shift together for 20-60 points, each by 1.2-2.4 of its own
  noise sd (``--scale`` multiplies) -- a slow dependency, where no single metric is dramatic;
* **single**: latency alone shifts by ~3-6 sd -- one metric, one clear problem.

Scored per incident window (onset to 24 points after the end): detected or not, and pages (alert points)
inside it; false pages are alerts outside every window after point 1000, per service-week. Three
configurations, all with `default`'s defaults: `default` on every metric separately (what a per-series
check pages), `multivariate` with ``joint: false`` (the max of the metrics' surprises, one debounce), and
`multivariate` (plus the joint component on the summed surprises).
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

import numpy as np
from aiops_detectors.anomaly.ensemble import DefaultScorer
from aiops_detectors.anomaly.multivariate import MultivariateParams, MultivariateScorer

POINTS_PER_WEEK = 7 * 288


def simulate(
    rng: np.random.Generator, n: int, scale: float
) -> tuple[dict[str, np.ndarray], list[tuple[str, int, int]]]:
    t = np.arange(n)
    wobble = np.zeros(n)
    e = rng.normal(0, 1, n)
    for i in range(1, n):
        wobble[i] = 0.97 * wobble[i - 1] + 0.25 * e[i]
    load = 1 + 0.4 * np.sin(2 * np.pi * t / 288) + 0.1 * wobble
    metrics = {
        "qps": 100 * load + rng.normal(0, 4, n),
        "latency": 40 + 15 * load + rng.normal(0, 2, n),
        "errors": rng.poisson(2 + load).astype(float),
        "cpu": 20 + 30 * load + rng.normal(0, 3, n),
        "queue": np.abs(rng.normal(0, 1, n)).cumsum() % 7,
    }
    incidents = []
    starts = rng.choice(np.arange(2500, n - 200, 400), 4, replace=False)
    for k, start in enumerate(sorted(starts.tolist())):
        kind = "correlated" if k % 2 == 0 else "single"
        dur, mag = int(rng.integers(20, 60)), scale * float(rng.uniform(0.6, 1.2))
        cut = slice(start, start + dur)
        if kind == "correlated":
            metrics["latency"][cut] += mag * 2 * 2.0
            metrics["errors"][cut] += mag * 1.5 * 1.6
            metrics["cpu"][cut] += mag * 3 * 2.0
        else:
            metrics["latency"][cut] += mag * 2 * 5.0
        incidents.append((kind, start, start + dur + 24))
    return metrics, incidents


def alerts_per_metric(metrics: dict[str, np.ndarray], ts: np.ndarray) -> list[int]:
    # the per-metric pipeline as the vector's members run it (Gaussian likelihood, level 0.6)
    per_metric = MultivariateParams()
    return [int(i) for v in metrics.values() for i in np.flatnonzero(DefaultScorer(per_metric).score(ts, v) >= 0.6)]


def alerts_vector(metrics: dict[str, np.ndarray], ts: np.ndarray, joint: bool) -> list[int]:
    scorer = MultivariateScorer(MultivariateParams(joint=joint))
    names = list(metrics)
    columns = [metrics[k].tolist() for k in names]
    out = []
    for i, t in enumerate(ts.tolist()):
        if scorer.update(t, {k: col[i] for k, col in zip(names, columns, strict=True)}) >= 0.6:
            out.append(i)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--services", type=int, default=24)
    ap.add_argument("--points", type=int, default=6000)
    ap.add_argument("--scale", type=float, nargs="*", default=[1.0, 2.0])
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    methods = {
        "default, each metric alone": lambda m, ts: alerts_per_metric(m, ts),
        "multivariate, joint off (max)": lambda m, ts: alerts_vector(m, ts, joint=False),
        "multivariate (default: + joint)": lambda m, ts: alerts_vector(m, ts, joint=True),
    }
    print(
        "| incident size | configuration | correlated found | single found | pages per found incident "
        "| false pages per service-week | CPU µs per service-point |"
    )
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: |")
    for scale in args.scale:
        rng = np.random.default_rng(args.seed)
        cases = [simulate(rng, args.points, scale) for _ in range(args.services)]
        ts = 300.0 * np.arange(args.points)
        for name, method in methods.items():
            tally: dict[str, Any] = {"correlated": 0, "single": 0, "pages": 0, "found": 0, "false": 0}
            cpu = time.process_time()
            for metrics, incidents in cases:
                alerts = method(metrics, ts)
                for kind, lo, hi in incidents:
                    hits = [a for a in alerts if lo <= a < hi]
                    tally[kind] += bool(hits)
                    tally["found"] += bool(hits)
                    tally["pages"] += len(hits)
                tally["false"] += sum(
                    1 for a in alerts if a >= 1000 and not any(lo <= a < hi for _, lo, hi in incidents)
                )
            cpu = time.process_time() - cpu
            per_kind = 2 * args.services
            weeks = args.services * (args.points - 1000) / POINTS_PER_WEEK
            print(
                f"| x{scale:g} | {name} | {tally['correlated']}/{per_kind} | {tally['single']}/{per_kind} "
                f"| {tally['pages'] / max(tally['found'], 1):.2f} | {tally['false'] / weeks:.2f} "
                f"| {1e6 * cpu / (args.services * args.points):.1f} |",
                flush=True,
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
