"""Does the daemon keep up? The real daemon (a subprocess) fed by HTTP push, at growing numbers of series.

    .venv/bin/python benchmarks/scale.py --duration 180             # every configuration below
    .venv/bin/python benchmarks/scale.py --duration 600 --only 10000x10s
    .venv/bin/python benchmarks/scale.py --replicas 1,2,3 --duration 60  # replicas on PostgreSQL: scale_replicas.py

Each configuration runs twice in the same invocation: with ``default`` and with ``threshold`` (the control:
its maths costs nothing, so what ``threshold`` cannot do is the daemon's overhead, not the detector's).
Per run: how long the daemon took to be ready, the share of scheduled check runs that ran (from the
daemon's own ``aiops_check_runs_total`` between two scrapes, so start-up is not counted), the skipped runs
it reported (``aiops_check_ticks_skipped_total``), its peak RSS, the p99 latency of the ingest POSTs
(1 000 points per request, the pusher sending one point per series per interval), and, as the floor those
latencies stand on, the p99 of ``GET /livez`` (answered on the event loop, no work at all) polled every
100 ms at the same time: on a shared machine the OS's scheduling delays show up there too. Then the ingest
p50, ``load``: the machine's 1-minute load average over the run (what else the cores were doing), and
``t/o``: the runs that timed out since the daemon started, the first ticks over new series included
(``--timeout`` sets a shorter check timeout, to see what a timed-out tick costs).

``--tree DIR`` runs a second daemon from another source tree (e.g. ``git archive`` of an older commit
unpacked in /tmp) at the same time as this tree's, each with its own pusher, for a before/after ratio
measured under the same machine load. ``AIOPS_SCALE_KEEP_LOGS=DIR`` copies each daemon's log (JSON lines) to
``DIR/<scenario>-<detector>[-tree].log``.
"""

from __future__ import annotations

import argparse
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import requests

from aiops.engine.phases import phase_of

sys.path.insert(0, str(Path(__file__).resolve().parent))
import scale_replicas  # a sibling script, not a package

ROOT = Path(__file__).resolve().parent.parent
CHUNK = 1000  # points per POST (the API takes bodies up to 1 MiB)
TOKEN = "scale-benchmark-token"


@dataclass(frozen=True)
class Scenario:
    name: str
    series: int  # per check
    every: float
    checks: int = 1


SCENARIOS = [
    Scenario("10x10s", 10, 10.0),
    Scenario("100x10s", 100, 10.0),
    Scenario("1000x10s", 1000, 10.0),
    Scenario("10000x10s", 10000, 10.0),
    Scenario("1000x1s", 1000, 1.0),
    Scenario("1000checks_x1x10s", 1, 10.0, checks=1000),
]


def config(s: Scenario, detector: str, store: Path, timeout: float | None = None) -> str:
    det = "{type: threshold, above: 1000}" if detector == "threshold" else "{type: default}"
    lines = [f"store: {{url: 'sqlite:///{store}'}}", f"server: {{token: {TOKEN}}}", "checks:"]
    for c in range(s.checks):
        lines += [
            f"  - name: c{c}",
            f"    every: {s.every:g}s",
            *([f"    timeout: {timeout:g}s"] if timeout is not None else []),
            f"    source: {{type: push, stream: s{c}}}",
            f"    detectors: [{det}]",
            "    policy: {}",
        ]
    return "\n".join(lines) + "\n"


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def rss_mb(pid: int) -> float:
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0.0
    match = re.search(r"VmRSS:\s+(\d+) kB", text)
    return int(match.group(1)) / 1024 if match else 0.0


def scrape(url: str) -> tuple[float, float, float]:
    """(check runs that ended ok, skipped runs, runs that timed out), summed over checks."""
    text = requests.get(url + "/metrics", timeout=30).text

    def runs(outcome: str) -> float:
        pattern = rf'^aiops_check_runs_total\{{[^}}]*outcome="{outcome}"[^}}]*\}} (\S+)$'
        return sum(float(m) for m in re.findall(pattern, text, re.M))

    skipped = sum(float(m) for m in re.findall(r"^aiops_check_ticks_skipped_total\{[^}]*\} (\S+)$", text, re.M))
    return runs("ok"), skipped, runs("timeout")


@dataclass
class Outcome:
    ready_s: float
    ran_share: float
    skipped: float
    rss_peak_mb: float
    ingest_p99_ms: float
    ingest_max_ms: float
    requests: int
    livez_p99_ms: float
    ingest_p50_ms: float
    load_avg: float  # the machine's 1-minute load average, averaged over the run (2 cores here)
    timeouts: float  # runs that timed out since the daemon started (warm-up included: the first ticks)


