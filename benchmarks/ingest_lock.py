"""How long an ingest write waits for SQLite's write lock while a checkpoint round writes detector state:
this tree against another tree, both running at the same time (so under the same machine load).

    git archive <commit> | tar -x -C /tmp/base
    .venv/bin/python benchmarks/ingest_lock.py --tree /tmp/base --seconds 30

Each tree runs in its own interpreter (``PYTHONPATH``) with a real SQLite store and two threads, as in the
daemon: a checkpoint writer that saves ``default``-sized states (217 KB each) back to back for 2.5 s out of
every 5 s (a quarter of a 10 s interval, the most a round writes per tick), and an ingest writer appending
1 000-point batches every 50 ms through ``Store.append_events``. Reported: the append latency (p50, p99,
max) and the WAL's size at the end. A baseline with no checkpoint writer at all runs in the same invocation
first, as the floor set by the machine.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

CHILD = r"""
import json, os, sys, tempfile, threading, time
import numpy as np
from aiops.store.checkpoints import SeriesBlob
from aiops.store.records import EventKind, PushedEvent
from aiops.store.store import Store

seconds, with_writer = float(sys.argv[1]), sys.argv[2] == "1"
sys.setswitchinterval(0.001)  # as the daemon sets it
tmp = tempfile.mkdtemp()
store = Store(f"sqlite:///{tmp}/s.db")
store.migrate()
state = np.random.default_rng(0).random(217_000 // 8).tobytes()
rows = [PushedEvent("s", EventKind.POINT, "m", 1.0 + i, 10.0, {"i": str(i)}, {}) for i in range(1000)]
stop = threading.Event()

def checkpoints():
    n = 0
    while not stop.is_set():
        until = time.monotonic() + 2.5
        while time.monotonic() < until and not stop.is_set():
            store.save_checkpoint("c", [SeriesBlob("d", f"s{(n + k) % 10000}", state) for k in range(32)], None, 1.0)
            n += 32
        stop.wait(2.5)

if with_writer:
    threading.Thread(target=checkpoints, daemon=True).start()
time.sleep(0.5)
latencies = []
end = time.monotonic() + seconds
while time.monotonic() < end:
    t0 = time.perf_counter()
    store.append_events(rows, 5.0)
    latencies.append(time.perf_counter() - t0)
    time.sleep(0.05)
stop.set()
wal = os.path.getsize(f"{tmp}/s.db-wal") if os.path.exists(f"{tmp}/s.db-wal") else 0
print(json.dumps({"latencies": latencies, "wal": wal}))
"""


def start(tree: Path | None, seconds: float, with_writer: bool) -> subprocess.Popen[str]:
    env = dict(os.environ)
    if tree is not None:
        env["PYTHONPATH"] = os.pathsep.join(str(p) for p in [tree, *(q.parent for q in tree.glob("*/pyproject.toml"))])
    return subprocess.Popen(  # cwd "/": with ``-c`` the working directory comes first on sys.path
        [sys.executable, "-c", CHILD, str(seconds), "1" if with_writer else "0"],
        env=env,
        cwd="/",
        stdout=subprocess.PIPE,
        text=True,
    )


def report(name: str, proc: subprocess.Popen[str]) -> float:
    out, _ = proc.communicate()
    result = json.loads(out.strip().splitlines()[-1])
    lat = sorted(result["latencies"])
    p99 = 1000 * lat[min(len(lat) - 1, int(len(lat) * 0.99))]
    print(
        f"{name:<28}{len(lat):>6}{1000 * lat[len(lat) // 2]:>9.1f}{p99:>9.1f}{1000 * lat[-1]:>9.1f}"
        f"{result['wal'] / 1e6:>9.0f}{os.getloadavg()[0]:>7.1f}",
        flush=True,
    )
    return p99


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tree", type=Path, required=True, help="the other source tree (the baseline)")
    parser.add_argument("--seconds", type=float, default=30.0)
    args = parser.parse_args()
    print(f"{'run':<28}{'n':>6}{'p50 ms':>9}{'p99 ms':>9}{'max ms':>9}{'WAL MB':>9}{'load':>7}")
    floor = start(None, args.seconds / 2, with_writer=False)
    report("this, no checkpoint writer", floor)
    both = [start(None, args.seconds, with_writer=True), start(args.tree, args.seconds, with_writer=True)]
    this = report("this, checkpoints", both[0])
    tree = report("tree, checkpoints", both[1])
    print(f"{'p99 this/tree':<28}{'':>24}{this / tree:>9.2f}")


if __name__ == "__main__":
    main()
