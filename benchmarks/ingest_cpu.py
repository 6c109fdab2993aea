"""CPU time of one ``POST /api/v1/ingest`` of 1 000 points on the daemon's side: JSON guard, schema,
rows, and the SQLite insert, this tree against another tree in the same invocation; and, not in the total,
the CPU of the other side: a push check's tick reading 10 000 stored rows (one per series).

    .venv/bin/python benchmarks/ingest_cpu.py --tree /tmp/base      # e.g. ``git archive`` of main unpacked

Why CPU time and not latency: on a shared machine, wall-clock latency is mostly the OS's scheduling
delays (``benchmarks/scale.py`` shows them on ``/livez``, which does no work); the CPU a request costs is
what the daemon controls, and it is what a busy machine multiplies. Each tree runs in its own interpreter
(``PYTHONPATH``), alternating, several rounds; the median per request is reported.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

CHILD = r"""
import json, sys, tempfile, time
from aiops.http.jsonbody import parse_object
from aiops.sources.ingest import ingest_rows, validate_ingest
from aiops.store.store import Store

requests_, points = int(sys.argv[1]), int(sys.argv[2])
now = time.time()
body = json.dumps({"stream": "s", "points": [
    {"name": "m", "labels": {"i": str(i)}, "value": 10.0 + (i % 7) / 3, "timestamp": now} for i in range(points)
]}).encode()
with tempfile.TemporaryDirectory() as tmp:
    store = Store(f"sqlite:///{tmp}/s.db")
    store.migrate()
    costs = {"parse": [], "validate": [], "store": [], "total": []}
    for _ in range(requests_):
        t0 = time.thread_time()
        data = parse_object(body)
        t1 = time.thread_time()
        rows = ingest_rows(validate_ingest(data), now)
        t2 = time.thread_time()
        store.append_events(rows, now)
        t3 = time.thread_time()
        for key, value in (("parse", t1 - t0), ("validate", t2 - t1), ("store", t3 - t2), ("total", t3 - t0)):
            costs[key].append(value)
    # the other side of the same rows: a push check's tick reading the newest 10 000 (one per series)
    stored = store.read_events("s", 0, 1_000_000)
    newest = stored[-min(10_000, len(stored))]
    costs["tick read"] = []
    for _ in range(max(3, requests_ // 4)):
        t0 = time.thread_time()
        store.read_events("s", newest.id - 1, 10_000)
        costs["tick read"].append(time.thread_time() - t0)
    print(json.dumps(costs))
"""


def measure(tree: Path | None, requests: int, points: int) -> dict[str, list[float]]:
    env = dict(os.environ)
    if tree is not None:
        env["PYTHONPATH"] = os.pathsep.join(str(p) for p in [tree, *(q.parent for q in tree.glob("*/pyproject.toml"))])
    out = subprocess.run(  # cwd "/": with ``-c`` the working directory comes first on sys.path
        [sys.executable, "-c", CHILD, str(requests), str(points)],
        env=env,
        cwd="/",
        check=True,
        capture_output=True,
        text=True,
    )
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tree", type=Path, required=True, help="the other source tree (the baseline)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--requests", type=int, default=40)
    parser.add_argument("--points", type=int, default=1000)
    args = parser.parse_args()
    samples: dict[str, dict[str, list[float]]] = {"this": {}, "tree": {}}
    for _ in range(args.rounds):  # alternate, so a change in machine load hits both
        for name, tree in (("this", None), ("tree", args.tree)):
            for key, values in measure(tree, args.requests, args.points).items():
                samples[name].setdefault(key, []).extend(values[2:])  # the first requests warm caches
    print(f"{args.points} points per request, {args.rounds} x {args.requests} requests per tree; median CPU ms")
    print(f"{'step':<10}{'tree':>10}{'this':>10}{'ratio':>8}")
    for key in ("parse", "validate", "store", "total", "tick read"):
        before = 1000 * statistics.median(samples["tree"][key])
        after = 1000 * statistics.median(samples["this"][key])
        print(f"{key:<10}{before:>10.2f}{after:>10.2f}{after / before:>8.2f}")


if __name__ == "__main__":
    main()
