"""Checks per second sustained by 1, 2, 3 ... real daemons sharing one PostgreSQL store, with I/O-bound sources.

    .venv/bin/python benchmarks/scale.py --replicas 1,2,3 --checks 1200 --every 2 --duration 30
    .venv/bin/python benchmarks/scale_replicas.py --replicas 1,2,3 --checks 1200 --every 2 --duration 30

Every check's source is an ``http`` source whose endpoint (``slow_source.py``, an asyncio server in a process
of its own) waits ``--latency`` (50 ms) before it answers: the shape of a model server's stats or a metrics
API, where a check spends its time waiting, not computing. The checks are divided among the replicas by
their leases, so adding a replica adds scheduler workers that wait in parallel. One configuration (the same
checks, intervals and store) runs with 1, then 2, then 3 replicas, each on a fresh database; before them one
replica runs ``--baseline-checks`` (half the checks) alone, so that the baseline of the second ratio is the
best a single replica did, not a replica sunk under three times its capacity.

Per run: the check runs that ended ok per second, summed over the replicas (each replica's own
``aiops_check_runs_total`` between two scrapes, after the leases settled), the same count seen by the source
server, the scheduled runs the replicas skipped because they could not keep up, and where the CPU went
(psutil, cores over the window): each replica, daemon CPU per ok run, the PostgreSQL cluster (every
backend, exited ones too), the source server, and the rest of the machine (other sessions). The offered load
(``checks / every``) should exceed what one replica can run, so that the one-replica rows are its capacity.
``AIOPS_SCALE_KEEP_LOGS=DIR`` copies each run's daemon logs to ``DIR/<replicas>x<checks>/replica-N/``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psutil
import requests

ROOT = Path(__file__).resolve().parent.parent

CHECK = """  - name: c{index:04d}
    every: {every:g}s
    source: {{type: http, url: "{source}/c{index:04d}", metrics: {{value: "$.value"}}, timeout: 10s}}
    detectors: [{{type: threshold, above: 500}}]
"""


class SourceProcess:
    """``slow_source.py`` in a process of its own: the endpoint every check polls, its request count and its CPU."""

    def __init__(self, latency: float) -> None:
        self._proc = subprocess.Popen(
            [sys.executable, str(Path(__file__).with_name("slow_source.py")), "--latency", str(latency)],
            stdout=subprocess.PIPE,
        )
        assert self._proc.stdout is not None
        line = self._proc.stdout.readline().decode().split()
        if len(line) != 2 or line[0] != "port":
            self.close()
            raise SystemExit(f"the source server did not start (it printed {line!r})")
        self.url = f"http://127.0.0.1:{line[1]}"
        self.process = psutil.Process(self._proc.pid)

    @property
    def requests(self) -> int:
        return int(requests.get(self.url + "/-/count", timeout=30).json()["requests"])

    def close(self) -> None:
        self._proc.terminate()
        try:
            self._proc.wait(10)
        except subprocess.TimeoutExpired:
            self._proc.kill()


class PostgresCpu:
    """CPU seconds spent by one PostgreSQL cluster: its live processes plus the backends that already exited
    (the postmaster reaps them, so their time is in its ``children_*`` times): monotonic, unlike a sum over
    the processes alive at one instant, as each replica's connections come and go."""

    def __init__(self, datadir: Path) -> None:
        self.postmaster = psutil.Process(int((datadir / "postmaster.pid").read_text().split()[0]))

    def seconds(self) -> float:
        times = self.postmaster.cpu_times()
        total = times.user + times.system + times.children_user + times.children_system
        for child in self.postmaster.children():
            # one that exited since the listing is counted in the postmaster's children times from now on
            with contextlib.suppress(psutil.NoSuchProcess):
                total += sum(child.cpu_times()[:2])
        return total


def _busy_seconds() -> float:
    """CPU seconds every process of the machine has used (all cores), for the other sessions' share."""
    times = psutil.cpu_times()
    return times.user + times.nice + times.system + getattr(times, "irq", 0.0) + getattr(times, "softirq", 0.0)


