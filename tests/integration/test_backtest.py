"""Backtests against real data stores: a week of history in a real Prometheus (loaded with promtool), and
a SQLite table whose replay must open the same incidents the live daemon opened while the rows arrived."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from aiops.backtest.job import parse_executor, run_on
from aiops.backtest.simulate import simulate
from aiops.config.loader import load_config
from tests.e2e.daemon import DaemonProcess
from tests.servers import DaskCluster, find_binary, start_prometheus, stop_process
from tests.unit.test_backtest_tune import T0, _history

WEEK = 7 * 86400
STEP = 60


def _openmetrics(start: int, anomalies: list[tuple[int, int]]) -> str:
    lines = ["# TYPE model_latency gauge"]
    for k in range(WEEK // STEP):
        t = start + k * STEP
        for replica in ("a", "b"):
            bad = replica == "a" and any(s <= t < e for s, e in anomalies)
            value = 500.0 if bad else 100.0 + (k % 7)
            lines.append(f'model_latency{{replica="{replica}"}} {value} {t}')
    lines.append("# EOF")
    return "\n".join(lines) + "\n"


def test_backtest_of_a_week_in_a_real_prometheus(tmp_path: Path) -> None:
    end = (int(time.time()) // 3600 - 2) * 3600
    start = end - WEEK
    anomalies = [(start + d * 86400 + 3600, start + d * 86400 + 3600 + 20 * 60) for d in (1, 3, 5)]
    anomalies.append((start + 6 * 86400, start + 6 * 86400 + 120))  # 2 minutes: cleared within `for`
    source = tmp_path / "history.om"
    source.write_text(_openmetrics(start, anomalies))
    data = tmp_path / "prom" / "prometheus-data"
    data.mkdir(parents=True)
    promtool = find_binary("promtool", "/usr/bin/promtool")
    subprocess.run(
        [promtool, "tsdb", "create-blocks-from", "openmetrics", str(source), str(data)],
        check=True,
        capture_output=True,
        timeout=120,
    )
    proc, url = start_prometheus("global: {scrape_interval: 1h}\n", tmp_path / "prom")
    try:
        config = tmp_path / "aiops.yaml"
        config.write_text(
            f"""
checks:
  - name: latency
    every: 30s
    source: {{type: prometheus, url: "{url}", query: model_latency}}
    detectors: [{{type: threshold, above: 300}}]
    policy:
      for: 5m
      actions: [{{type: command, argv: ["true"]}}]
"""
        )
        result = simulate(load_config(config), start, end)
    finally:
        stop_process(proc)
    assert result.ticks == WEEK // 30
    got = [(i.labels.get("replica"), i.final_state) for i in result.incidents]
    assert got == [("a", "resolved")] * 3, result.incidents
    for incident, (s, e) in zip(result.incidents, anomalies, strict=False):
        assert s + 300 <= incident.firing_at <= s + 300 + 60  # `for: 5m` met on the first tick after 5 minutes
        assert e <= (incident.resolved_at or 0) <= e + 120
        assert [a.state for a in incident.actions] == ["succeeded"]  # simulated: nothing ran
    assert result.cleared_pending == 1


def _write_rows(db: Path, pattern: list[tuple[float, float]]) -> None:
    """Append rows in real time: (seconds to keep writing, latency) per stretch, a row every 50 ms."""
    con = sqlite3.connect(db)
    try:
        for seconds, latency in pattern:
            until = time.time() + seconds
            while time.time() < until:
                con.execute("INSERT INTO preds (ts, latency) VALUES (?, ?)", (time.time(), latency))
                con.commit()
                time.sleep(0.05)
    finally:
        con.close()


def test_backtest_of_a_table_opens_the_incidents_the_live_daemon_opened(tmp_path: Path) -> None:
    db = tmp_path / "data.db"
    con = sqlite3.connect(db)
    con.execute("CREATE TABLE preds (id INTEGER PRIMARY KEY, ts REAL, latency REAL)")
    con.commit()
    con.close()
    config = tmp_path / "aiops.yaml"
    config.write_text(
        f"""
store: {{url: "sqlite:///{tmp_path / "aiops.db"}"}}
state_dir: {tmp_path / "state"}
checks:
  - name: latency
    every: 0.2s
    source: {{type: table, url: "sqlite:///{db}", table: preds, id_column: id, timestamp_column: ts}}
    detectors: [{{type: value_range, ranges: {{latency: {{max: 300}}}}}}]
    policy: {{for: 0.6s}}
"""
    )
    daemon = DaemonProcess(config, tmp_path).start()
    try:
        start = time.time()
        _write_rows(db, [(1.0, 100), (2.0, 500), (2.0, 100), (0.06, 500), (2.0, 100), (2.0, 500), (2.0, 100)])
        end = time.time()
    finally:
        daemon.terminate()
    # what the live daemon opened, as `aiops incidents --json` reports it from its store
    live = [
        (i["fingerprint"], i["kind"], [t["to_state"] for t in i["transitions"]])
        for i in sorted(daemon.incidents(), key=lambda i: i["id"])
        if i["firing_at"] is not None
    ]
    result = simulate(load_config(config), start - 1.0, end + 1.0)
    replayed = [(i.fingerprint, i.kind, [t.state for t in i.timeline]) for i in result.incidents]
    assert len(live) == 2, live
    assert replayed == live


def test_a_backtest_on_a_dask_cluster_returns_the_same_result(tmp_path: Path) -> None:
    """The job runs in a real Dask worker process, reads the table itself and ships the result back."""
    config, _labels = _history(tmp_path)
    here = simulate(load_config(config), T0, T0 + 86400)
    cluster = DaskCluster(tmp_path).start(sys.executable)
    try:
        there = run_on(parse_executor(f"dask={cluster.address}"), str(config), T0, T0 + 86400, [], action_ok=True)
    finally:
        cluster.stop()
    assert there.incidents == here.incidents and there.messages == here.messages
