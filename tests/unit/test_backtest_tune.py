"""``aiops tune`` on a check whose operators marked 3 incidents useful and 10 noise: the proposal, backtested,
keeps the 3 and drops the noise; and the command's errors are one line."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from click.testing import CliRunner

from aiops.backtest.labels import FileLabels
from aiops.backtest.simulate import simulate
from aiops.cli import cli
from aiops.config.loader import load_config

T0 = 1_700_000_000
MINUTE = 60


def _history(tmp_path: Path) -> tuple[Path, Path]:
    """A day of one-minute rows: 3 long outages (20 min, useful) and 10 short blips (1-2 min, noise)."""
    useful = [(T0 + h * 3600, 20) for h in (2, 9, 17)]
    noise = [(T0 + h * 3600 + 1800, 1 + (h // 2) % 2) for h in range(0, 20, 2)]
    bad = {t + k * MINUTE for t, n in useful + noise for k in range(n)}
    db = tmp_path / "data.db"
    con = sqlite3.connect(db)
    con.execute("CREATE TABLE preds (id INTEGER PRIMARY KEY, ts REAL, latency REAL)")
    rows = [(T0 + k * MINUTE + 1, 500.0 if T0 + k * MINUTE in bad else 100.0) for k in range(24 * 60)]
    con.executemany("INSERT INTO preds (ts, latency) VALUES (?, ?)", rows)
    con.commit()
    con.close()
    labels = tmp_path / "verdicts.csv"
    lines = ["check,start,end,verdict"]
    lines += [f"latency,{t},{t + n * MINUTE},useful" for t, n in useful]
    lines += [f"latency,{t},{t + n * MINUTE},noise" for t, n in noise]
    labels.write_text("\n".join(lines) + "\n")
    config = tmp_path / "aiops.yaml"
    config.write_text(
        f"""
notifiers:
  oncall: {{type: webhook, url: "http://127.0.0.1:9/never-called"}}
checks:
  - name: latency
    every: 60s
    source: {{type: table, url: "sqlite:///{db}", table: preds, id_column: id, timestamp_column: ts}}
    detectors: [{{type: value_range, ranges: {{latency: {{max: 300}}}}}}]
    policy:
      notify: [oncall]
      actions: [{{type: command, argv: ["true"]}}]
"""
    )
    return config, labels


def test_tune_keeps_the_useful_incidents_and_drops_the_noise(tmp_path: Path) -> None:
    config, labels = _history(tmp_path)
    window = ["--from", str(T0), "--to", str(T0 + 86400)]
    before = simulate(load_config(config), T0, T0 + 86400)
    assert len(before.incidents) == 13
    proposal = tmp_path / "proposal.yaml"
    out = CliRunner().invoke(
        cli, ["tune", "latency", "--config", str(config), *window, "--labels", str(labels), "-o", str(proposal)]
    )
    assert out.exit_code == 0, out.output
    assert "policy.for: 0 -> 120" in out.output and "+    for: 120s" in out.output  # 2-minute blips need 2 ticks
    assert load_config(config).settings.checks[0].policy.for_ == 0  # the running config is untouched
    after = simulate(load_config(proposal), T0, T0 + 86400)
    from aiops.backtest.labels import score

    s = score(after.incidents, FileLabels(labels).labels("latency", T0, T0 + 86400), T0 + 86400)
    assert s.detected == 3 and s.positives == 3
    assert s.noise_windows == 10 and s.noise_paged <= 2


def test_backtest_command_scores_against_labels_and_writes_reports(tmp_path: Path) -> None:
    config, labels = _history(tmp_path)
    args = ["backtest", str(config), "--from", str(T0), "--to", str(T0 + 86400), "--labels", str(labels)]
    out = CliRunner().invoke(cli, [*args, "--json", str(tmp_path / "r.json"), "-o", str(tmp_path / "r.html")])
    assert out.exit_code == 0, out.output
    assert "13 would-be incidents" in out.output and "recall 100%" in out.output
    # 13 firings and 3 escalations (the long outages outlast the verify window), captured, never sent:
    # nothing listens on the webhook's port
    assert "16 pages" in out.output
    assert "<svg" in (tmp_path / "r.html").read_text()
    stricter = tmp_path / "stricter.yaml"
    stricter.write_text(config.read_text().replace("    policy:\n", "    policy:\n      for: 3m\n"))
    assert "for: 3m" in stricter.read_text()
    side = CliRunner().invoke(cli, [*args, "--against", str(stricter), "-o", str(tmp_path / "both.html")])
    assert side.exit_code == 0, side.output
    assert "== against" in side.output and "3 would-be incidents" in side.output
    assert "<th>against</th>" in (tmp_path / "both.html").read_text()
    bad = CliRunner().invoke(cli, ["backtest", str(config), "--from", "yesterday-ish", "--to", "1"])
    assert bad.exit_code == 2 and "Traceback" not in bad.output
