"""After the verdicts table: `aiops tune` reads operators' verdicts from the config's store by default."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from aiops.cli import cli
from aiops.store.store import Store
from aiops.store.verdicts import mark_incident
from tests.unit.test_backtest_tune import T0, _history


def test_tune_reads_the_operators_verdicts_from_the_store(tmp_path: Path) -> None:
    config, labels = _history(tmp_path)
    store_url = f"sqlite:///{tmp_path / 'aiops.db'}"
    config.write_text(f'store: {{url: "{store_url}"}}\n' + config.read_text())
    store = Store(store_url)
    store.migrate()
    for n, line in enumerate(labels.read_text().splitlines()[1:]):
        check, start, end, verdict = line.split(",")
        row = store.create_incident(
            {
                "fingerprint": f"fp{n}", "check_name": check, "labels": {}, "state": "resolved",
                "severity": "warning", "kind": "detector:value_range", "summary": "s", "evidence": {},
                "opened_at": float(start), "updated_at": float(end), "firing_at": float(start),
                "resolved_at": float(end), "last_seen_at": float(end), "rung": 0, "attempts": 0,
                "healthy_ticks": 0, "notified_firing": True,
            },
            actor="test",
            reason="seeded",
        )
        mark_incident(store, row.id, verdict, actor="oncall", now=T0 + 90000)
    store.close()
    proposal = tmp_path / "proposal.yaml"
    out = CliRunner().invoke(
        cli,
        ["tune", "latency", "--config", str(config), "--from", str(T0), "--to", str(T0 + 86400), "-o", str(proposal)],
    )
    assert out.exit_code == 0, out.output
    assert "noise windows paged 0" in out.output and "useful windows missed 0" in out.output
