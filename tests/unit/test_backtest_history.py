"""History hooks of the sources without a server: the stored event log of pushed data replayed by arrival."""

from __future__ import annotations

import time
from pathlib import Path

from aiops.backtest.simulate import read_history, simulate
from aiops.config.loader import load_config
from aiops.store.records import EventKind, PushedEvent
from aiops.store.store import Store

T0 = 1_700_000_000.0


def test_pushed_points_are_replayed_from_the_event_log(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'aiops.db'}"
    store = Store(url)
    store.migrate()
    for k in range(120):
        value = 900.0 if 40 <= k < 50 else 10.0
        point = PushedEvent("jobs", EventKind.POINT, "queue", T0 + 30 * k, value)
        store.append_events([point], now=T0 + 30 * k + 1)
    store.close()
    config = tmp_path / "aiops.yaml"
    config.write_text(
        f"""
checks:
  - name: queue
    every: 60s
    source: {{type: push, stream: jobs, store_url: "{url}"}}
    detectors: [{{type: threshold, above: 100}}]
    policy: {{for: 2m}}
"""
    )
    loaded = load_config(config)
    replays = read_history(loaded, None, T0, T0 + 3600)
    result = simulate(loaded, T0, T0 + 3600, replays=replays)
    again = simulate(loaded, T0, T0 + 3600, replays=replays)  # a tune replays the same read many times
    assert [i.firing_at for i in again.incidents] == [i.firing_at for i in result.incidents]
    assert [(i.final_state, i.firing_at - T0) for i in result.incidents] == [("resolved", 1380.0)]
    assert result.incidents[0].resolved_at == T0 + 1560.0
    assert result.incidents[0].plot and max(result.incidents[0].plot[0].values) == 900.0


def test_a_guard_holds_the_second_action_and_says_why(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'aiops.db'}"
    store = Store(url)
    store.migrate()
    bad = set(range(10, 15)) | set(range(30, 35))  # two outages 10 minutes apart, both on the same target
    for k in range(60):
        point = PushedEvent("jobs", EventKind.POINT, "queue", T0 + 60 * k, 900.0 if k in bad else 1.0)
        store.append_events([point], now=T0 + 60 * k + 1)
    store.close()
    config = tmp_path / "aiops.yaml"
    config.write_text(
        f"""
checks:
  - name: queue
    every: 60s
    source: {{type: push, stream: jobs, store_url: "{url}"}}
    detectors: [{{type: threshold, above: 100}}]
    policy:
      cooldown: 1h
      actions: [{{type: command, argv: ["true"]}}]
"""
    )
    first, second = simulate(load_config(config), T0, T0 + 3600).incidents
    assert [a.state for a in first.actions] == ["succeeded"]
    assert second.actions == () and second.holds and "cooldown" in second.holds[0].reason


def test_a_file_is_replayed_by_its_rows_times(tmp_path: Path) -> None:
    log = tmp_path / "latency.csv"
    lines = ["timestamp,latency"]
    for k in range(120):
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(T0 + 30 * k))  # times as text, as logs have them
        lines.append(f"{stamp},{900 if 40 <= k < 50 else 10}")
    log.write_text("\n".join(lines) + "\n")
    config = tmp_path / "aiops.yaml"
    config.write_text(
        f"""
checks:
  - name: latency
    every: 60s
    source: {{type: file, path: "{log}"}}
    detectors: [{{type: threshold, above: 100}}]
    policy: {{for: 2m}}
"""
    )
    result = simulate(load_config(config), T0, T0 + 3600)
    # a row is seen at the first tick at or after its own time (no arrival delay, unlike pushed points)
    assert [(i.final_state, i.firing_at - T0) for i in result.incidents] == [("resolved", 1320.0)]
    assert result.incidents[0].resolved_at == T0 + 1560.0  # the last bad point shares the tick at 1500
