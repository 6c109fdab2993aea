"""What a first tick over many new series costs when it overruns its check's timeout, in-process.

    .venv/bin/python benchmarks/first_tick.py --series 10000 --timeout 0.25
    .venv/bin/python benchmarks/first_tick.py --tree /tmp/main    # the same, also from another source tree
    .venv/bin/python benchmarks/first_tick.py --evaluate --tree /tmp/main    # the detector's first evaluation

A real ``push`` source and the real ``default`` detector on a real SQLite store (the daemon's
``CheckRunner``): every series gets one new point per simulated 10 s tick, and the check's timeout is set
below what its first tick takes, as on a loaded machine. Printed per tree: the ticks run until the first
one that ended ``ok``, how many timed out in all, the ticks that ended ``ok`` out of ``--ticks``, the
process CPU time of all the ticks, the peak RSS, and how the abandoned runs were recovered (from the
runner's log: detectors kept their finished parts / restored from the checkpoint / only the source
rewound, i.e. abandoned while collecting). Each tree runs in its own fresh interpreter (so the RSS is its
own), both at the same time (so both see the same machine load); the ratios are this tree over ``--tree``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from scale_replicas import tree_path  # a sibling script, not a package

ROOT = Path(__file__).resolve().parent.parent
EVERY = 10.0

CONFIG = """
checks:
  - name: fleet
    every: 10s
    timeout: {timeout}s
    source: {{type: push, stream: fleet, store_url: "{url}"}}
    detectors: [{{type: default}}]
    policy: {{}}
"""


def evaluate_only(series: int) -> dict[str, float]:
    """The detector alone: CPU of ``default``'s first evaluation of ``series`` new series, then of the next."""
    from aiops_detectors.anomaly.ensemble import DefaultDetector

    from aiops.types import Frame, Series

    def frame(t: float) -> Frame:
        points = (Series("m", (t,), (10.0 + (i % 7) * 0.1,), labels={"i": str(i)}) for i in range(series))
        return Frame(source="bench", collected_at=t, series=tuple(points))

    detector = DefaultDetector()
    detector.warm_up()
    first, second = frame(1_000.0), frame(1_010.0)
    started = time.process_time()
    detector.evaluate(first)
    middle = time.process_time()
    detector.evaluate(second)
    return {
        "first_s": middle - started,
        "next_s": time.process_time() - middle,
        "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def child(series: int, ticks: int, timeout: float, workdir: Path) -> dict[str, float]:
    """One tree's run (imports whatever ``aiops`` the interpreter finds first)."""
    from aiops.config.loader import parse_config
    from aiops.engine.checks import CheckRunner
    from aiops.engine.runtime import build_runtime
    from aiops.store.records import EventKind, PushedEvent
    from aiops.store.store import Store

    url = f"sqlite:///{workdir / 'first_tick.db'}"
    store = Store(url)
    store.migrate()
    config = parse_config(CONFIG.format(timeout=timeout, url=url), "bench.yaml", env={})
    runner = CheckRunner(build_runtime(config).checks["fleet"], store, checkpoint_every=60.0)
    first_ok, timeouts, ok = -1, 0, 0
    cpu = 0.0
    for tick in range(ticks):
        now = 1_000.0 + EVERY * tick
        store.append_events(
            [
                PushedEvent("fleet", EventKind.POINT, "m", now, 10.0 + (i % 7) * 0.1, labels={"i": str(i)})
                for i in range(series)
            ],
            now,
        )
        started = time.process_time()
        outcome = runner.tick(now + 0.5).outcome
        cpu += time.process_time() - started
        timeouts += outcome == "timeout"
        if outcome == "ok":
            ok += 1
            if first_ok < 0:
                first_ok = tick
        time.sleep(0.2)  # an abandoned run may still be finishing (as between two ticks of a daemon)
    return {
        "first_ok": first_ok,
        "timeouts": timeouts,
        "ok": ok,
        "cpu_s": cpu,
        "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def run_tree(tree: Path | None, args: argparse.Namespace) -> dict[str, float]:
    env = {**os.environ, **tree_path(tree)}
    with tempfile.TemporaryDirectory(prefix="aiops-first-tick-") as tmp:
        argv = [sys.executable, __file__, "--child", tmp, "--series", str(args.series)]
        argv += ["--ticks", str(args.ticks), "--timeout", str(args.timeout)] + (["--evaluate"] if args.evaluate else [])
        out = subprocess.run(argv, env=env, cwd=tmp, capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise SystemExit(f"the run failed:\n{out.stderr[-3000:]}")
    result: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
    if args.evaluate:
        return result
    # how each abandoned run was recovered, from the runner's log lines
    log = out.stdout + out.stderr
    result["kept"] = log.count("its detectors keep what it finished")
    result["restored"] = log.count("check restored from its last checkpoint")
    result["rewound"] = log.count("check source rewound after an abandoned run") - result["kept"]
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--series", type=int, default=10_000)
    parser.add_argument("--ticks", type=int, default=8, help="simulated 10 s ticks, each with a new point per series")
    parser.add_argument("--timeout", type=float, default=0.25, help="the check's timeout in seconds")
    parser.add_argument("--tree", type=Path, help="also run from this source tree (before/after)")
    parser.add_argument("--evaluate", action="store_true", help="instead: the detector's first evaluation alone")
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        out = evaluate_only(args.series) if args.evaluate else child(args.series, args.ticks, args.timeout, args.child)
        print(json.dumps(out))
        return
    trees = {"this": None, **({"tree": args.tree} if args.tree is not None else {})}
    if args.evaluate:
        print(f"default, first evaluation of {args.series} new series (CPU s); load {os.getloadavg()[0]:.1f}")
        print(f"{'tree':<8}{'first s':>10}{'next s':>10}{'RSS MB':>10}")
        evaluated = {name: run_tree(tree, args) for name, tree in trees.items()}  # one at a time: CPU time
        for name, r in evaluated.items():
            print(f"{name:<8}{r['first_s']:>10.3f}{r['next_s']:>10.3f}{r['rss_mb']:>10.0f}")
        if "tree" in evaluated:
            print(f"{'ratio':<8}{evaluated['this']['first_s'] / evaluated['tree']['first_s']:>10.2f}")
        return
    print(f"{args.series} series, {args.ticks} ticks, timeout {args.timeout:g}s; load {os.getloadavg()[0]:.1f}")
    heads = ("first ok", "timeouts", "ok", "CPU s", "RSS MB", "kept", "restored", "rewound")
    print(f"{'tree':<8}" + "".join(f"{h:>10}" for h in heads))
    with ThreadPoolExecutor(len(trees)) as pool:
        futures = {name: pool.submit(run_tree, tree, args) for name, tree in trees.items()}
    results = {name: future.result() for name, future in futures.items()}
    for name, r in results.items():
        print(
            f"{name:<8}{r['first_ok']:>10.0f}{r['timeouts']:>10.0f}{r['ok']:>10.0f}{r['cpu_s']:>10.2f}{r['rss_mb']:>10.0f}"
            f"{r['kept']:>10.0f}{r['restored']:>10.0f}{r['rewound']:>10.0f}"
        )
    if "tree" in results:
        this, tree = results["this"], results["tree"]
        print(f"{'ratio':<8}{'':>30}{this['cpu_s'] / tree['cpu_s']:>10.2f}{this['rss_mb'] / tree['rss_mb']:>10.2f}")
    print(f"load {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