def _quiet_moment(s: Scenario, not_before: float) -> float:
    """The first monotonic time after ``not_before`` that lies mid-way in the widest gap between the checks'
    phases: a scrape there cannot race a run at the window's edge (a boundary race once showed 59 of 60 runs)."""
    phases = sorted({phase_of(f"c{c}", s.every) for c in range(s.checks)})
    gaps = [((phases[(i + 1) % len(phases)] - p) % s.every or s.every, p) for i, p in enumerate(phases)]
    width, start = max(gaps)
    offset = (start + width / 2) % s.every  # seconds after each multiple of ``every`` since the epoch
    epoch_not_before = time.time() + (not_before - time.monotonic())
    epoch_at = offset + math.ceil((epoch_not_before - offset) / s.every) * s.every
    return not_before + (epoch_at - epoch_not_before)


def run(
    s: Scenario, detector: str, duration: float, workdir: Path, tree: Path | None = None, timeout: float | None = None
) -> Outcome:
    workdir.mkdir(parents=True, exist_ok=True)
    store = workdir / f"{s.name}-{detector}.db"
    cfg = workdir / f"{s.name}-{detector}.yaml"
    cfg.write_text(config(s, detector, store, timeout))
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = (workdir / f"{s.name}-{detector}.log").open("wb")
    started = time.monotonic()
    proc = subprocess.Popen(
        [sys.executable, "-m", "aiops", "run", "--config", str(cfg), "--listen", f"127.0.0.1:{port}"],
        cwd=workdir,
        stdout=log,
        stderr=log,
        env={**os.environ, "AIOPS_LOG_JSON": "1", **scale_replicas.tree_path(tree)},
    )
    try:
        while True:
            if proc.poll() is not None:
                raise SystemExit(f"daemon exited early; see {log.name}")
            try:
                if requests.get(url + "/readyz", timeout=1).status_code == 200:
                    break
            except requests.RequestException:
                pass
            time.sleep(0.05)
        ready = time.monotonic() - started
        origin = time.monotonic()  # every check ran once as the scheduler started, then every ``every`` s
        latencies: list[float] = []
        probes: list[float] = []
        peak = [0.0]
        loads: list[float] = []
        stop = threading.Event()

        def probe_livez() -> None:
            session = requests.Session()
            while not stop.wait(0.1):
                t0 = time.perf_counter()
                session.get(url + "/livez", timeout=60)
                probes.append(time.perf_counter() - t0)

        def sample_rss() -> None:
            while not stop.wait(0.5):
                peak[0] = max(peak[0], rss_mb(proc.pid))
                loads.append(os.getloadavg()[0])

        def push() -> None:
            session = requests.Session()
            session.headers["Authorization"] = f"Bearer {TOKEN}"
            bodies = _bodies(s)
            while not stop.is_set():
                slot = time.monotonic()
                now = time.time()
                for body in bodies:
                    for point in body.points:
                        point["timestamp"] = now
                    t0 = time.perf_counter()
                    r = session.post(url + "/api/v1/ingest", json=body.json(), timeout=60)
                    latencies.append(time.perf_counter() - t0)
                    r.raise_for_status()
                stop.wait(max(0.0, s.every - (time.monotonic() - slot)))

        threads = [threading.Thread(target=fn, daemon=True) for fn in (sample_rss, push, probe_livez)]
        for thread in threads:
            thread.start()
        # Both scrapes as far from every check's run as the phases allow (checks tick at epoch-aligned phases,
        # see aiops/engine/phases.py), so the window holds exactly ``slots`` scheduled runs per check; the
        # first runs (every series new) are left out.
        warm_slots = math.ceil((3 * s.every + 5.0) / s.every)
        slots = max(1, round(duration / s.every))
        measure_at = _quiet_moment(s, origin + warm_slots * s.every)
        time.sleep(max(0.0, measure_at - time.monotonic()))
        base = scrape(url)
        time.sleep(max(0.0, measure_at + slots * s.every - time.monotonic()))
        runs, skipped, timeouts = scrape(url)
        expected = s.checks * slots
        stop.set()
        threads[1].join(60)
        steady = latencies[len(latencies) // 10 :]  # leave out the first requests (connection set-up)
        return Outcome(
            ready_s=ready,
            ran_share=(runs - base[0]) / expected,
            skipped=skipped - base[1],
            rss_peak_mb=peak[0],
            ingest_p99_ms=1000 * float(np.percentile(steady, 99)),
            ingest_max_ms=1000 * max(steady),
            requests=len(latencies),
            livez_p99_ms=1000 * float(np.percentile(probes[len(probes) // 10 :], 99)),
            ingest_p50_ms=1000 * float(np.percentile(steady, 50)),
            load_avg=float(np.mean(loads)) if loads else 0.0,
            timeouts=timeouts,
        )
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()
        keep = os.environ.get("AIOPS_SCALE_KEEP_LOGS")  # a directory: the daemon's log is copied there
        if keep:
            Path(keep).mkdir(parents=True, exist_ok=True)
            suffix = "-tree" if tree is not None else ""
            shutil.copy(workdir / f"{s.name}-{detector}.log", Path(keep) / f"{s.name}-{detector}{suffix}.log")


@dataclass(frozen=True)
class Body:
    """One POST body: its stream and points (the pusher stamps each point's time before sending)."""

    stream: str
    points: list[dict[str, Any]]

    def json(self) -> dict[str, Any]:
        return {"stream": self.stream, "points": self.points}


def _bodies(s: Scenario) -> list[Body]:
    """The POST bodies of one interval: one point per series, at most CHUNK points per request."""
    bodies: list[Body] = []
    rng = np.random.default_rng(0)
    for c in range(s.checks):
        points = [
            {"name": "m", "labels": {"i": str(i)}, "value": float(10 + rng.normal()), "timestamp": 0.0}
            for i in range(s.series)
        ]
        for k in range(0, len(points), CHUNK):
            bodies.append(Body(f"s{c}", points[k : k + CHUNK]))
    return bodies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=600.0, help="measured seconds per run (after warm-up)")
    parser.add_argument("--only", action="append", help="scenario names to run (default: all)")
    parser.add_argument("--no-control", action="store_true", help="skip the threshold control runs")
    parser.add_argument("--tree", type=Path, help="also run the daemon from this source tree (before/after)")
    parser.add_argument("--detectors", default="threshold,default", help="comma-separated (default: both)")
    parser.add_argument(
        "--timeout",
        type=float,
        help="each check's timeout in seconds (default: the check's interval): a shorter one makes the first "
        "ticks over many new series overrun it, to see what a timed-out tick costs",
    )
    parser.add_argument(
        "--replicas",
        type=scale_replicas.parse_counts,
        help="instead: checks/s sustained by this many replicas on one PostgreSQL store, e.g. 1,2,3 "
        "(I/O-bound http sources; see benchmarks/scale_replicas.py)",
    )
    scale_replicas.add_arguments(parser)
    args = parser.parse_args()
    if args.replicas:
        scale_replicas.measure(
            args.replicas,
            args.checks,
            args.every,
            args.duration,
            args.latency,
            scale_replicas.baseline_checks(args),
            args.tree,
        )
        return
    chosen = [s for s in SCENARIOS if not args.only or s.name in args.only]
    print(f"duration {args.duration:g}s per run; python {sys.version.split()[0]}; cpus {os.cpu_count()}")
    heads = ("ready s", "ran", "skipped", "RSS MB", "p99 ms", "max ms", "livez99", "p50 ms", "load", "t/o")
    print(f"{'scenario':<20}{'detector':<11}" + "".join(f"{h:>8}" for h in heads))
    detectors = ["default"] if args.no_control else args.detectors.split(",")
    with tempfile.TemporaryDirectory(prefix="aiops-scale-") as tmp:
        for s in chosen:
            results = {}
            for detector in detectors:
                runs = [("", None), *([("@tree", args.tree)] if args.tree else [])]
                # With --tree both daemons run at the same time, so they see the same machine load.
                with ThreadPoolExecutor(len(runs)) as pool:
                    futures = [
                        pool.submit(run, s, detector, args.duration, Path(tmp) / (label or "this"), tree, args.timeout)
                        for label, tree in runs
                    ]
                for (label, _), future in zip(runs, futures, strict=True):
                    o = future.result()
                    results[detector + label] = o
                    print(
                        f"{s.name:<20}{detector + label:<11}{o.ready_s:>8.2f}{o.ran_share:>8.1%}{o.skipped:>8.0f}"
                        f"{o.rss_peak_mb:>8.0f}{o.ingest_p99_ms:>8.1f}{o.ingest_max_ms:>8.1f}{o.livez_p99_ms:>8.1f}"
                        f"{o.ingest_p50_ms:>8.1f}{o.load_avg:>8.1f}{o.timeouts:>8.0f}",
                        flush=True,
                    )
                if args.tree:
                    new, old = results[detector], results[detector + "@tree"]
                    print(f"{'':<20}{'this/tree':<11}{'':>40}{new.ingest_p99_ms / old.ingest_p99_ms:>8.2f}", flush=True)
            if "threshold" in results and "default" in results:
                d, c = results["default"], results["threshold"]
                ran = d.ran_share / max(c.ran_share, 1e-9)
                print(
                    f"{'':<20}{'ratio':<11}{d.ready_s / c.ready_s:>8.2f}{ran:>8.2f}{'':>8}"
                    f"{d.rss_peak_mb / c.rss_peak_mb:>8.2f}{d.ingest_p99_ms / c.ingest_p99_ms:>8.2f}",
                    flush=True,
                )


if __name__ == "__main__":
    main()
