"""Engine decisions per second: findings -> incidents -> outbox rows, on SQLite and PostgreSQL, this code
against a baseline revision measured in the same run.

A decision is one incident opening (firing, with its firing message queued) or one incident resolving (with
its resolved message queued). Each round observes ``--incidents`` findings with distinct labels (so as many
incidents open), then a healthy tick resolves them all. The baseline (default: the merge base with
``main``, where every store call was its own transaction under one process-wide lock) is extracted with
``git archive`` and run in a subprocess with the same driver, on a fresh database of the same kind, in
ABBA order. Wall-clock rates on a shared machine drift with other jobs' load, so the engine process's own
CPU time is reported too (the database server's is not in it).

    .venv/bin/python benchmarks/engine.py                     # both stores, 200 incidents x 3 rounds, 5 pairs
    .venv/bin/python benchmarks/engine.py --stores sqlite --incidents 100 --rounds 3
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
import uuid
from io import BytesIO
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

CONFIG = """
notifiers:
  hook: {type: webhook, url: "http://127.0.0.1:9/never-called"}
checks:
  - name: bench
    every: 10s
    source: {type: file, path: "/dev/null", value_columns: [v]}
    detectors: [{type: threshold, above: 1}]
    policy:
      notify: [hook]
"""


def measure(store_url: str, incidents: int, rounds: int) -> dict[str, float]:
    """Run in the process whose ``aiops`` is the code under test; returns decisions and seconds."""
    from aiops.config.loader import parse_config
    from aiops.engine.checks import CheckResult
    from aiops.engine.incidents import IncidentManager
    from aiops.engine.runtime import build_runtime
    from aiops.logs import configure_logging
    from aiops.store.store import Store
    from aiops.types import Finding

    configure_logging("warning", json=True)  # the engine logs every transition: not what is measured here
    runtime = build_runtime(parse_config(CONFIG, "bench.yaml", env={}))
    store = Store(store_url)
    store.migrate()
    clock = [1_700_000_000.0]
    manager = IncidentManager(store, lambda: runtime, lambda: clock[0])
    decisions = 0
    seconds = cpu = 0.0
    for r in range(rounds):
        findings = [
            Finding(kind="threshold", detector="threshold", summary="v is high", labels={"series": f"s{r}-{i}"})
            for i in range(incidents)
        ]
        clock[0] += 10
        started, started_cpu = time.perf_counter(), time.process_time()
        manager.observe(CheckResult(check="bench", outcome="ok", findings=findings, healthy_data=True))
        clock[0] += 10
        manager.observe(CheckResult(check="bench", outcome="ok", findings=[], healthy_data=True))
        seconds += time.perf_counter() - started
        cpu += time.process_time() - started_cpu
        decisions += 2 * incidents
    queued = len(store.list_notifications(limit=1_000_000))
    store.close()
    assert queued == decisions, f"expected {decisions} outbox rows, found {queued}"
    return {"decisions": decisions, "seconds": seconds, "cpu": cpu}


def _fresh_url(kind: str, tmp: Path, postgres_url: str | None) -> str:
    if kind == "sqlite":
        return f"sqlite:///{tmp}/bench-{uuid.uuid4().hex[:8]}.db"
    import sqlalchemy as sa

    assert postgres_url is not None
    name = "bench_" + uuid.uuid4().hex[:10]
    admin = sa.create_engine(postgres_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return postgres_url.rsplit("/", 1)[0] + "/" + name


def _extract(ref: str, into: Path) -> Path:
    """The ``aiops`` package as of ``ref``, in ``into``."""
    archive = subprocess.run(["git", "archive", ref, "aiops"], cwd=ROOT, capture_output=True, check=True).stdout
    with tarfile.open(fileobj=BytesIO(archive)) as tar:
        tar.extractall(into, filter="data")
    return into


def _run(code_dir: Path, store_url: str, incidents: int, rounds: int) -> dict[str, float]:
    env = {**os.environ, "PYTHONPATH": str(code_dir)}
    argv = [sys.executable, __file__, "--child", store_url, str(incidents), str(rounds)]
    done = subprocess.run(argv, env=env, capture_output=True, text=True, check=False, cwd=code_dir)
    if done.returncode != 0:
        raise SystemExit(f"measurement failed ({code_dir}):\n{done.stderr[-3000:]}")
    result: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--stores", default="sqlite,postgres")
    parser.add_argument("--incidents", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=5, help="pairs of runs (baseline, this code)")
    parser.add_argument("--baseline", default=None, help="git revision (default: merge base with main)")
    parser.add_argument("--child", nargs=3, metavar=("URL", "INCIDENTS", "ROUNDS"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        url, incidents, rounds = args.child
        print(json.dumps(measure(url, int(incidents), int(rounds))))
        return
    ref = (
        args.baseline
        or subprocess.run(
            ["git", "merge-base", "HEAD", "main"], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout.strip()
    )
    sys.path.insert(0, str(ROOT))
    from tests.servers import postgres_cluster

    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        baseline_code = _extract(ref, tmp / "baseline")
        kinds = [k.strip() for k in args.stores.split(",") if k.strip()]
        print(f"baseline {ref[:10]} vs working tree; {args.incidents} incidents x {args.rounds} rounds;")
        print(f"medians of {args.repeats} pairs of runs (ABBA order); ratio = median of the pairs' ratios\n")
        print(
            "| store | baseline decisions/s | this code decisions/s | ratio "
            "| baseline per CPU-s | this code per CPU-s | ratio |"
        )
        print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
        for kind in kinds:
            cluster = postgres_cluster() if kind == "postgres" else None
            pg_url = cluster.__enter__().url if cluster is not None else None
            try:
                rates: dict[str, list[float]] = {"baseline": [], "new": []}
                cpu_rates: dict[str, list[float]] = {"baseline": [], "new": []}
                for i in range(args.repeats):
                    order = [("baseline", baseline_code), ("new", ROOT)]
                    for label, code in order if i % 2 == 0 else order[::-1]:  # ABBA: drifting load hits both
                        got = _run(code, _fresh_url(kind, tmp, pg_url), args.incidents, args.rounds)
                        rates[label].append(got["decisions"] / got["seconds"])
                        cpu_rates[label].append(got["decisions"] / got["cpu"])
            finally:
                if cluster is not None:
                    cluster.__exit__(None, None, None)
            ratio = statistics.median(n / b for n, b in zip(rates["new"], rates["baseline"], strict=True))
            base, new = statistics.median(rates["baseline"]), statistics.median(rates["new"])
            cpu_base, cpu_new = statistics.median(cpu_rates["baseline"]), statistics.median(cpu_rates["new"])
            print(
                f"| {kind} | {base:.0f} | {new:.0f} | {ratio:.2f}x "
                f"| {cpu_base:.0f} | {cpu_new:.0f} | {cpu_new / cpu_base:.2f}x |"
            )


if __name__ == "__main__":
    main()