@dataclass(frozen=True)
class Outcome:
    replicas: int
    checks: int  # checks in the config of this run
    runs_per_s: float  # ok check runs per second, summed over the replicas
    polls_per_s: float  # source requests per second, as the source server counted them
    skipped_per_s: float  # scheduled runs not run (the replica was still busy)
    cpu_cores: tuple[float, ...]  # per replica, over the window
    postgres_cores: float  # the PostgreSQL cluster, every process
    source_cores: float  # the source server process
    others_cores: float  # every other process of the machine (other sessions, this benchmark's scrapes)
    run_ms: float  # mean wall time of one check run (source call included), over every replica
    owned: tuple[int, ...]  # checks per replica

    @property
    def daemon_ms_per_run(self) -> float:
        """Daemon CPU per ok run, summed over the replicas (milliseconds)."""
        return 1000 * sum(self.cpu_cores) / max(self.runs_per_s, 1e-9)

    @property
    def postgres_ms_per_run(self) -> float:
        return 1000 * self.postgres_cores / max(self.runs_per_s, 1e-9)


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _sum(text: str, metric: str) -> float:
    return sum(float(m) for m in re.findall(rf"^{metric}(?:\{{[^}}]*\}})? (\S+)$", text, re.M))


def _scrape(url: str) -> tuple[float, float, float, float, float]:
    """(ok check runs, skipped runs, checks owned, seconds spent in runs, runs timed) of one replica."""
    text = requests.get(url + "/metrics", timeout=30).text
    runs = sum(float(m) for m in re.findall(r'^aiops_check_runs_total\{[^}]*outcome="ok"[^}]*\} (\S+)$', text, re.M))
    return (
        runs,
        _sum(text, "aiops_check_ticks_skipped_total"),
        _sum(text, "aiops_checks_owned"),
        _sum(text, "aiops_check_duration_seconds_sum"),
        _sum(text, "aiops_check_duration_seconds_count"),
    )


def tree_path(tree: Path | None) -> dict[str, str]:
    """PYTHONPATH that makes a daemon import aiops and the bundled plugin packages (``detectors/``,
    ``remediations/``: the directories holding an ``aiops_*`` package) from ``tree``."""
    if tree is None:
        return {}
    parts = [tree, *sorted({p.parent.parent for p in tree.glob("*/aiops_*/__init__.py")})]
    return {"PYTHONPATH": os.pathsep.join(str(p) for p in parts)}


def _timed_scrape(url: str) -> tuple[float, tuple[float, float, float, float, float]]:
    """(when, what): the scrape's midpoint (monotonic) and :func:`_scrape`'s figures."""
    started = time.monotonic()
    figures = _scrape(url)
    return (started + time.monotonic()) / 2, figures


@contextmanager
def _daemons(configs: list[tuple[Path, Path | None]]) -> Iterator[list[tuple[subprocess.Popen[bytes], str]]]:
    """A daemon per (config, source tree: None for this one), each ready when this yields."""
    procs: list[tuple[subprocess.Popen[bytes], str]] = []
    try:
        for config, tree in configs:
            port = _free_port()
            log = (config.parent / "daemon.log").open("wb")
            proc = subprocess.Popen(
                [sys.executable, "-m", "aiops", "run", "--config", str(config), "--listen", f"127.0.0.1:{port}"],
                cwd=config.parent,
                stdout=log,
                stderr=log,
                env={**os.environ, "AIOPS_LOG_JSON": "1", **tree_path(tree)},
            )
            procs.append((proc, f"http://127.0.0.1:{port}"))
        for (proc, url), (config, _) in zip(procs, configs, strict=True):
            deadline = time.monotonic() + 180
            while time.monotonic() < deadline:
                if proc.poll() is not None:
                    raise SystemExit(f"a daemon exited early; see {config.parent / 'daemon.log'}")
                try:
                    if requests.get(url + "/readyz", timeout=1).status_code == 200:
                        break
                except requests.RequestException:
                    pass
                time.sleep(0.1)
        yield procs
    finally:
        for proc, _ in procs:
            proc.terminate()
        for proc, _ in procs:
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                proc.kill()


