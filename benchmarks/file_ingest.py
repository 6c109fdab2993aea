"""Cost of reading a growing CSV / JSON Lines log with the ``table`` source: the first read and an incremental
tick, as rows/s and as ratios against baselines measured in the same run.

    .venv/bin/python benchmarks/file_ingest.py                          # 10 M-row CSV, 2 M-row JSONL
    .venv/bin/python benchmarks/file_ingest.py --rows 1000000 --jsonl-rows 200000 --append 50000

The logs are generated under /tmp (deleted afterwards, never committed). Baselines: ``pandas.read_csv`` /
``pandas.read_json(lines=True)`` of exactly the same bytes (the whole file for the first read, only the
appended bytes for the tick), and for the tick also pandas re-parsing the whole grown file (what a source
without offsets pays every tick). The claim to check: an incremental tick costs time proportional to the new rows
only, i.e. tick time / first-read time is close to appended rows / total rows.
"""

from __future__ import annotations

import argparse
import io
import os
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pa_csv

from aiops.sources.table import TableSource


def make_table(n: int, start: int, seed: int) -> pa.Table:
    rng = np.random.default_rng(seed)
    ids = np.arange(start, start + n, dtype=np.int64)
    return pa.table(
        {
            "ts": 1.7e9 + ids * 0.01,
            "id": ids,
            "model": pa.array(np.array(["ranker", "scorer", "tagger"])[rng.integers(0, 3, n)]),
            "latency_ms": np.round(rng.gamma(2.0, 15.0, n), 3),
            "score": np.round(rng.random(n), 4),
        }
    )


def write(path: Path, fmt: str, n: int, start: int, seed: int, chunk: int = 1_000_000) -> None:
    with path.open("ab") as out:
        for offset in range(0, n, chunk):
            table = make_table(min(chunk, n - offset), start + offset, seed + offset)
            if fmt == "csv":
                buf = io.BytesIO()
                header = start == 0 and offset == 0
                pa_csv.write_csv(table, buf, pa_csv.WriteOptions(include_header=header, quoting_style="none"))
                out.write(buf.getvalue())
            else:
                out.write(table.to_pandas().to_json(orient="records", lines=True).encode())


def baseline(fmt: str, data: bytes, header: bytes) -> float:
    started = time.perf_counter()
    if fmt == "csv":
        pd.read_csv(io.BytesIO(data if data.startswith(header) else header + data))
    else:
        pd.read_json(io.BytesIO(data), lines=True)
    return time.perf_counter() - started


def run(fmt: str, rows: int, append: int, workdir: Path) -> dict[str, float]:
    path = workdir / f"log.{fmt}"
    write(path, fmt, rows, 0, 1)
    size = path.stat().st_size
    source = TableSource(path=str(path), timestamp_column="ts", max_rows=100_000)
    started = time.perf_counter()
    frame = source.collect(None, 2e9)
    first = time.perf_counter() - started
    assert frame.series[0].values[0] == rows and len(frame.rows) == min(rows, 100_000), "first read lost rows"
    assert frame.problems == (), frame.problems
    data = path.read_bytes()
    header = data[: data.index(b"\n") + 1]
    base_first = baseline(fmt, data, header)
    del data
    write(path, fmt, append, rows, 2)
    with path.open("rb") as fh:
        fh.seek(size)
        appended = fh.read()
    started = time.perf_counter()
    frame = source.collect(2e9, 2e9 + 1)
    tick = time.perf_counter() - started
    assert frame.series[0].values[0] == append, "incremental tick read the wrong number of rows"
    base_tick = baseline(fmt, appended, header)
    # What a source without offsets does every tick: parse the whole (grown) file again.
    naive_tick = baseline(fmt, path.read_bytes(), header)
    return {
        "rows": rows,
        "bytes": size,
        "append": append,
        "first_s": first,
        "first_rows_s": rows / first,
        "base_first_s": base_first,
        "tick_s": tick,
        "tick_rows_s": append / tick,
        "base_tick_s": base_tick,
        "naive_tick_s": naive_tick,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=10_000_000, help="rows of the CSV log")
    parser.add_argument("--jsonl-rows", type=int, default=2_000_000, help="rows of the JSONL log (0: skip)")
    parser.add_argument("--append", type=int, default=100_000, help="rows appended before the incremental tick")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="aiops-ingest-bench-", dir="/tmp"))
    try:
        print(f"pyarrow {pa.__version__}, pandas {pd.__version__}, {os.cpu_count()} CPUs")
        print(
            f"{'log':6} {'rows':>10} {'MB':>6} | {'first read':>22} {'vs pandas':>9} | "
            f"{'tick (+rows)':>24} {'vs pandas':>9} {'vs re-read':>10} | {'tick/first':>10} {'rows ratio':>10}"
        )
        for fmt, n in (("csv", args.rows), ("jsonl", args.jsonl_rows)):
            if n <= 0:
                continue
            r = run(fmt, n, args.append, workdir)
            first = f"{r['first_s']:>6.2f}s {r['first_rows_s'] / 1e6:>6.2f} M rows/s"
            tick = f"{r['tick_s'] * 1000:>6.1f}ms (+{args.append:,}) {r['tick_rows_s'] / 1e6:>5.2f} M/s"
            print(
                f"{fmt:6} {n:>10,} {r['bytes'] / 1e6:>6.0f} | {first} {r['base_first_s'] / r['first_s']:>8.2f}x | "
                f"{tick} {r['base_tick_s'] / r['tick_s']:>8.2f}x {r['naive_tick_s'] / r['tick_s']:>9.1f}x | "
                f"{r['tick_s'] / r['first_s']:>10.4f} {args.append / n:>10.4f}"
            )
            (workdir / f"log.{fmt}").unlink()
        print("vs pandas = pandas parse time / table-source time on the same bytes (>1: the source is faster);")
        print("  the source also builds the newest max_rows=100,000 rows as Python dicts for the detectors")
        print("vs re-read = pandas re-parsing the whole grown file (a source without offsets) / tick time")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
