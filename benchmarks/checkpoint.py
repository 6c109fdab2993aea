"""Saving and restoring ``default`` detector state: binary checkpoints against the JSON state of before.

    .venv/bin/python benchmarks/checkpoint.py --series 10000          # binary at 10 000 series
    .venv/bin/python benchmarks/checkpoint.py --series 1000 --json 1000

Both run in the same invocation on a SQLite file: the binary checkpoint (``aiops.engine.checkpointing``:
one row per series, raw ``float64`` arrays) over ``--series`` warmed series, and the JSON baseline (the
whole detector state as one JSON document in ``aiops_check_state``, as every tick saved it before) over
``--json`` series, scaled to ``--series`` per series (marked ``~``) because at 10 000 series it would
take minutes. Figures: bytes per series, save and load wall time. A series fed fewer points than the
likelihood history holds writes shorter JSON numbers (``0.0``) than a warmed one (~556 KB), so the JSON
series get ``--json-points``; the size of a binary state does not depend on it.
"""

from __future__ import annotations

import argparse
import json
import math
import resource
import tempfile
import time
from pathlib import Path

from aiops_detectors.anomaly.ensemble import DefaultDetector

from aiops.engine.checkpointing import Checkpointer
from aiops.store.checkpoints import Cursor
from aiops.store.store import Store
from aiops.types import Frame, Series, json_safe


def warmed(n: int, points: int) -> DefaultDetector:
    det = DefaultDetector()
    for t in range(points):
        det.evaluate(
            Frame(
                source="bench",
                collected_at=float(t),
                series=tuple(
                    Series("m", (float(t),), (10.0 + math.sin(t / 9.0 + i),), {"i": str(i)}) for i in range(n)
                ),
            )
        )
    return det


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--series", type=int, default=10_000)
    parser.add_argument("--json", type=int, default=200, help="series in the JSON baseline (scaled up)")
    parser.add_argument("--points", type=int, default=300, help="points fed to each binary series before saving")
    parser.add_argument("--json-points", type=int, default=2500, help="points fed to each JSON series (warmed)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="aiops-ckpt-") as tmp:
        store = Store(f"sqlite:///{Path(tmp) / 'bench.db'}")
        store.migrate()

        det = warmed(args.json, args.json_points)
        started = time.perf_counter()
        store.save_check_state("json", float(args.points), {"default": det.state_dict()}, {}, 0.0)
        json_save = time.perf_counter() - started
        started = time.perf_counter()
        row = store.load_check_state("json")
        assert row is not None
        DefaultDetector().load_state_dict(row.detector_state["default"])  # type: ignore[arg-type]
        json_load = time.perf_counter() - started
        json_bytes = len(json.dumps(json_safe(det.state_dict()))) / args.json
        del det, row

        det = warmed(args.series, args.points)
        saver = Checkpointer("binary", store, every=0.0)
        started = time.perf_counter()
        saver.flush(0.0, Cursor(float(args.points), {}), {"default": det}, deadline=time.monotonic() + 3600)
        bin_save = time.perf_counter() - started
        del det, saver
        fresh = DefaultDetector()
        started = time.perf_counter()
        loaded = Checkpointer("binary", store, every=0.0).load({"default": fresh})
        bin_load = time.perf_counter() - started
        assert loaded == args.series
        bin_bytes = sum(len(b.state) for b in store.iter_checkpoint("binary")) / args.series
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    scale = args.series / args.json
    approx = "~" if scale != 1 else ""
    print(f"binary: {args.series} series x {args.points} points; JSON: {args.json} series x {args.json_points} points")
    print(f"{'':<10}{'KB/series':>10}{'save s':>10}{'load s':>10}")
    print(
        f"{'json':<10}{json_bytes / 1024:>10.0f}{approx + f'{json_save * scale:.1f}':>10}"
        f"{approx + f'{json_load * scale:.1f}':>10}"
    )
    print(f"{'binary':<10}{bin_bytes / 1024:>10.0f}{bin_save:>10.1f}{bin_load:>10.1f}")
    print(
        f"{'ratio':<10}{json_bytes / bin_bytes:>10.1f}{json_save * scale / bin_save:>10.1f}"
        f"{json_load * scale / bin_load:>10.1f}"
    )
    print(f"peak RSS {peak:.0f} MB")


if __name__ == "__main__":
    main()