def run(
    replicas: int,
    checks: int,
    every: float,
    duration: float,
    store_urls: list[str],
    source: SourceProcess,
    pg: PostgresCpu,
    trees: list[Path | None],
) -> list[Outcome]:
    """``replicas`` daemons of each source tree (None: this one), each tree's on its own store, all at the same
    time: with two trees, both see the same machine load, so their CPU per run compares (the PostgreSQL, source
    server and rest-of-machine columns are then shared by both)."""
    with tempfile.TemporaryDirectory(prefix="aiops-scale-replicas-") as tmp:
        keep = os.environ.get("AIOPS_SCALE_KEEP_LOGS")  # a directory: each run's daemon logs are copied there
        body = "".join(CHECK.format(index=i, every=every, source=source.url) for i in range(checks))
        configs: list[tuple[Path, Path | None]] = []
        for g, (tree, store_url) in enumerate(zip(trees, store_urls, strict=True)):
            for r in range(replicas):
                work = Path(tmp) / f"replica-{r}" if g == 0 else Path(tmp) / f"tree-replica-{r}"
                work.mkdir()
                config = work / "aiops.yaml"
                config.write_text(f'store: {{url: "{store_url}"}}\nstate_dir: {work}/state\nchecks:\n{body}')
                configs.append((config, tree))
        with _daemons(configs) as procs:
            urls = [url for _, url in procs]
            groups = [urls[g * replicas : (g + 1) * replicas] for g in range(len(trees))]
            fair = -(-checks // replicas)
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:  # the leases settle: every replica holds its share
                owned = [[_scrape(url)[2] for url in group] for group in groups]
                if all(sum(o) == checks and max(o) <= fair for o in owned):
                    break
                time.sleep(1.0)
            time.sleep(2 * every + 3.0)  # warm-up: connections opened, first runs (new series) done
            cpu = [psutil.Process(p.pid) for p, _ in procs]
            before = [_timed_scrape(url) for url in urls]
            cpu_before = [sum(c.cpu_times()[:2]) for c in cpu]
            pg_before, source_before, busy_before = pg.seconds(), sum(source.process.cpu_times()[:2]), _busy_seconds()
            polls_before, started = source.requests, time.monotonic()
            time.sleep(duration)
            after = [_timed_scrape(url) for url in urls]
            cpu_after = [sum(c.cpu_times()[:2]) for c in cpu]
            pg_after, source_after, busy_after = pg.seconds(), sum(source.process.cpu_times()[:2]), _busy_seconds()
            polls, seconds = source.requests - polls_before, time.monotonic() - started
        if keep:
            for config, _ in configs:
                target = Path(keep) / f"{replicas}x{checks}" / config.parent.name
                target.mkdir(parents=True, exist_ok=True)
                shutil.copy(config.parent / "daemon.log", target / "daemon.log")
    daemons = [(a - b) / seconds for a, b in zip(cpu_after, cpu_before, strict=True)]
    postgres = (pg_after - pg_before) / seconds
    source_cores = (source_after - source_before) / seconds
    others = max(0.0, (busy_after - busy_before) / seconds - sum(daemons) - postgres - source_cores)
    outcomes = []
    for g in range(len(trees)):
        part = slice(g * replicas, (g + 1) * replicas)
        # each daemon's counts over its own window, between its two scrapes: scraping six daemons in turn takes
        # seconds under load, and a window common to all of them put the rates several per cent off
        windows = [a[0] - b[0] for a, b in zip(after[part], before[part], strict=True)]
        delta = [
            tuple(x - y for x, y in zip(a[1], b[1], strict=True))
            for a, b in zip(after[part], before[part], strict=True)
        ]
        outcomes.append(
            Outcome(
                replicas=replicas,
                checks=checks,
                runs_per_s=sum(d[0] / w for d, w in zip(delta, windows, strict=True)),
                polls_per_s=polls / seconds,
                skipped_per_s=sum(d[1] / w for d, w in zip(delta, windows, strict=True)),
                cpu_cores=tuple(daemons[part]),
                postgres_cores=postgres,
                source_cores=source_cores,
                others_cores=others,
                owned=tuple(int(a[1][2]) for a in after[part]),
                run_ms=1000 * sum(d[3] for d in delta) / max(1.0, sum(d[4] for d in delta)),
            )
        )
    return outcomes


def _fresh_database(base_url: str, name: str) -> str:
    import sqlalchemy as sa

    admin = sa.create_engine(base_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return sa.make_url(base_url).set(database=name).render_as_string(hide_password=False)


HEADER = (
    "| replicas | checks (offered/s) | checks/s (ok runs) | source polls/s | skipped/s | ratio vs 1, same checks "
    "| ratio vs best 1 | CPU per replica (cores) | daemon CPU ms/check | PostgreSQL (cores) | source server (cores) "
    "| rest of machine (cores) | mean run ms | checks owned |"
)


def measure(
    counts: list[int],
    checks: int,
    every: float,
    duration: float,
    latency: float,
    baseline_checks: int = 0,
    tree: Path | None = None,
) -> list[Outcome]:
    """One run per replica count, each on a fresh database of one PostgreSQL cluster, printed as it ends.

    With ``baseline_checks``, one replica first runs that many checks alone: a replica far past its capacity
    spends CPU on the runs it skips, so the one-replica run of the full config may sustain less than the
    replica can. The second ratio divides by the best of the one-replica runs, so a baseline that sank under
    its own overload cannot flatter the replicas.

    With ``tree`` (another source tree, e.g. ``git archive`` of main unpacked in /tmp), every run also runs as
    many daemons from that tree at the same time, on a database of their own: a row each (``tree``), and the
    ratio of this tree's daemon CPU per check run to that tree's, measured under the same machine load.
    """
    sys.path.insert(0, str(ROOT))
    from tests.servers import postgres_cluster

    print(
        f"{checks} checks every {every:g}s (offered {checks / every:.0f} checks/s), source latency "
        f"{latency * 1000:.0f} ms, {duration:g}s measured per run; cpus {os.cpu_count()}, "
        f"load average {os.getloadavg()[0]:.1f}" + (f"; with the daemons of {tree} alongside" if tree else ""),
        flush=True,
    )
    print(HEADER)
    print("|" + " ---: |" * 7 + " --- |" + " ---: |" * 5 + " --- |", flush=True)
    plan = ([(1, baseline_checks)] if baseline_checks > 0 else []) + [(n, checks) for n in counts]
    trees: list[Path | None] = [None, *([tree] if tree is not None else [])]
    source = SourceProcess(latency)
    outcomes: list[Outcome] = []
    try:
        with postgres_cluster() as cluster:
            pg = PostgresCpu(cluster.datadir)
            for i, (n, size) in enumerate(plan):
                urls = [_fresh_database(cluster.url, f"scale_{i}_{n}_{g}") for g in range(len(trees))]
                ran = run(n, size, every, duration, urls, source, pg, trees)
                outcomes.append(ran[0])
                same = [x.runs_per_s for x in outcomes if x.replicas == 1 and x.checks == checks]
                best = max((x.runs_per_s for x in outcomes if x.replicas == 1), default=float("nan"))
                for label, o in zip(("", " (tree)"), ran, strict=False):
                    print(
                        f"| {n}{label} | {o.checks} ({o.checks / every:.0f}) | {o.runs_per_s:.1f} "
                        f"| {o.polls_per_s:.1f} | {o.skipped_per_s:.1f} "
                        f"| {o.runs_per_s / same[0] if same and not label else float('nan'):.2f} "
                        f"| {o.runs_per_s / best if not label else float('nan'):.2f} "
                        f"| {', '.join(f'{c:.2f}' for c in o.cpu_cores)} "
                        f"| {o.daemon_ms_per_run:.2f} | {o.postgres_cores:.2f} | {o.source_cores:.2f} "
                        f"| {o.others_cores:.2f} | {o.run_ms:.0f} | {', '.join(map(str, o.owned))} |",
                        flush=True,
                    )
                if len(ran) == 2:
                    print(
                        f"daemon CPU per check run, this tree / {tree}: "
                        f"{ran[0].daemon_ms_per_run / ran[1].daemon_ms_per_run:.2f} "
                        f"({ran[0].daemon_ms_per_run:.2f} / {ran[1].daemon_ms_per_run:.2f} ms)",
                        flush=True,
                    )
    finally:
        source.close()
    return outcomes


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--checks", type=int, default=600, help="checks in the config (shared by the replicas)")
    parser.add_argument("--every", type=float, default=1.0, help="seconds between two runs of a check")
    parser.add_argument("--latency", type=float, default=0.05, help="seconds each source call waits")
    parser.add_argument(
        "--baseline-checks",
        type=int,
        default=None,
        help="checks one replica first runs alone, for the 'vs best 1' ratio (default: half of --checks; 0: none)",
    )


def baseline_checks(args: argparse.Namespace) -> int:
    return args.checks // 2 if args.baseline_checks is None else max(0, args.baseline_checks)


def parse_counts(text: str) -> list[int]:
    try:
        counts = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"--replicas takes counts like 1,2,3, not {text!r}") from None
    if not counts or min(counts) < 1:
        raise argparse.ArgumentTypeError(f"--replicas takes counts of at least 1, like 1,2,3, not {text!r}")
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--replicas", type=parse_counts, default=[1, 2, 3], help="replica counts, e.g. 1,2,3")
    parser.add_argument("--duration", type=float, default=60.0, help="measured seconds per run")
    parser.add_argument("--json", action="store_true", help="also print the outcomes as JSON")
    parser.add_argument("--tree", type=Path, help="also run as many daemons from this source tree alongside")
    add_arguments(parser)
    args = parser.parse_args()
    outcomes = measure(
        args.replicas, args.checks, args.every, args.duration, args.latency, baseline_checks(args), args.tree
    )
    if args.json:
        print(json.dumps([o.__dict__ for o in outcomes]))


if __name__ == "__main__":
    main()
